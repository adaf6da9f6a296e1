/**
 * One peer's part in a fetch (WebTorrent's per-wire request pipeline): the
 * pieces it holds, the requests it owes, and its measured throughput, from
 * which its pipeline depth follows. A peer keeps about PIPELINE_MS of data
 * in flight, MIN_PIPELINE to MAX_PIPELINE blocks (the scheduler also caps
 * its bytes), so a fast peer gets more blocks at once and a slow one fewer.
 * A request whose answer is late by STALL_FACTOR times what the rate
 * predicts is stalled: the scheduler lets another peer race it.
 */
import type { BlockSource } from './block-source.ts'

/** What one peer did for a fetch, kept after it is dropped. */
export interface PeerReport {
  bytes: number
  blocks: number
  /** Measured throughput (bytes/s), while it was busy. */
  rate: number
  dropped?: string
}

/** One outstanding want. */
export interface Request {
  sentAt: number
  /** Past this (performance.now()), the request is stalled. */
  expectedBy: number
}

/** How much data (in time) each peer's pipeline aims to hold. */
const PIPELINE_MS = 250
const MIN_PIPELINE = 2
const MAX_PIPELINE = 8
/** Depth before the first block has measured the peer. */
const INITIAL_PIPELINE = 4
/** A request is stalled after this many times its expected time (and at least STALL_MIN_MS). */
const STALL_FACTOR = 3
const STALL_MIN_MS = 1_000
/** Weight of the newest sample in the rate's moving average. */
const RATE_SAMPLE_WEIGHT = 0.25

export class PeerPipeline {
  readonly id: string
  readonly source: BlockSource
  /** 1 for each piece the peer holds. */
  readonly has: Uint8Array
  /** Requests it owes, by piece index. */
  readonly inflight = new Map<number, Request>()
  inflightBytes = 0
  /** Bytes per millisecond, averaged over deliveries; unknown until the first. */
  rate?: number
  /** Verified bytes and blocks it sent. */
  bytes = 0
  blocks = 0
  private lastDeliveryAt = 0

  constructor (source: BlockSource, pieces: number) {
    this.id = source.peerId
    this.source = source
    this.has = new Uint8Array(pieces)
  }

  /** Requests this peer should have outstanding, for pieces of about `pieceSize` bytes. */
  depth (pieceSize: number): number {
    if (this.rate == null) return INITIAL_PIPELINE
    return Math.max(MIN_PIPELINE, Math.min(MAX_PIPELINE, Math.ceil(this.rate * PIPELINE_MS / pieceSize)))
  }

  /** Records a want of piece `i` (`size` bytes) sent now; its deadline counts what is queued before it. */
  request (i: number, size: number, now: number): Request {
    this.inflightBytes += size
    const expectedMs = this.rate != null ? this.inflightBytes / this.rate : 0
    const request: Request = { sentAt: now, expectedBy: now + Math.max(STALL_MIN_MS, STALL_FACTOR * expectedMs) }
    this.inflight.set(i, request)
    return request
  }

  /** Takes back a request (answered, cancelled or failed); false if it was taken back already. */
  release (i: number, request: Request, size: number): boolean {
    if (this.inflight.get(i) !== request) return false
    this.inflight.delete(i)
    this.inflightBytes -= size
    return true
  }

  /** A block of `bytes` arrived for `request`: a rate sample over the time since the later of the last block and the request. */
  measure (bytes: number, request: Request, now: number): void {
    const dt = Math.max(1, now - Math.max(this.lastDeliveryAt, request.sentAt))
    const sample = bytes / dt
    this.rate = this.rate == null ? sample : (1 - RATE_SAMPLE_WEIGHT) * this.rate + RATE_SAMPLE_WEIGHT * sample
    this.lastDeliveryAt = now
  }

  /** Measured rate in bytes per second (0 while unknown). */
  bytesPerSecond (): number {
    return Math.round((this.rate ?? 0) * 1000)
  }

  /**
   * Milliseconds since the peer last showed life while owing blocks: not
   * one byte since the oldest request it owes went out. 0 when it owes none.
   */
  silentFor (now: number): number {
    if (this.inflight.size === 0) return 0
    let oldest = Infinity
    for (const req of this.inflight.values()) oldest = Math.min(oldest, req.sentAt)
    return now - Math.max(this.source.lastByteAt, oldest)
  }

  /** True when one of its requests is past its deadline. */
  stalled (now: number): boolean {
    for (const req of this.inflight.values()) if (now >= req.expectedBy) return true
    return false
  }
}

/** The PeerReport of every peer that took part in a fetch. */
export class PeerReports {
  private readonly reports = new Map<string, PeerReport>()
  /** What a peer sent through the pipelines it had before its current one (it may be dropped and come back). */
  private readonly earlier = new Map<string, { bytes: number, blocks: number }>()

  /** A peer joined, or came back after a timeout or a failed stream (with a new pipeline, counting from 0). */
  joined (id: string): void {
    const report = this.reports.get(id)
    if (report == null) {
      this.reports.set(id, { bytes: 0, blocks: 0, rate: 0 })
      return
    }
    delete report.dropped
    this.earlier.set(id, { bytes: report.bytes, blocks: report.blocks })
  }

  /** It sent a verified block: its totals over every pipeline it had, and its current rate. */
  sent (peer: PeerPipeline): void {
    const report = this.reports.get(peer.id)
    if (report == null) return
    const before = this.earlier.get(peer.id)
    report.bytes = (before?.bytes ?? 0) + peer.bytes
    report.blocks = (before?.blocks ?? 0) + peer.blocks
    report.rate = peer.bytesPerSecond()
  }

  dropped (id: string, why: string): void {
    const report = this.reports.get(id)
    if (report != null) report.dropped = why
  }

  all (): Record<string, PeerReport> {
    return Object.fromEntries(this.reports)
  }
}
