/**
 * Keeps a peer's connection count between two watermarks, as go-libp2p's
 * connection manager does (kubo's `Swarm.ConnMgr`): once more than
 * `highWater` connections are open, idle ones are closed until `lowWater`
 * are left.
 *
 * Why Shoal needs its own: every lookup dials the peers it asks, and
 * nothing closed those connections again. libp2p prunes only past
 * `maxConnections` (and then refuses inbound connections: a peer everyone
 * asks would stop answering), and never prunes an allow-listed address,
 * which a local swarm's own addresses are. A 1,000-peer swarm whose
 * hosts hold 200 peers each ran a host out of open files after ~2,000
 * lookups, and from then on every dial from that host failed.
 *
 * A connection is closed only when it is
 *   - idle: no stream open on it (a kept request stream keeps it busy until
 *     that stream's own idle timeout, src/wire/limits.ts);
 *   - older than the grace period: a connection just dialled is about to
 *     carry the request it was dialled for;
 *   - not to a protected peer: one libp2p keeps alive (kad-dht's closest
 *     peers carry the keep-alive tag, and libp2p would only dial them
 *     again) or one the overlay names (`protect`: Chord's successors,
 *     predecessor and fingers).
 * Newest first among those: the oldest connections are the contacts a peer
 * joined with and keeps talking to; the newest past their grace are the
 * ones one lookup needed.
 */
import { KEEP_ALIVE } from '@libp2p/interface'
import type { ComponentLogger, Connection, Libp2pEvents, Logger, PeerStore, Startable, TypedEventTarget } from '@libp2p/interface'
import type { ConnectionManager } from '@libp2p/interface-internal'

export interface ConnectionTrimmerInit {
  /** Trimming starts once more connections than this are open. */
  highWater: number
  /** ...and closes idle connections until this many are left. */
  lowWater: number
  /** A connection younger than this is never closed. */
  gracePeriodMs: number
  /** Peers whose connections stay (the overlay's neighbours). */
  protect?: () => Iterable<string>
}

export interface ConnectionTrimmerComponents {
  connectionManager: Pick<ConnectionManager, 'getConnections'>
  peerStore: Pick<PeerStore, 'get'>
  events: TypedEventTarget<Libp2pEvents>
  logger: ComponentLogger
}

/** How long closing one connection may take before it is aborted. */
const CLOSE_TIMEOUT_MS = 1_000

export class ConnectionTrimmer implements Startable {
  private readonly components: ConnectionTrimmerComponents
  private readonly init: ConnectionTrimmerInit
  private readonly log: Logger
  private timer: ReturnType<typeof setInterval> | undefined
  private trimming: Promise<unknown> | undefined
  private closed = 0

  constructor (components: ConnectionTrimmerComponents, init: ConnectionTrimmerInit) {
    if (init.lowWater > init.highWater) throw new RangeError(`lowWater ${init.lowWater} is above highWater ${init.highWater}`)
    this.components = components
    this.init = init
    this.log = components.logger.forComponent('shoal:connection-trimmer')
    this.onOpen = this.onOpen.bind(this)
  }

  readonly [Symbol.toStringTag] = 'shoal/connection-trimmer'

  start (): void {
    this.components.events.addEventListener('connection:open', this.onOpen)
    // connections still in their grace period when the count went over are
    // checked again once they may be closed
    this.timer = setInterval(() => { this.onOpen() }, Math.max(1_000, this.init.gracePeriodMs / 2))
    this.timer.unref?.()
  }

  async stop (): Promise<void> {
    this.components.events.removeEventListener('connection:open', this.onOpen)
    clearInterval(this.timer)
    this.timer = undefined
    await this.trimming
  }

  /** Connections this trimmer has closed since it started. */
  get trimmed (): number {
    return this.closed
  }

  private onOpen (): void {
    if (this.trimming != null || this.timer == null) return
    if (this.components.connectionManager.getConnections().length <= this.init.highWater) return
    this.trimming = this.trim()
      .catch(err => { this.log.error('trimming connections failed: %e', err) })
      .finally(() => { this.trimming = undefined })
  }

  /** Closes idle, unprotected connections past their grace, newest first, down to lowWater; resolves how many it closed. */
  async trim (): Promise<number> {
    const open = this.components.connectionManager.getConnections().filter(c => c.status === 'open')
    const excess = open.length - this.init.lowWater
    if (open.length <= this.init.highWater || excess <= 0) return 0
    const now = Date.now()
    const protectedPeers = new Set(this.init.protect?.() ?? [])
    const candidates = open
      .filter(c => c.streams.length === 0 && now - c.timeline.open >= this.init.gracePeriodMs && !protectedPeers.has(c.remotePeer.toString()))
      .sort((a, b) => b.timeline.open - a.timeline.open)
    const toClose: Connection[] = []
    for (const connection of candidates) {
      if (toClose.length === excess) break
      if (await this.keptAlive(connection)) continue
      toClose.push(connection)
    }
    let closed = 0
    await Promise.all(toClose.map(async connection => {
      // a stream opened since the check above: not idle after all
      if (connection.streams.length > 0) return
      try {
        await connection.close({ signal: AbortSignal.timeout(CLOSE_TIMEOUT_MS) })
      } catch (err) {
        connection.abort(err as Error)
      }
      closed++
    }))
    this.closed += closed
    this.log('%d of %d connections open: closed %d idle ones', open.length, this.init.highWater, closed)
    return closed
  }

  private async keptAlive (connection: Connection): Promise<boolean> {
    try {
      const peer = await this.components.peerStore.get(connection.remotePeer)
      // libp2p's reconnect queue dials these again the moment they close
      return [...peer.tags.keys()].some(tag => tag.startsWith(KEEP_ALIVE))
    } catch {
      return false
    }
  }
}

export function connectionTrimmer (init: ConnectionTrimmerInit): (components: ConnectionTrimmerComponents) => ConnectionTrimmer {
  return components => new ConnectionTrimmer(components, init)
}
