/**
 * sha2-256 on a worker thread, so a fetch verifies blocks on one core while
 * the main thread runs the transport (the receiver's CPU is the bound of a
 * fetch; imports hash on the leaf workers, src/store/leaf-workers.ts).
 * Blocks in SharedArrayBuffer memory reach the worker without a copy. The
 * worker is inline source, so it runs the same from the TypeScript sources
 * and from the bundled daemon.
 *
 * Until the worker is running, digests are computed here, on the caller's
 * thread: a worker takes a noticeable while to start, longer on a busy
 * machine, and the first blocks of a daemon's first fetch would wait for
 * it.
 */
import { createHash } from 'node:crypto'
import { Worker } from 'node:worker_threads'

const WORKER_SOURCE = `
const { parentPort } = require('node:worker_threads')
const { createHash } = require('node:crypto')
parentPort.on('message', (m) => {
  parentPort.postMessage({ id: m.id, digest: createHash('sha256').update(m.bytes).digest() })
})
`

export class HashWorker {
  private worker?: Worker
  /** The worker runs its code: digests go to it from now on. */
  private online = false
  private nextId = 0
  private readonly pending = new Map<number, { resolve: (d: Uint8Array) => void, reject: (e: Error) => void }>()
  /** Closed: digests are computed here (a block verified while the peer stops must not start a worker nobody stops). */
  private closed = false

  /** The sha2-256 digest of `bytes` (shared memory is not copied). */
  async digest (bytes: Uint8Array): Promise<Uint8Array> {
    if (this.closed) return createHash('sha256').update(bytes).digest()
    const worker = this.worker ?? this.spawn()
    if (!this.online) return createHash('sha256').update(bytes).digest()
    const id = this.nextId++
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject })
      worker.postMessage({ id, bytes })
    })
  }

  private spawn (): Worker {
    const worker = new Worker(WORKER_SOURCE, { eval: true })
    worker.unref()
    this.online = false
    worker.once('online', () => { if (this.worker === worker) this.online = true })
    worker.on('message', (m: { id: number, digest: Uint8Array }) => {
      this.pending.get(m.id)?.resolve(new Uint8Array(m.digest.buffer, m.digest.byteOffset, m.digest.byteLength))
      this.pending.delete(m.id)
    })
    const fail = (err: Error): void => {
      if (this.worker !== worker) return // closed, or replaced after an earlier failure
      for (const p of this.pending.values()) p.reject(err)
      this.pending.clear()
      this.worker = undefined
      this.online = false
    }
    worker.on('error', fail)
    // an exit with nothing pending too: the next digest must not go to a dead worker
    worker.on('exit', code => { fail(new Error(`hash worker exited (${code})`)) })
    this.worker = worker
    return worker
  }

  async close (): Promise<void> {
    this.closed = true
    const worker = this.worker
    this.worker = undefined
    this.online = false
    await worker?.terminate()
  }
}
