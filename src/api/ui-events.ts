/**
 * `GET /api/v1/events`: one server-sent-events stream of what the
 * dashboard shows, pushed when it changes (nothing polls):
 *
 * ```
 *  libp2p connection:open/close --> peers, status, swarm
 *  overlay onChange -------------> routing, status
 *  a content route answered -----> holdings, status   (UiEvents.changed)
 *  a replica placed here/dropped -> holdings, status   (peer.onHoldingsChange)
 *  share / fetch progress -------> progress           (UiEvents.progress)
 *  DIR/swarm.json written -------> swarm              (when the repo is a swarm's)
 * ```
 *
 * Each topic is sent whole (`event: routing`, `data: {...}`), once when a
 * stream opens and then at most every FLUSH_MS after a change. The sources
 * are watched only while at least one stream is open.
 */
import { watch, type FSWatcher } from 'node:fs'
import type { ServerResponse } from 'node:http'
import path from 'node:path'
import type { Logger } from '@libp2p/interface'
import type { ShoalPeer } from '../peer/peer.ts'
import { readSwarmView, SWARM_FILE, swarmDirOf } from './ui-swarm.ts'

export type UiTopic = 'status' | 'peers' | 'holdings' | 'routing' | 'swarm'
const TOPICS: UiTopic[] = ['status', 'peers', 'holdings', 'routing', 'swarm']
const FLUSH_MS = 200
/**
 * A peer of the swarm closes its connections before its process exits: the
 * swarm topic is sent again this long after the last connection change.
 */
const SWARM_RECHECK_MS = 3000

/** A share or fetch under way, as the `progress` event carries it. */
export interface UiProgress {
  /** `share:<n>` or `fetch:<cid>`: the same id for every event of one operation. */
  id: string
  kind: 'share' | 'fetch'
  cid?: string
  name?: string
  /** Progress fields as the route's NDJSON lines have them; `done` once it ended. */
  progress?: Record<string, unknown>
  /** A fetch's `sources` (bytes and blocks per peer) when it has ended well. */
  done?: { ok: boolean, message?: string, sources?: Record<string, { bytes: number, blocks: number }> }
}

export interface UiEventsInit {
  address: () => string | null
  log: Logger
}

export class UiEvents {
  private readonly peer: ShoalPeer
  private readonly init: UiEventsInit
  private readonly streams = new Set<ServerResponse>()
  private readonly dirty = new Set<UiTopic>()
  private timer?: NodeJS.Timeout
  private swarmTimer?: NodeJS.Timeout
  private unwatch: Array<() => void> = []

  constructor (peer: ShoalPeer, init: UiEventsInit) {
    this.peer = peer
    this.init = init
  }

  /**
   * Sends every topic on a new stream, then keeps it until it closes. When
   * a first payload fails (the peer stopping under it), the stream is
   * ended and dropped: the page reconnects.
   */
  async subscribe (stream: ServerResponse): Promise<void> {
    if (this.streams.size === 0) this.watch()
    this.streams.add(stream)
    const drop = (): void => {
      if (!this.streams.delete(stream)) return
      if (this.streams.size === 0) this.unwatchAll()
    }
    stream.on('close', drop)
    try {
      for (const topic of TOPICS) write(stream, topic, await this.payload(topic))
    } catch (err) {
      this.init.log.error('dashboard events: the first payload failed, stream ended - %e', err)
      drop()
      stream.end()
    }
  }

  /** Something the dashboard shows changed: send these topics soon. */
  changed (...topics: UiTopic[]): void {
    if (this.streams.size === 0) return
    for (const t of topics) this.dirty.add(t)
    this.timer ??= setTimeout(() => { this.flush().catch(err => { this.init.log.error('dashboard events - %e', err) }) }, FLUSH_MS)
  }

  /** Progress of a share or fetch: sent at once (the routes already rate-limit it). */
  progress (event: UiProgress): void {
    for (const stream of this.streams) write(stream, 'progress', event)
  }

  /** Ends every stream (the API is closing). */
  close (): void {
    clearTimeout(this.timer)
    this.timer = undefined
    for (const stream of this.streams) stream.end()
    this.streams.clear()
    this.unwatchAll()
  }

  private async flush (): Promise<void> {
    this.timer = undefined
    const topics = [...this.dirty]
    this.dirty.clear()
    for (const topic of topics) {
      if (this.streams.size === 0) return
      const data = await this.payload(topic)
      for (const stream of this.streams) write(stream, topic, data)
    }
  }

  private async payload (topic: UiTopic): Promise<unknown> {
    const peer = this.peer
    if (!peer.isStarted) return null
    switch (topic) {
      case 'status': return { ...peer.status(), api: this.init.address() }
      case 'peers': return { peers: peer.peers() }
      case 'holdings': return { holdings: await peer.content.list(), store: peer.content.usage() }
      case 'routing': return peer.overlay.routing()
      case 'swarm': return readSwarmView(peer.repo.path)
    }
  }

  private watch (): void {
    const node = this.peer.libp2p
    const onConnection = (): void => {
      this.changed('peers', 'status', 'swarm')
      clearTimeout(this.swarmTimer)
      this.swarmTimer = setTimeout(() => { this.changed('swarm') }, SWARM_RECHECK_MS)
      this.swarmTimer.unref()
    }
    node.addEventListener('connection:open', onConnection)
    node.addEventListener('connection:close', onConnection)
    const offRouting = this.peer.overlay.onChange(() => { this.changed('routing', 'status') })
    const offHoldings = this.peer.onHoldingsChange(() => { this.changed('holdings', 'status') })
    let watcher: FSWatcher | undefined
    // only a repo laid out as a swarm's (DIR/peer-N) may have a swarm.json beside it: ~/.shoal's folder is not watched
    const dir = swarmDirOf(this.peer.repo.path)
    if (/^peer-\d+$/.test(path.basename(this.peer.repo.path))) {
      try {
        watcher = watch(dir, { persistent: false }, (_event, file) => {
          if (file === SWARM_FILE) this.changed('swarm')
        })
        watcher.on('error', () => { watcher?.close() })
      } catch {
        // a folder that cannot be watched: the swarm view updates with connections only
      }
    }
    this.unwatch = [
      () => { node.removeEventListener('connection:open', onConnection); node.removeEventListener('connection:close', onConnection) },
      offRouting,
      offHoldings,
      () => { watcher?.close() }
    ]
  }

  private unwatchAll (): void {
    for (const off of this.unwatch) off()
    this.unwatch = []
    clearTimeout(this.timer)
    this.timer = undefined
    clearTimeout(this.swarmTimer)
    this.swarmTimer = undefined
    this.dirty.clear()
  }
}

function write (stream: ServerResponse, event: string, data: unknown): void {
  if (stream.writableEnded) return
  stream.write(`event: ${event}\ndata: ${JSON.stringify(data)}\n\n`)
}
