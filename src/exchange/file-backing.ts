/**
 * A fetch's raw leaves kept in its output file instead of the blockstore
 * (store/file-leaves.ts): leaves written to the file are collected, and in
 * batches the file is fsynced and then the leaves are recorded, so a leaf
 * is never recorded before its bytes are on disk. A batch goes when it
 * holds FLUSH_BYTES, or FLUSH_MS after its first leaf: a slow fetch still
 * makes its progress durable, and streaming readers and the progress
 * report (which counts what a resume keeps) move smoothly. The fetch
 * flushes the last batch itself once every piece is written, so its end
 * never waits for the timer.
 */
import type { CID } from 'multiformats/cid'
import type { FileLeaf } from '../store/file-leaves.ts'
import type { OutputFile } from './output-file.ts'

const FLUSH_BYTES = 8 * 1024 * 1024
const FLUSH_MS = 250

export interface FileBackingInit {
  root: CID
  sink: OutputFile
  /** Records durable leaves (FetchSession.keepInFile). */
  record: (root: CID, path: string, final: string, leaves: FileLeaf[]) => Promise<void>
}

interface Batch {
  leaves: FileLeaf[]
  bytes: number
  done: PromiseWithResolvers<void>
}

export class FileBacking {
  readonly sink: OutputFile
  private readonly init: FileBackingInit
  private batch: Batch = newBatch()
  private timer?: ReturnType<typeof setTimeout>
  /** The flush running, if any: flushes go one at a time. */
  private flushing: Promise<void> = Promise.resolve()

  constructor (init: FileBackingInit) {
    this.init = init
    this.sink = init.sink
  }

  /** A leaf written to the sink at its offset: resolves once it is durable and recorded. */
  async add (leaf: FileLeaf): Promise<void> {
    const batch = this.batch
    batch.leaves.push(leaf)
    batch.bytes += leaf.size
    if (batch.bytes >= FLUSH_BYTES) void this.flush().catch(() => {})
    else if (this.timer == null) {
      this.timer = setTimeout(() => { void this.flush().catch(() => {}) }, FLUSH_MS)
      this.timer.unref()
    }
    return batch.done.promise
  }

  /** Makes every leaf added so far durable and recorded. */
  async flush (): Promise<void> {
    clearTimeout(this.timer)
    this.timer = undefined
    const batch = this.batch
    this.batch = newBatch()
    const previous = this.flushing
    const run = (async () => {
      await previous.catch(() => {})
      if (batch.leaves.length === 0) return
      await this.sink.sync()
      await this.init.record(this.init.root, this.sink.partPath, this.sink.target, batch.leaves)
    })()
    this.flushing = run
    run.then(() => { batch.done.resolve() }, (err: unknown) => { batch.done.reject(err) })
    await run
  }
}

function newBatch (): Batch {
  const done = Promise.withResolvers<void>()
  done.promise.catch(() => {}) // a failed flush reaches whoever awaits add() or flush()
  return { leaves: [], bytes: 0, done }
}
