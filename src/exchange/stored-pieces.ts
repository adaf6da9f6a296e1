/**
 * Which pieces of one download are here for good, and the writes still on
 * their way there. A piece is verified, then written (the scheduler may
 * reuse its buffer), and durable later: fsynced and named in the
 * blockstore, or fsynced and recorded in the file that keeps the leaves.
 * Only a durable piece counts in the progress report (what a resume keeps)
 * and reaches streaming readers; the download commits once every write
 * has settled.
 */
import { raceSignal } from '../utils/wait.ts'
import type { FilePiece } from './file-layout.ts'

export class StoredPieces {
  private readonly pieces: FilePiece[]
  /** 1 for each durable piece. */
  private readonly durable: Uint8Array
  /** Verified, not yet durable: an output attached now copies them too. */
  private readonly verified = new Set<number>()
  /** Writes becoming durable (leaves, or what a given-up output kept, moving to the store). */
  private readonly settling = new Set<Promise<void>>()
  private waiters: Array<() => void> = []
  private ended?: Error
  /** Durable raw leaves and bytes of every kind of piece. */
  blocks = 0
  bytes = 0
  /** Of those, what was here before the download began. */
  readonly localBlocks: number
  readonly localBytes: number

  /** `have[i]`: piece i is here already (a dag-pb node, or a leaf found and re-checked). */
  constructor (pieces: FilePiece[], have: boolean[]) {
    this.pieces = pieces
    this.durable = new Uint8Array(pieces.length)
    let localBlocks = 0
    let localBytes = 0
    have.forEach((h, i) => {
      if (!h) return
      this.durable[i] = 1
      if (pieces[i].raw) { this.blocks++; localBlocks++; localBytes += pieces[i].size }
      this.bytes += pieces[i].size
    })
    this.localBlocks = localBlocks
    this.localBytes = localBytes
  }

  isDurable (i: number): boolean {
    return this.durable[i] === 1
  }

  /** Verified: durable, or on its way. */
  isVerified (i: number): boolean {
    return this.durable[i] === 1 || this.verified.has(i)
  }

  /** Piece i is verified; it is being written. */
  verify (i: number): void {
    this.verified.add(i)
  }

  /** Piece i is written; `durable` resolves once it is here for good. */
  written (i: number, durable: Promise<void>, onError: (err: Error) => void): void {
    this.track(durable.then(() => { this.madeDurable(i) }), onError)
  }

  /** A write that must settle before the commit; `onError` hears of its failure. */
  track (write: Promise<void>, onError: (err: Error) => void): void {
    this.settling.add(write)
    write.then(() => { this.settling.delete(write) }, (err: unknown) => { onError(err as Error) })
  }

  /** Resolves once every write tracked so far has settled; rejects if one failed. */
  async settled (): Promise<void> {
    await Promise.all(this.settling)
  }

  /** Resolves once piece i is durable; rejects once the download has ended without it. */
  async wait (i: number, signal?: AbortSignal): Promise<void> {
    while (this.durable[i] !== 1) {
      if (this.ended != null) throw this.ended
      signal?.throwIfAborted()
      await raceSignal(new Promise<void>(resolve => { this.waiters.push(resolve) }), signal)
    }
  }

  /** The download ended (with `reason`): pieces not durable now never will be. */
  end (reason: Error): void {
    this.ended ??= reason
    this.wake()
  }

  private madeDurable (i: number): void {
    this.verified.delete(i)
    this.durable[i] = 1
    this.blocks++
    this.bytes += this.pieces[i].size
    this.wake()
  }

  private wake (): void {
    const waiting = this.waiters
    this.waiters = []
    for (const wake of waiting) wake()
  }
}
