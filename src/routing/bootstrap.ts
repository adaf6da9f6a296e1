/**
 * Joining the network and staying joined.
 *
 * - Joins the overlay through the bootstrap peers on start (`Overlay.join`),
 *   and again every few seconds while the peer has no connection at all (a
 *   bootstrap peer may start after us).
 * - Looks itself up through the overlay (Kademlia: then refreshes its far
 *   buckets) once a join has connected it, and again while its routing
 *   table is below `targetSize` and still growing, backing off between
 *   lookups (x1.5, up to 5 s). It
 *   stops after `maxIdleLookups` lookups in a row that added nobody: in a
 *   network smaller than k the table never reaches k, and each lookup costs
 *   every peer it asks. kad-dht's own self-query runs once at start and then
 *   every 5 minutes, which leaves peers that joined early with thin tables
 *   while a swarm is still coming up; each lookup contacts the peers closest
 *   to us, and both sides add each other.
 *
 * Known peers from the persisted peer store are redialled by libp2p and
 * kad-dht themselves on start.
 */
import type { Libp2p, Logger } from '@libp2p/interface'
import type { Overlay } from './index.ts'

/**
 * Bounds one self-lookup, with the bucket refresh that follows it in
 * Kademlia (every query has its own timeout; this bounds the whole on a
 * loaded machine, where a refresh of a dozen buckets takes a while).
 */
export const SELF_LOOKUP_TIMEOUT_MS = 60_000

export interface BootstrapperComponents {
  node: Pick<Libp2p, 'getConnections' | 'peerId'>
  overlay: Pick<Overlay, 'join' | 'lookup'>
}

export interface BootstrapperInit {
  list: string[]
  /** Routing table size at which self-lookups stop. */
  targetSize: number
  routingTableSize: () => number
  log: Logger
  retryIntervalMs: number
  /** First pause between self-lookups; grows x1.5 up to maxLookupIntervalMs. */
  lookupIntervalMs?: number
  maxLookupIntervalMs?: number
  /** Lookups in a row that added no peer before the loop stops (default 1). */
  maxIdleLookups?: number
}

export class Bootstrapper {
  private readonly node: BootstrapperComponents['node']
  private readonly overlay: BootstrapperComponents['overlay']
  private readonly init: BootstrapperInit
  private controller?: AbortController
  private dialTimer?: ReturnType<typeof setInterval>
  private lookupTimer?: ReturnType<typeof setTimeout>
  private lookingUp = false

  constructor (components: BootstrapperComponents, init: BootstrapperInit) {
    this.node = components.node
    this.overlay = components.overlay
    this.init = init
  }

  /** True while self-lookups are scheduled or running. */
  get active (): boolean {
    return this.lookingUp
  }

  start (): void {
    if (this.controller != null) return
    this.controller = new AbortController()
    if (this.init.list.length > 0) {
      void this.dialAll()
      this.dialTimer = setInterval(() => {
        if (this.node.getConnections().length === 0) void this.dialAll()
      }, this.init.retryIntervalMs)
      this.dialTimer.unref()
    }
    this.scheduleLookup(this.init.lookupIntervalMs ?? 500, 0)
  }


  /** Starts the self-lookup loop again now (no-op while it runs). */
  refresh (): void {
    if (this.controller != null && !this.lookingUp) this.scheduleLookup(0, 0)
  }

  /**
   * Joins the overlay through these peers (`/p2p/<id>` multiaddrs) and keeps
   * them as bootstrap peers. Resolves once every dial has finished.
   */
  async join (list: string[], options: { signal?: AbortSignal, successors?: boolean, fingers?: string[] } = {}): Promise<{ connected: number, failed: number }> {
    const shutdown = this.controller?.signal
    if (shutdown == null) return { connected: 0, failed: list.length }
    this.init.list = [...new Set([...this.init.list, ...list])]
    const signal = options.signal == null ? shutdown : AbortSignal.any([shutdown, options.signal])
    return this.overlay.join(list, { signal, successors: options.successors, fingers: options.fingers })
  }

  stop (): void {
    this.controller?.abort()
    this.controller = undefined
    this.lookingUp = false
    clearInterval(this.dialTimer)
    clearTimeout(this.lookupTimer)
  }

  /** Joins the overlay through the bootstrap list (Kademlia: dials it; Chord: dials, checks and joins the ring). */
  private async dialAll (): Promise<void> {
    const shutdown = this.controller?.signal
    if (shutdown == null) return
    try {
      // each overlay bounds every dial of a join itself
      const { connected, failed } = await this.overlay.join(this.init.list, { signal: shutdown })
      if (failed > 0 && !shutdown.aborted) this.init.log('bootstrap: %d of %d peers could not be reached', failed, this.init.list.length)
      // the self-lookups that fill the table need a connection to start
      // from: ones that ran before this join connected found none and stopped
      if (connected > 0) this.refresh()
    } catch (err) {
      if (!shutdown.aborted) this.init.log('bootstrap join failed - %e', err)
    }
  }

  private scheduleLookup (delayMs: number, idleLookups: number): void {
    const signal = this.controller?.signal
    this.lookingUp = false
    if (signal == null || signal.aborted) return
    this.lookingUp = true
    this.lookupTimer = setTimeout(() => {
      const before = this.init.routingTableSize()
      void this.selfLookup(signal).then(() => {
        const after = this.init.routingTableSize()
        const idle = after > before ? 0 : idleLookups + 1
        if (after < this.init.targetSize && idle < (this.init.maxIdleLookups ?? 1)) {
          this.scheduleLookup(Math.min(Math.max(delayMs, 500) * 1.5, this.init.maxLookupIntervalMs ?? 5_000), idle)
        } else {
          this.lookingUp = false
        }
      })
    }, delayMs)
    this.lookupTimer.unref()
  }

  private async selfLookup (shutdown: AbortSignal): Promise<void> {
    if (this.node.getConnections().length === 0) return
    try {
      const signal = AbortSignal.any([shutdown, AbortSignal.timeout(SELF_LOOKUP_TIMEOUT_MS)])
      // the lookup is what fills the table: every peer it contacts is added
      await this.overlay.lookup(this.node.peerId.toMultihash().bytes, 1, { signal })
    } catch (err) {
      if (!shutdown.aborted) this.init.log('self lookup failed - %e', err)
    }
  }
}
