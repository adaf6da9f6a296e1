/**
 * Raw leaves hashed and stored on worker threads, for imports.
 *
 * A job is a batch of chunks: a range of the file being imported (the
 * worker reads it itself, positionally, into a buffer it reuses) or bytes
 * in shared memory (an HTTP body re-cut by the main thread). For each chunk
 * the worker computes sha2-256 and the raw-leaf CID, and writes the block
 * file in the blockstore's layout, atomically: a temp file, fsync when
 * `sync` is on, then a hard link to its final name and the temp name
 * removed. The link fails with EEXIST when the block is already there, so
 * two writers of the same block (a file with repeated chunks, an import
 * racing a replica push) never both count it as new. A block file already
 * there counts only once compared with the chunk's bytes: a rotten one is
 * replaced by them (renamed over). The main thread only
 * dispatches jobs, keeps the accounting and builds the DAG.
 *
 * Why (docs/benchmarks.md): writing a block from the main thread costs six
 * thread-pool round trips (access, open, write, fsync, close, rename) plus
 * a read, each a futex wake and a promise; here each block costs its
 * syscalls alone on a worker, and every core hashes. fsync is the one call left asynchronous (on libuv's pool),
 * so a worker hashes its next chunk while the disk flushes the last.
 *
 * The worker is inline source (a function serialized with toString), so
 * it runs the same from the TypeScript sources and from the bundled daemon.
 * It must stay self-contained: no imports, nothing from module scope.
 * test/integration/store-import.spec.ts checks that its files land where
 * FsBlockstore looks for them.
 */
import os from 'node:os'
import { Worker } from 'node:worker_threads'
import { LeafWorkerError } from './errors.ts'

/** Per chunk: what the worker did with it. */
export const LeafStatus = {
  /** The block was already in the store. */
  PRESENT: 0,
  /** The worker wrote it. */
  WRITTEN: 1,
  /** Not in the store and the job was not allowed to write (quota). */
  REFUSED: 2,
  /** Its digest is not the one the job expected: nothing written. */
  MISMATCH: 3
} as const
export type LeafStatus = typeof LeafStatus[keyof typeof LeafStatus]

/** Where a job's bytes are: `length` bytes of an open file, or in memory. */
export type LeafSource = { fd: number, position: number } | { bytes: Uint8Array }

export interface LeafJob {
  source: LeafSource
  /** Bytes in the batch; every chunk is `chunkSize` but the last. 0: one empty chunk. */
  length: number
  chunkSize: number
  /** False: only hash and look; report REFUSED for blocks not yet stored. */
  write: boolean
  /**
   * The sha2-256 digests the chunks must have, 32 bytes per chunk (a block
   * received from another peer, checked against its CID): a chunk whose
   * digest differs is reported MISMATCH and not written.
   */
  expect?: Uint8Array
  /**
   * Memory source only: hand the bytes' buffer over to the worker instead
   * of copying it (the caller no longer uses them). Shared memory is never
   * copied either way.
   */
  transfer?: boolean
}

export interface LeafJobResult {
  /** sha2-256 digests, 32 bytes per chunk, in order. */
  digests: Uint8Array
  statuses: LeafStatus[]
  /** Shard folders this job created. */
  newShards: string[]
}

export interface LeafWorkersInit {
  /** The blockstore folder. */
  dir: string
  /** fsync each block before it gets its name. */
  sync: boolean
  tempSuffix: string
  /** Worker threads (default: one per core, at most MAX_LEAF_WORKERS). */
  workers?: number
}

/** More than this many hashing threads has not been measured. */
export const MAX_LEAF_WORKERS = 4
/** Jobs every running worker has waiting before another worker is started. */
const SPAWN_AT_QUEUED = 2

export function defaultLeafWorkers (): number {
  return Math.max(1, Math.min(MAX_LEAF_WORKERS, os.availableParallelism()))
}

interface Pending {
  resolve: (r: LeafJobResult) => void
  reject: (e: Error) => void
}

interface Slot {
  worker: Worker
  jobs: Map<number, Pending>
}

export class LeafWorkers {
  private readonly init: LeafWorkersInit
  private readonly slots: Array<Slot | undefined>
  private nextId = 0

  constructor (init: LeafWorkersInit) {
    this.init = init
    this.slots = new Array(init.workers ?? defaultLeafWorkers()).fill(undefined)
  }

  /** Hashes and stores one batch on the least busy worker. */
  async run (job: LeafJob): Promise<LeafJobResult> {
    const slot = this.leastBusy()
    const id = this.nextId++
    return new Promise((resolve, reject) => {
      if (slot.jobs.size === 0) slot.worker.ref()
      slot.jobs.set(id, { resolve, reject })
      const { source, length, chunkSize, write, expect } = job
      // only a buffer the bytes fill alone is handed over: detaching one that
      // other views share would break their owners
      const owned = 'bytes' in source && source.bytes.buffer instanceof ArrayBuffer &&
        source.bytes.byteOffset === 0 && source.bytes.byteLength === source.bytes.buffer.byteLength
      const transfer = job.transfer === true && owned ? [source.bytes.buffer as ArrayBuffer] : []
      slot.worker.postMessage({ id, length, chunkSize, write, expect, ...('fd' in source ? { fd: source.fd, position: source.position } : { bytes: source.bytes }) }, transfer)
    })
  }

  async close (): Promise<void> {
    const workers = this.slots.filter(s => s != null).map(s => s.worker)
    this.slots.fill(undefined)
    await Promise.all(workers.map(async w => w.terminate()))
  }

  /**
   * An idle worker if there is one; else a new one once every running
   * worker has SPAWN_AT_QUEUED jobs waiting (a trickle of small jobs, such
   * as replicas received one block at a time, keeps to one thread instead
   * of paying for another's start); else the least busy.
   */
  private leastBusy (): Slot {
    let best: Slot | undefined
    let free = -1
    for (let i = 0; i < this.slots.length; i++) {
      const slot = this.slots[i]
      if (slot == null) {
        if (free < 0) free = i
        continue
      }
      if (slot.jobs.size === 0) return slot
      if (best == null || slot.jobs.size < best.jobs.size) best = slot
    }
    if (free >= 0 && (best == null || best.jobs.size >= SPAWN_AT_QUEUED)) return this.spawn(free)
    return best!
  }

  private spawn (index: number): Slot {
    const worker = new Worker(`(${leafWorkerMain.toString()})(require)`, {
      eval: true,
      workerData: { dir: this.init.dir, sync: this.init.sync, tempSuffix: this.init.tempSuffix }
    })
    const slot: Slot = { worker, jobs: new Map() }
    worker.unref()
    worker.on('message', (m: { id: number, digests?: Uint8Array, statuses?: LeafStatus[], newShards?: string[], error?: { message: string, code?: string } }) => {
      const pending = slot.jobs.get(m.id)
      slot.jobs.delete(m.id)
      if (slot.jobs.size === 0) worker.unref()
      if (m.error != null) pending?.reject(new LeafWorkerError(m.error.message, m.error.code))
      else pending?.resolve({ digests: m.digests!, statuses: m.statuses!, newShards: m.newShards! })
    })
    const fail = (err: Error): void => {
      if (this.slots[index] === slot) this.slots[index] = undefined
      for (const p of slot.jobs.values()) p.reject(err)
      slot.jobs.clear()
    }
    worker.on('error', fail)
    worker.on('exit', code => { fail(new LeafWorkerError(`leaf worker exited (${code})`)) })
    this.slots[index] = slot
    return slot
  }
}

/**
 * The worker's code. Runs in the worker thread from its source text, so it
 * uses nothing outside its own body; `require` is the worker's.
 *
 * A chunk is hashed and written with blocking calls on this thread (the
 * write is a copy into the page cache: CPU, no waiting). With sync, the
 * fsync is the one call issued asynchronously (libuv's thread pool), so this
 * thread hashes the next chunks while the disk flushes; the block gets its
 * name once its fsync is done.
 */
function leafWorkerMain (require: NodeJS.Require): void {
  const { parentPort, workerData } = require('node:worker_threads') as typeof import('node:worker_threads')
  const fs = require('node:fs') as typeof import('node:fs')
  const { createHash, randomBytes } = require('node:crypto') as typeof import('node:crypto')
  const { dir, sync, tempSuffix } = workerData as { dir: string, sync: boolean, tempSuffix: string }
  const PRESENT = 0
  const WRITTEN = 1
  const REFUSED = 2
  const MISMATCH = 3
  // CIDv1, codec raw (0x55), multihash sha2-256 (0x12) of 32 bytes
  const CID_PREFIX = [0x01, 0x55, 0x12, 0x20]
  const BASE32 = 'abcdefghijklmnopqrstuvwxyz234567'
  // filesystems without hard links (FAT): fall back to rename
  const NO_LINKS = new Set(['EPERM', 'ENOTSUP', 'EOPNOTSUPP', 'ENOSYS'])
  const knownShards = new Set<string>()
  /** Where file jobs are read to; reused (fresh pages would cost a fault each). */
  let readBuffer = new Uint8Array(0)

  /** The CID's text form: multibase 'b' + RFC 4648 base32, lower case, unpadded. */
  function keyOf (digest: Uint8Array): string {
    let out = 'b'
    let value = 0
    let bits = 0
    const push = (byte: number): void => {
      value = ((value << 8) | byte) & 0xffff
      bits += 8
      while (bits >= 5) {
        out += BASE32[(value >>> (bits - 5)) & 31]
        bits -= 5
      }
    }
    for (const b of CID_PREFIX) push(b)
    for (const b of digest) push(b)
    if (bits > 0) out += BASE32[(value << (5 - bits)) & 31]
    return out
  }

  const codeOf = (err: unknown): string => (err as { code?: string } | null)?.code ?? ''
  const unlinkQuietly = (file: string): void => { try { fs.unlinkSync(file) } catch {} }

  /** Gives `tmp` the name `file`; false when `file` already existed. */
  function commit (tmp: string, file: string): boolean {
    try {
      fs.linkSync(tmp, file)
      return true
    } catch (err) {
      if (codeOf(err) === 'EEXIST') return false
      if (!NO_LINKS.has(codeOf(err))) throw err
      if (fs.existsSync(file)) return false
      fs.renameSync(tmp, file)
      return true
    } finally {
      unlinkQuietly(tmp)
    }
  }

  /**
   * Hashes one chunk and stores it. Everything but the fsync runs before the
   * first await, so the caller may reuse `bytes` as soon as this returns its
   * promise.
   */
  async function storeLeaf (bytes: Uint8Array, write: boolean, digests: Uint8Array, index: number, newShards: string[], expect?: Uint8Array): Promise<number> {
    const digest = createHash('sha256').update(bytes).digest()
    digests.set(digest, index * 32)
    if (expect != null && !digest.equals(expect.subarray(index * 32, index * 32 + 32))) return MISMATCH
    const key = keyOf(digest)
    const shard = key.slice(-3, -1)
    const folder = `${dir}/${shard}`
    const file = `${folder}/${key}`
    // a leaf already here counts only if its file still holds these bytes:
    // a rotten one is replaced (renamed over) by the good bytes in hand
    let replace = false
    if (fs.existsSync(file)) {
      if (holds(file, bytes)) return PRESENT
      replace = true
    }
    if (!write && !replace) return REFUSED
    if (!knownShards.has(shard)) {
      if (fs.mkdirSync(folder, { recursive: true }) != null) newShards.push(shard)
      knownShards.add(shard)
    }
    const tmp = `${file}.${randomBytes(6).toString('hex')}${tempSuffix}`
    const fd = fs.openSync(tmp, 'wx', 0o644)
    try {
      let written = 0
      while (written < bytes.length) written += fs.writeSync(fd, bytes, written, bytes.length - written)
      if (sync) await new Promise<void>((resolve, reject) => { fs.fsync(fd, err => { if (err != null) reject(err); else resolve() }) })
    } catch (err) {
      fs.closeSync(fd)
      unlinkQuietly(tmp)
      throw err
    }
    fs.closeSync(fd)
    if (replace) {
      fs.renameSync(tmp, file)
      return PRESENT
    }
    return commit(tmp, file) ? WRITTEN : PRESENT
  }

  /** True when `file` holds exactly `bytes`. */
  function holds (file: string, bytes: Uint8Array): boolean {
    try {
      const held = fs.readFileSync(file)
      return held.length === bytes.length && held.equals(bytes)
    } catch {
      return false
    }
  }

  async function runJob (job: { length: number, chunkSize: number, write: boolean, fd?: number, position?: number, bytes?: Uint8Array, expect?: Uint8Array }): Promise<{ digests: Uint8Array, statuses: number[], newShards: string[] }> {
    let bytes: Uint8Array
    if (job.fd != null) {
      if (readBuffer.length < job.length) readBuffer = new Uint8Array(job.length)
      let filled = 0
      while (filled < job.length) {
        const n = fs.readSync(job.fd, readBuffer, filled, job.length - filled, job.position! + filled)
        if (n === 0) throw new Error(`file shrank while being read (at byte ${job.position! + filled})`)
        filled += n
      }
      bytes = readBuffer.subarray(0, job.length)
    } else {
      bytes = job.bytes!
    }
    const count = Math.max(1, Math.ceil(job.length / job.chunkSize))
    const digests = new Uint8Array(count * 32)
    const newShards: string[] = []
    const leaves: Array<Promise<number>> = []
    for (let i = 0; i < count; i++) {
      const leaf = storeLeaf(bytes.subarray(i * job.chunkSize, Math.min(job.length, (i + 1) * job.chunkSize)), job.write, digests, i, newShards, job.expect)
      leaf.catch(() => {}) // awaited together below
      leaves.push(leaf)
    }
    // Every chunk is hashed and written by now: the read buffer is free for
    // the next job. Reply once every fsync is done, failed or not.
    const settled = await Promise.allSettled(leaves)
    const failed = settled.find(s => s.status === 'rejected')
    if (failed != null) throw failed.reason
    return { digests, statuses: settled.map(s => (s as PromiseFulfilledResult<number>).value), newShards }
  }

  parentPort!.on('message', (job: { id: number, length: number, chunkSize: number, write: boolean }) => {
    runJob(job).then(
      result => { parentPort!.postMessage({ id: job.id, ...result }) },
      (err: Error & { code?: string }) => { parentPort!.postMessage({ id: job.id, error: { message: err.message, code: err.code } }) }
    )
  })
}
