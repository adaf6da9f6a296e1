/**
 * Where the verified pieces of one download go: every output file attached
 * to it (each `shoal fetch` of the root, with its own path), and the store
 * for what no output keeps. The first output attached while the file has
 * raw leaves keeps those leaves (a FileBacking, file-backing.ts) instead of
 * the blockstore; dag-pb nodes, and every piece of a download without an
 * output (an API stream), go to the blockstore. An output opens before it
 * joins, and the download waits for outputs being opened before its first
 * block, so that block already goes to the file that keeps it.
 */
import type { CID } from 'multiformats/cid'
import type { FetchSession } from '../store/fetch-session.ts'
import { FileBacking } from './file-backing.ts'
import type { FileLayout, FilePiece } from './file-layout.ts'
import type { OutputFile } from './output-file.ts'

export interface OutputSetComponents {
  store: Pick<FetchSession, 'keepInFile' | 'fileRenamed' | 'storeBlock'>
}

export interface OutputSetInit {
  root: CID
}

export class OutputSet {
  private readonly components: OutputSetComponents
  private readonly init: OutputSetInit
  private readonly sinks = new Set<OutputFile>()
  /** Outputs being opened: the download waits for them. */
  private readonly opening = new Set<Promise<void>>()
  private keeper?: FileBacking

  constructor (components: OutputSetComponents, init: OutputSetInit) {
    this.components = components
    this.init = init
  }

  /** The output keeping the raw leaves now, if any. */
  get backing (): FileBacking | undefined {
    return this.keeper
  }

  /**
   * Opens `sink` at the file's size once `layout` is known, and adds it.
   * It counts as being opened from this call on (`opened()` waits for it).
   */
  async add (sink: OutputFile, layout: Promise<FileLayout>, signal?: AbortSignal): Promise<FileLayout> {
    const opened = Promise.withResolvers<void>()
    this.opening.add(opened.promise)
    try {
      const known = await layout
      await sink.open(known.size)
      if (signal?.aborted === true) {
        // given up while it opened (the caller may have abandoned it already): close it here, it must not join
        await sink.abandon()
        signal.throwIfAborted()
      }
      this.sinks.add(sink)
      if (this.keeper == null && known.pieces.some(p => p.raw)) {
        const { store } = this.components
        this.keeper = new FileBacking({ root: this.init.root, sink, record: async (root, path, final, leaves) => { await store.keepInFile(root, path, final, leaves) } })
      }
      return known
    } finally {
      this.opening.delete(opened.promise)
      opened.resolve()
    }
  }

  /** Resolves once every output being opened now is open (or failed to). */
  async opened (): Promise<void> {
    await Promise.all(this.opening)
  }

  /**
   * Writes a verified piece to every output and, unless the backing output
   * keeps it, to the store. Resolves once the bytes are written (the caller
   * may reuse them), with `durable`, which resolves once the piece is here
   * for good (fsynced, and named or recorded).
   */
  async deliver (piece: FilePiece, bytes: Uint8Array): Promise<{ durable: Promise<void> }> {
    const { store } = this.components
    const backing = piece.raw ? this.keeper : undefined
    const writes = [...this.sinks].map(async sink => { await sink.write(piece.offset, bytes) })
    const storing = backing == null ? store.storeBlock(piece.cid, bytes, { verified: true }) : undefined
    await Promise.all([...writes, storing])
    if (backing != null && backing === this.keeper) {
      return { durable: backing.add({ cid: piece.cid, offset: piece.offset, size: piece.size }) }
    }
    // the backing output was given up meanwhile: the store keeps it after all
    const { stored } = await (storing ?? store.storeBlock(piece.cid, bytes, { verified: true }))
    return { durable: stored }
  }

  /** Writes a piece's bytes into one output attached late (the backing one also records a raw leaf). */
  async copyInto (sink: OutputFile, piece: FilePiece, bytes: Uint8Array): Promise<void> {
    await sink.write(piece.offset, bytes)
    const backing = this.keeper
    if (piece.raw && backing?.sink === sink) {
      const adding = backing.add({ cid: piece.cid, offset: piece.offset, size: piece.size })
      adding.catch(() => {}) // made durable by complete(); a failure surfaces there
    }
  }

  /** Makes the leaves the backing output has so far durable and recorded. */
  async flush (): Promise<void> {
    await this.keeper?.flush()
  }

  /** The fetch into `sink` is over: its leaves durable and recorded, the file renamed into place. */
  async complete (sink: OutputFile): Promise<void> {
    const backing = this.keeper?.sink === sink ? this.keeper : undefined
    if (backing != null) {
      this.keeper = undefined
      await backing.flush()
    }
    this.sinks.delete(sink)
    await sink.finish()
    // also for a sink that did not keep leaves now: it may have, in an earlier, interrupted fetch
    await this.components.store.fileRenamed(this.init.root, sink.partPath, sink.target)
  }

  /**
   * `sink` is given up: it leaves the set, and what it kept is made durable
   * and recorded, for a resume. True when it was the output keeping leaves.
   */
  async remove (sink: OutputFile): Promise<boolean> {
    this.sinks.delete(sink)
    if (this.keeper?.sink !== sink) return false
    const backing = this.keeper
    this.keeper = undefined
    // a failed flush only loses what a resume would have kept: the download goes on either way
    await backing.flush().catch(() => {})
    return true
  }
}
