/**
 * The BitTorrent-style block scheduler of one fetch: which block to ask
 * which peer for, and when.
 *
 * - Every peer with something useful is kept busy: it has a pipeline of
 *   requests sized by its measured throughput (about PIPELINE_MS of data,
 *   2 to 16 blocks, at most MAX_INFLIGHT_BYTES_PER_PEER), so a fast peer
 *   gets more blocks and a slow one fewer, and the fastest are served first.
 * - Block choice: blocks in the priority range first (a streaming reader's
 *   range), then rarest-first (fewest known holders) among the next
 *   RAREST_WINDOW candidates in file order, which keeps a fetch close to
 *   sequential when every block is equally common.
 * - A request that runs well past the time its peer's rate predicts is
 *   "stalled": other peers may race it. Once every missing block has been
 *   asked for, idle peers race the oldest outstanding ones (the endgame);
 *   the first verified copy wins and the other requests are cancelled.
 * - A peer that sends nothing for PEER_TIMEOUT_MS while owing blocks, or
 *   whose stream fails, is dropped and its blocks go back to the others (it
 *   may be added again later, on a new stream). One that sends a block that
 *   does not hash to its CID is banned for the rest of the fetch.
 *
 * Memory is bounded: bytes asked for and not yet written never exceed
 * maxPendingBytes.
 */
import type { Logger } from '@libp2p/interface'
import type { CID } from 'multiformats/cid'
import { MAX_INFLIGHT_BYTES_PER_PEER, type XferSession } from './xfer-client.ts'

/** A block the scheduler fetches: a raw leaf of the file. */
export interface Piece {
  cid: CID
  size: number
}

export interface SchedulerInit {
  pieces: Piece[]
  /** Pieces already here (true) that need no fetching. */
  have: boolean[]
  /** A block's buffer (from the session's allocator) is no longer used: it may be reused. */
  recycle: (bytes: Uint8Array) => void
  /** True when `bytes` hash to `cid` (may run off the main thread). */
  verify: (cid: CID, bytes: Uint8Array) => Promise<boolean>
  /** Stores a verified piece; its bytes count against memory until it resolves. */
  deliver: (index: number, bytes: Uint8Array) => Promise<void>
  log: Logger
  /** Bytes requested or received and not yet delivered, at most (default 64 MiB). */
  maxPendingBytes?: number
}

export interface PeerReport {
  bytes: number
  blocks: number
  /** Measured throughput (bytes/s), while it was busy. */
  rate: number
  dropped?: string
}

/** How much data (in time) each peer's pipeline aims to hold. */
const PIPELINE_MS = 250
const MIN_PIPELINE = 2
const MAX_PIPELINE = 8
const INITIAL_PIPELINE = 4
/** Candidates looked at when picking the rarest block. */
const RAREST_WINDOW = 64
/** Copies of one block asked for at once, at most (endgame and stalls). */
const MAX_RACERS = 3
/** A request is stalled after this many times its expected time (and at least STALL_MIN_MS). */
const STALL_FACTOR = 3
const STALL_MIN_MS = 1_000
/** A peer that owes blocks and sends nothing for this long is dropped. */
export const PEER_TIMEOUT_MS = 15_000
const TICK_MS = 200
const DEFAULT_MAX_PENDING = 32 * 1024 * 1024

interface Request {
  sentAt: number
  expectedBy: number
}

interface PeerState {
  id: string
  session: XferSession
  has: Uint8Array
  inflight: Map<number, Request>
  inflightBytes: number
  /** bytes/ms, exponentially averaged over deliveries. */
  rate?: number
  lastDeliveryAt: number
  bytes: number
  blocks: number
}

export class BlockScheduler {
  private readonly init: SchedulerInit
  private readonly pieces: Piece[]
  /** 0 missing, 1 verifying, 2 verified (being delivered or delivered). */
  private readonly state: Uint8Array
  private readonly racers: Uint8Array
  private readonly holders: Uint16Array
  private readonly peers = new Map<string, PeerState>()
  private readonly reports = new Map<string, PeerReport>()
  private readonly banned = new Set<string>()
  private readonly maxPending: number
  private pendingBytes = 0
  private missing: number
  private delivered = 0
  private firstMissing = 0
  private priorityFrom = 0
  private priorityTo = 0
  private timer?: ReturnType<typeof setInterval>
  private finished = false
  private readonly result = Promise.withResolvers<void>()
  /** Bytes that arrived for blocks already verified from another peer. */
  wasted = 0
  /** Called after each piece is delivered. */
  onDelivered?: (index: number) => void

  constructor (init: SchedulerInit) {
    this.init = init
    this.pieces = init.pieces
    const n = init.pieces.length
    this.state = new Uint8Array(n)
    this.racers = new Uint8Array(n)
    this.holders = new Uint16Array(n)
    this.maxPending = init.maxPendingBytes ?? DEFAULT_MAX_PENDING
    this.missing = 0
    for (let i = 0; i < n; i++) {
      if (init.have[i]) {
        this.state[i] = 2
        this.delivered++
      } else {
        this.missing++
      }
    }
    this.result.promise.catch(() => {})
  }

  /** Resolves when every piece is delivered; rejects when a delivery fails or on abort. */
  async run (signal?: AbortSignal): Promise<void> {
    if (this.delivered === this.pieces.length) this.finish()
    const onAbort = (): void => { this.finish(signal?.reason as Error) }
    signal?.addEventListener('abort', onAbort, { once: true })
    if (signal?.aborted === true) onAbort()
    this.timer = setInterval(() => { this.tick() }, TICK_MS)
    this.timer.unref()
    try {
      this.pump()
      await this.result.promise
    } finally {
      signal?.removeEventListener('abort', onAbort)
    }
  }

  get done (): boolean {
    return this.delivered === this.pieces.length
  }

  /** Pieces not yet verified that no known peer holds. */
  orphans (): number[] {
    const out: number[] = []
    for (let i = 0; i < this.pieces.length; i++) if (this.state[i] === 0 && this.holders[i] === 0) out.push(i)
    return out
  }

  /** Pieces still to verify. */
  needed (): number[] {
    const out: number[] = []
    for (let i = 0; i < this.pieces.length; i++) if (this.state[i] === 0) out.push(i)
    return out
  }

  hasPeer (id: string): boolean {
    return this.peers.has(id)
  }

  /** A peer that sent wrong bytes: never asked again in this fetch. */
  isBanned (id: string): boolean {
    return this.banned.has(id)
  }

  /** Adds a peer, or tells what more it holds: `indexes` of pieces it has. */
  addPeer (session: XferSession, indexes: number[]): void {
    if (this.finished || this.isBanned(session.peerId)) return
    let peer = this.peers.get(session.peerId)
    if (peer != null && peer.session !== session) {
      this.dropPeer(peer, 'replaced by a new stream')
      peer = undefined
    }
    if (peer == null) {
      peer = {
        id: session.peerId,
        session,
        has: new Uint8Array(this.pieces.length),
        inflight: new Map(),
        inflightBytes: 0,
        lastDeliveryAt: 0,
        bytes: 0,
        blocks: 0
      }
      this.peers.set(peer.id, peer)
      const report = this.reports.get(peer.id)
      if (report == null) this.reports.set(peer.id, { bytes: 0, blocks: 0, rate: 0 })
      else delete report.dropped // back after a timeout or a failed stream
    }
    for (const i of indexes) {
      if (peer.has[i] === 1) continue
      peer.has[i] = 1
      this.holders[i]++
    }
    this.pump()
  }

  /** Fetches pieces `from` .. `to` (exclusive) before any other. */
  prioritize (from: number, to: number): void {
    this.priorityFrom = Math.max(0, from)
    this.priorityTo = Math.min(this.pieces.length, to)
    this.pump()
  }

  /** Bytes, blocks and measured rate per peer that took part. */
  peerReports (): Record<string, PeerReport> {
    return Object.fromEntries(this.reports)
  }

  /** Peers with requests outstanding now. */
  activePeers (): number {
    let n = 0
    for (const p of this.peers.values()) if (p.inflight.size > 0) n++
    return n
  }

  stop (err?: Error): void {
    this.finish(err ?? new Error('fetch stopped'))
  }

  private finish (err?: Error): void {
    if (this.finished) return
    this.finished = true
    clearInterval(this.timer)
    for (const peer of this.peers.values()) {
      for (const i of peer.inflight.keys()) peer.session.cancel(this.pieces[i].cid)
      peer.inflight.clear()
    }
    if (err != null) this.result.reject(err)
    else this.result.resolve()
  }

  /** Hands out requests until every useful peer's pipeline is full. */
  private pump (): void {
    if (this.finished) return
    const peers = [...this.peers.values()].sort((a, b) => (b.rate ?? 0) - (a.rate ?? 0))
    let endgame: boolean | undefined
    for (const peer of peers) {
      const window = this.windowOf(peer)
      while (peer.inflight.size < window && peer.inflightBytes < MAX_INFLIGHT_BYTES_PER_PEER && this.pendingBytes < this.maxPending) {
        let i = this.pickFresh(peer)
        if (i == null) {
          endgame ??= !this.anyUnasked()
          i = this.pickRace(peer, endgame)
        }
        if (i == null) break
        this.request(peer, i)
      }
    }
  }

  private windowOf (peer: PeerState): number {
    if (peer.rate == null) return INITIAL_PIPELINE
    const avg = this.averagePieceSize()
    return Math.max(MIN_PIPELINE, Math.min(MAX_PIPELINE, Math.ceil(peer.rate * PIPELINE_MS / avg)))
  }

  private averagePieceSize (): number {
    return Math.max(1, this.pieces.length === 0 ? 1 : this.pieces[0].size)
  }

  /** A missing piece nobody is asking for that this peer has: priority range, then rarest in file order. */
  private pickFresh (peer: PeerState): number | undefined {
    for (let i = this.priorityFrom; i < this.priorityTo; i++) {
      if (this.state[i] === 0 && this.racers[i] === 0 && peer.has[i] === 1) return i
    }
    // only verified pieces are passed for good: one being verified may fail and be missing again
    while (this.firstMissing < this.pieces.length && this.state[this.firstMissing] === 2) this.firstMissing++
    let best: number | undefined
    let seen = 0
    for (let i = this.firstMissing; i < this.pieces.length && seen < RAREST_WINDOW; i++) {
      if (this.state[i] !== 0 || this.racers[i] !== 0 || peer.has[i] !== 1) continue
      seen++
      if (best == null || this.holders[i] < this.holders[best]) best = i
      if (this.holders[i] <= 1) break
    }
    return best
  }

  /**
   * A piece another peer is already fetching that this one may race: any
   * stalled request, or, once nothing is left unasked (endgame), the oldest
   * outstanding request.
   */
  private pickRace (peer: PeerState, endgame: boolean): number | undefined {
    const now = performance.now()
    let best: number | undefined
    let bestSentAt = Infinity
    for (const other of this.peers.values()) {
      if (other === peer) continue
      for (const [i, req] of other.inflight) {
        if (peer.has[i] !== 1 || peer.inflight.has(i) || this.racers[i] >= MAX_RACERS || this.state[i] !== 0) continue
        if (!endgame && now < req.expectedBy) continue
        if (req.sentAt < bestSentAt) { best = i; bestSentAt = req.sentAt }
      }
    }
    return best
  }

  private anyUnasked (): boolean {
    for (let i = this.firstMissing; i < this.pieces.length; i++) {
      if (this.state[i] === 0 && this.racers[i] === 0 && this.holders[i] > 0) return true
    }
    return false
  }

  private request (peer: PeerState, i: number): void {
    const piece = this.pieces[i]
    const now = performance.now()
    peer.inflightBytes += piece.size
    this.pendingBytes += piece.size
    this.racers[i]++
    const expectedMs = peer.rate != null ? peer.inflightBytes / peer.rate : 0
    const request: Request = { sentAt: now, expectedBy: now + Math.max(STALL_MIN_MS, STALL_FACTOR * expectedMs) }
    peer.inflight.set(i, request)
    peer.session.want(piece.cid).then(
      bytes => { this.answered(peer, i, request, bytes) },
      err => { this.dropPeer(peer, `stream failed: ${(err as Error).message}`) }
    )
  }

  /** Takes back a request (answered, cancelled or failed); false if it was already taken back. */
  private release (peer: PeerState, i: number, request: Request): boolean {
    if (peer.inflight.get(i) !== request) return false
    peer.inflight.delete(i)
    peer.inflightBytes -= this.pieces[i].size
    this.pendingBytes -= this.pieces[i].size
    this.racers[i]--
    return true
  }

  private answered (peer: PeerState, i: number, request: Request, bytes: Uint8Array | undefined): void {
    if (this.finished || !this.release(peer, i, request)) {
      if (bytes != null) {
        this.wasted += bytes.length
        this.init.recycle(bytes)
      }
      return
    }
    if (bytes == null) {
      // the peer does not hold it after all
      if (peer.has[i] === 1) { peer.has[i] = 0; this.holders[i]-- }
      this.pump()
      return
    }
    if (this.state[i] !== 0) {
      this.wasted += bytes.length
      this.init.recycle(bytes)
      this.pump()
      return
    }
    const now = performance.now()
    const dt = Math.max(1, now - Math.max(peer.lastDeliveryAt, request.sentAt))
    const sample = bytes.length / dt
    peer.rate = peer.rate == null ? sample : 0.75 * peer.rate + 0.25 * sample
    peer.lastDeliveryAt = now
    this.state[i] = 1
    this.pendingBytes += bytes.length
    this.init.verify(this.pieces[i].cid, bytes).then(ok => {
      if (this.finished) { this.init.recycle(bytes); return }
      if (!ok) {
        this.pendingBytes -= bytes.length
        this.init.recycle(bytes)
        this.state[i] = 0
        this.banned.add(peer.id)
        this.dropPeer(peer, 'sent a block that does not match its CID')
        return
      }
      this.verified(peer, i, bytes)
    }, err => { this.pendingBytes -= bytes.length; this.init.recycle(bytes); this.finish(err as Error) })
  }

  private verified (peer: PeerState, i: number, bytes: Uint8Array): void {
    this.state[i] = 2
    this.missing--
    peer.bytes += bytes.length
    peer.blocks++
    const report = this.reports.get(peer.id)
    if (report != null) {
      report.bytes = peer.bytes
      report.blocks = peer.blocks
      report.rate = Math.round((peer.rate ?? 0) * 1000)
    }
    // the race is won: the others need not send it
    for (const other of this.peers.values()) {
      const req = other.inflight.get(i)
      if (req == null) continue
      this.release(other, i, req)
      other.session.cancel(this.pieces[i].cid)
    }
    this.pump()
    this.init.deliver(i, bytes).finally(() => { this.init.recycle(bytes) }).then(() => {
      this.pendingBytes -= bytes.length
      this.delivered++
      this.onDelivered?.(i)
      if (this.delivered === this.pieces.length) this.finish()
      else this.pump()
    }, err => { this.finish(err as Error) })
  }

  private dropPeer (peer: PeerState, why: string): void {
    if (this.peers.get(peer.id) !== peer) return
    this.peers.delete(peer.id)
    const report = this.reports.get(peer.id)
    if (report != null) report.dropped = why
    this.init.log('peer %s dropped from this fetch: %s', peer.id, why)
    for (const [i, req] of [...peer.inflight]) this.release(peer, i, req)
    for (let i = 0; i < this.pieces.length; i++) if (peer.has[i] === 1) this.holders[i]--
    peer.session.abort(new Error(`dropped: ${why}`))
    this.pump()
  }

  private tick (): void {
    if (this.finished) return
    const now = performance.now()
    let stalled = false
    for (const peer of [...this.peers.values()]) {
      if (peer.inflight.size === 0) continue
      let oldest = Infinity
      for (const req of peer.inflight.values()) {
        oldest = Math.min(oldest, req.sentAt)
        if (now >= req.expectedBy) stalled = true
      }
      // silent: not one byte since the oldest request it owes went out
      if (now - Math.max(peer.session.lastByteAt, oldest) > PEER_TIMEOUT_MS) this.dropPeer(peer, `sent nothing for ${PEER_TIMEOUT_MS / 1000} s`)
    }
    if (stalled) this.pump()
  }
}
