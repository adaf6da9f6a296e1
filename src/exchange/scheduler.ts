/**
 * The BitTorrent-style block scheduler of one fetch: which block to ask
 * which peer for, and when. RarestFirst picks the pieces, a PeerPipeline per
 * peer sizes its requests; this class hands them out, fastest peers first,
 * checks what comes back, and races and drops:
 * - a request well past what its peer's rate predicts is "stalled": other
 *   peers may race it; once every missing block has been asked for, idle
 *   peers race the oldest outstanding ones (the endgame). The first
 *   verified copy wins and the other requests are cancelled.
 * - a peer silent for PEER_TIMEOUT_MS while owing blocks, or whose stream
 *   fails, is dropped and its blocks go to the others (it may come back on
 *   a new stream); one that sends a block that does not hash to its CID is
 *   banned for the rest of the fetch.
 * Bytes asked for and not yet delivered stay under maxPendingBytes, and
 * MAX_INFLIGHT_BYTES_PER_PEER per peer.
 */
import type { Logger } from '@libp2p/interface'
import type { CID } from 'multiformats/cid'
import type { BlockSource } from './block-source.ts'
import { PeerPipeline, PeerReports, type PeerReport, type Request } from './peer-pipeline.ts'
import { PieceState, RarestFirst } from './rarest-first.ts'
import { MAX_INFLIGHT_BYTES_PER_PEER } from './xfer-client.ts'

/** A block the scheduler fetches: a raw leaf of the file. */
export interface Piece {
  cid: CID
  size: number
}

export interface SchedulerInit {
  pieces: Piece[]
  /** Pieces already here (true) that need no fetching. */
  have: boolean[]
  /** A block's buffer (from the source's allocator) is no longer used: it may be reused. */
  recycle: (bytes: Uint8Array) => void
  /** True when `bytes` hash to `cid` (may run off the main thread). */
  verify: (cid: CID, bytes: Uint8Array) => Promise<boolean>
  /** Stores a verified piece; its bytes count against memory until it resolves. */
  deliver: (index: number, bytes: Uint8Array) => Promise<void>
  /** A piece was verified, sent by this peer (progress by source: the dashboard's piece bar). */
  onVerified?: (index: number, peerId: string) => void
  log: Logger
  /** Bytes requested or received and not yet delivered, at most (default DEFAULT_MAX_PENDING_BYTES). */
  maxPendingBytes?: number
}

/** Copies of one block asked for at once, at most (endgame and stalls). */
const MAX_RACERS = 3
/** A peer that owes blocks and sends nothing for this long is dropped. */
const PEER_TIMEOUT_MS = 15_000
/** How often stalls and silent peers are looked for. */
const TICK_MS = 200
const DEFAULT_MAX_PENDING_BYTES = 32 * 1024 * 1024

export class BlockScheduler {
  private readonly init: SchedulerInit
  private readonly pieces: Piece[]
  private readonly picker: RarestFirst
  private readonly peers = new Map<string, PeerPipeline>()
  private readonly reports = new PeerReports()
  private readonly banned = new Set<string>()
  private readonly maxPending: number
  private pendingBytes = 0
  private delivered = 0
  private timer?: ReturnType<typeof setInterval>
  private finished = false
  private readonly result = Promise.withResolvers<void>()
  /** Bytes that arrived for blocks already verified from another peer. */
  wasted = 0

  constructor (init: SchedulerInit) {
    this.init = init
    this.pieces = init.pieces
    this.picker = new RarestFirst(init.have)
    this.maxPending = init.maxPendingBytes ?? DEFAULT_MAX_PENDING_BYTES
    for (const h of init.have) if (h) this.delivered++
    this.result.promise.catch(() => {}) // reaches whoever awaits run()
  }

  /** Resolves when every piece is delivered; rejects when a delivery fails or on abort. */
  async run (signal?: AbortSignal): Promise<void> {
    if (this.done) this.finish()
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
    return this.picker.orphans()
  }

  /** Pieces still to verify. */
  needed (): number[] {
    return this.picker.needed()
  }

  hasPeer (id: string): boolean {
    return this.peers.has(id)
  }

  /** A peer that sent wrong bytes: never asked again in this fetch. */
  isBanned (id: string): boolean {
    return this.banned.has(id)
  }

  /** Adds a peer, or tells what more it holds: `indexes` of pieces it has. */
  addPeer (source: BlockSource, indexes: number[]): void {
    if (this.finished || this.isBanned(source.peerId)) return
    let peer = this.peers.get(source.peerId)
    if (peer != null && peer.source !== source) {
      this.dropPeer(peer, 'replaced by a new stream')
      peer = undefined
    }
    if (peer == null) {
      peer = new PeerPipeline(source, this.pieces.length)
      this.peers.set(peer.id, peer)
      this.reports.joined(peer.id)
    }
    this.picker.gained(peer.has, indexes)
    this.pump()
  }

  /** Fetches pieces `from` .. `to` (exclusive) before any other. */
  prioritize (from: number, to: number): void {
    this.picker.prioritize(from, to)
    this.pump()
  }

  /** Bytes, blocks and measured rate per peer that took part. */
  peerReports (): Record<string, PeerReport> {
    return this.reports.all()
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
      for (const i of peer.inflight.keys()) peer.source.cancel(this.pieces[i].cid)
      peer.inflight.clear()
    }
    if (err != null) this.result.reject(err)
    else this.result.resolve()
  }

  /** Hands out requests until every useful peer's pipeline is full. */
  private pump (): void {
    if (this.finished) return
    const peers = [...this.peers.values()].sort((a, b) => (b.rate ?? 0) - (a.rate ?? 0))
    const pieceSize = Math.max(1, this.pieces.length === 0 ? 1 : this.pieces[0].size)
    let endgame: boolean | undefined
    for (const peer of peers) {
      const depth = peer.depth(pieceSize)
      while (peer.inflight.size < depth && peer.inflightBytes < MAX_INFLIGHT_BYTES_PER_PEER && this.pendingBytes < this.maxPending) {
        let i = this.picker.pick(peer.has)
        if (i == null) {
          endgame ??= !this.picker.anyUnasked()
          i = this.pickRace(peer, endgame)
        }
        if (i == null) break
        this.request(peer, i)
      }
    }
  }

  /**
   * A piece another peer is already fetching that this one may race: any
   * stalled request, or, once nothing is left unasked (endgame), the oldest
   * outstanding request.
   */
  private pickRace (peer: PeerPipeline, endgame: boolean): number | undefined {
    const now = performance.now()
    let best: number | undefined
    let bestSentAt = Infinity
    for (const other of this.peers.values()) {
      if (other === peer) continue
      for (const [i, req] of other.inflight) {
        if (peer.has[i] !== 1 || peer.inflight.has(i) || this.picker.racersOf(i) >= MAX_RACERS || this.picker.stateOf(i) !== PieceState.MISSING) continue
        if (!endgame && now < req.expectedBy) continue
        if (req.sentAt < bestSentAt) { best = i; bestSentAt = req.sentAt }
      }
    }
    return best
  }

  private request (peer: PeerPipeline, i: number): void {
    const piece = this.pieces[i]
    this.pendingBytes += piece.size
    this.picker.requested(i)
    const request = peer.request(i, piece.size, performance.now())
    peer.source.want(piece.cid).then(
      bytes => { this.answered(peer, i, request, bytes) },
      err => { this.dropPeer(peer, `stream failed: ${(err as Error).message}`) }
    )
  }

  /** Takes back a request (answered, cancelled or failed); false if it was already taken back. */
  private release (peer: PeerPipeline, i: number, request: Request): boolean {
    if (!peer.release(i, request, this.pieces[i].size)) return false
    this.pendingBytes -= this.pieces[i].size
    this.picker.released(i)
    return true
  }

  private answered (peer: PeerPipeline, i: number, request: Request, bytes: Uint8Array | undefined): void {
    if (this.finished || !this.release(peer, i, request)) {
      if (bytes != null) {
        this.wasted += bytes.length
        this.init.recycle(bytes)
      }
      return
    }
    if (bytes == null) {
      // the peer does not hold it after all
      this.picker.lost(peer.has, i)
      this.pump()
      return
    }
    if (this.picker.stateOf(i) !== PieceState.MISSING) {
      this.wasted += bytes.length
      this.init.recycle(bytes)
      this.pump()
      return
    }
    peer.measure(bytes.length, request, performance.now())
    this.picker.setState(i, PieceState.VERIFYING)
    this.pendingBytes += bytes.length
    this.init.verify(this.pieces[i].cid, bytes).then(ok => {
      if (this.finished) { this.init.recycle(bytes); return }
      if (!ok) {
        this.pendingBytes -= bytes.length
        this.init.recycle(bytes)
        this.picker.setState(i, PieceState.MISSING)
        this.banned.add(peer.id)
        this.dropPeer(peer, 'sent a block that does not match its CID')
        return
      }
      this.verified(peer, i, bytes)
    }, err => { this.pendingBytes -= bytes.length; this.init.recycle(bytes); this.finish(err as Error) })
  }

  private verified (peer: PeerPipeline, i: number, bytes: Uint8Array): void {
    this.picker.setState(i, PieceState.VERIFIED)
    peer.bytes += bytes.length
    peer.blocks++
    this.reports.sent(peer)
    this.init.onVerified?.(i, peer.id)
    // the race is won: the others need not send it
    for (const other of this.peers.values()) {
      const req = other.inflight.get(i)
      if (req == null) continue
      this.release(other, i, req)
      other.source.cancel(this.pieces[i].cid)
    }
    this.pump()
    this.init.deliver(i, bytes).finally(() => { this.init.recycle(bytes) }).then(() => {
      this.pendingBytes -= bytes.length
      this.delivered++
      if (this.done) this.finish()
      else this.pump()
    }, err => { this.finish(err as Error) })
  }

  private dropPeer (peer: PeerPipeline, why: string): void {
    if (this.peers.get(peer.id) !== peer) return
    this.peers.delete(peer.id)
    this.reports.dropped(peer.id, why)
    this.init.log('peer %s dropped from this fetch: %s', peer.id, why)
    for (const [i, req] of [...peer.inflight]) this.release(peer, i, req)
    this.picker.left(peer.has)
    peer.source.abort(new Error(`dropped: ${why}`))
    this.pump()
  }

  /** Races stalled requests and drops peers silent too long. */
  private tick (): void {
    if (this.finished) return
    const now = performance.now()
    let stalled = false
    for (const peer of [...this.peers.values()]) {
      if (peer.inflight.size === 0) continue
      if (peer.stalled(now)) stalled = true
      if (peer.silentFor(now) > PEER_TIMEOUT_MS) this.dropPeer(peer, `sent nothing for ${PEER_TIMEOUT_MS / 1000} s`)
    }
    if (stalled) this.pump()
  }
}
