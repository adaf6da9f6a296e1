/**
 * The blockstore: one file per block under `<repo>/blocks`, sharded into
 * folders by the next-to-last two characters of the CID's base32 form (as
 * IPFS's flatfs does, so a folder holds ~1/1024 of the blocks).
 *
 * Writes are atomic: temp file, fsync, then a hard link to the block's name
 * and the temp name removed (rename where a filesystem has no hard links).
 * A crash (even SIGKILL or power loss) leaves either the whole verified
 * block or no block; temp files left behind are swept on open. The link
 * fails when the block is already there, so concurrent writers of one block
 * count it once. The fsync is what bounds import speed on a slow disk (see
 * docs/benchmarks.md), so it can be turned off (`sync`). Shard folders
 * touched by writes are fsynced by `sync()`, which callers run before
 * recording that they hold the blocks.
 *
 * Imports store their raw leaves through `putLeaves`: hashed and written on
 * worker threads (leaf-workers.ts), in this same layout and accounting.
 * Fetches store theirs through `stage`, which returns as soon as the bytes
 * are written, so the fsync runs while the network brings the next blocks;
 * the block gets its name only after its fsync, as with `put`.
 *
 * Why not blockstore-fs: we need the quota checked before any byte is
 * written, the store's size without scanning on every put, temp files from a
 * crash swept, and verification on read — it offers none of these.
 */
import { randomBytes } from 'node:crypto'
import { existsSync } from 'node:fs'
import fs, { type FileHandle } from 'node:fs/promises'
import path from 'node:path'
import { setImmediate as nextTurn } from 'node:timers/promises'
import { CID } from 'multiformats/cid'
import { cidKey, matchesCid, rawCid, BlockMismatchError } from '../content/cid.ts'
import { isCode, syncFolder } from '../utils/fs.ts'
import { formatBytes } from '../utils/bytes.ts'
import { BlockNotFoundError, DiskFullError, LeafWorkerError, QuotaExceededError, StoreClosedError } from './errors.ts'
import { LeafStatus, LeafWorkers, type LeafJob, type LeafJobResult, type LeafSource } from './leaf-workers.ts'
import { Budget } from '../utils/budget.ts'
import { commitTemp, ShardFolders, shardOf } from './shard-folders.ts'

const TEMP_SUFFIX = '.tmp'
/** Blocks `hasMany` looks up before it lets the event loop turn. */
const HAS_SLICE = 128
/**
 * Block fsyncs in flight at once: each holds a libuv thread for the whole
 * disk write, and a few at once reach the disk's speed (docs/benchmarks.md);
 * more would leave no thread for the reads and writes queued behind them.
 */
const FSYNCS_AT_ONCE = 6
/** Bytes of staged blocks written and not yet fsynced, at most; `stage` waits beyond. */
const STAGED_MAX_BYTES = 32 * 1024 * 1024

/**
 * The fsyncs a blockstore makes on this thread: a block file once written,
 * and the folders its names went into. Tests slow them down or hold them.
 */
export interface BlockstoreSync {
  /** fsyncs a block file just written (its handle is still open). */
  file: (handle: FileHandle) => Promise<void>
  /** fsyncs a folder, so the names in it are durable. */
  folder: (dir: string) => Promise<void>
}

export interface BlockstoreComponents {
  /** Default: the file's and the folder's own fsync. */
  fsync?: BlockstoreSync
}

export interface BlockstoreInit {
  /** The folder of block files. */
  dir: string
  /** Bytes the store may hold (default: no limit; the content store sets it once open). */
  quotaBytes?: number
  /**
   * fsync each block before it is renamed into place (default true). Off,
   * a killed process still never leaves a bad block (the kernel keeps the
   * written pages), but a power loss may; the same trade-off as the "sync"
   * option of IPFS's flatfs.
   */
  sync?: boolean
  /** Threads that hash and write imported leaves (default: one per core, up to 4). */
  leafWorkers?: number
}

/** A batch of an import's chunks for `putLeaves`. */
export interface LeafBatch {
  source: LeafSource
  /** Bytes in the batch: chunks of `chunkSize`, the last one possibly shorter. */
  length: number
  chunkSize: number
}

/** A raw leaf in the store, and whether this put wrote it. */
export interface StoredLeaf {
  cid: CID
  size: number
  written: boolean
}

export interface StoredBlock {
  cid: CID
  size: number
}

export interface BlockstoreUsage {
  blocks: number
  bytes: number
  quotaBytes: number
  /** Of `bytes`, those kept for others (replicas): outside `quotaBytes`, under `replicaQuotaBytes`. */
  replicaBytes: number
  replicaQuotaBytes: number
}

export class FsBlockstore {
  readonly dir: string
  /** What the user's own writes (shares, fetches) may take, replicas not counted. */
  quotaBytes: number
  /**
   * Bytes of blocks kept for others, counted by the content store (it
   * knows which blocks are replicas): the user's quota leaves them out, and
   * their own quota is the content store's to check.
   */
  replicaBytes = 0
  replicaQuotaBytes = Infinity
  readonly syncWrites: boolean
  private blocks = 0
  private bytes = 0
  /** Bytes of writes in progress, counted against the quota already. */
  private reserved = 0
  private readonly writing = new Map<string, Promise<boolean>>()
  private readonly shards: ShardFolders
  private readonly leafWorkerCount?: number
  private workers?: LeafWorkers
  private closed = false
  private readonly fsyncs = new Budget(FSYNCS_AT_ONCE)
  private readonly staging = new Budget(STAGED_MAX_BYTES)
  private readonly fsync: BlockstoreSync

  constructor (components: BlockstoreComponents, init: BlockstoreInit) {
    this.fsync = components.fsync ?? { file: async handle => { await handle.sync() }, folder: syncFolder }
    this.dir = init.dir
    this.shards = new ShardFolders(this.dir, this.fsync.folder)
    this.quotaBytes = init.quotaBytes ?? Infinity
    this.syncWrites = init.sync ?? true
    this.leafWorkerCount = init.leafWorkers
  }

  /** Creates the folder, sweeps temp files a crash left, counts the blocks. */
  async open (): Promise<void> {
    await fs.mkdir(this.dir, { recursive: true })
    this.blocks = 0
    this.bytes = 0
    for (const shard of await fs.readdir(this.dir)) {
      const shardDir = path.join(this.dir, shard)
      const names = await fs.readdir(shardDir).catch(() => [])
      this.shards.exists(shard)
      for (const name of names) {
        const file = path.join(shardDir, name)
        if (name.endsWith(TEMP_SUFFIX)) {
          await fs.rm(file, { force: true })
          continue
        }
        const stat = await fs.stat(file).catch(() => undefined)
        if (stat?.isFile() !== true) continue
        this.blocks++
        this.bytes += stat.size
      }
    }
  }

  usage (): BlockstoreUsage {
    return { blocks: this.blocks, bytes: this.bytes, quotaBytes: this.quotaBytes, replicaBytes: this.replicaBytes, replicaQuotaBytes: this.replicaQuotaBytes }
  }

  pathOf (cid: CID): string {
    const key = cidKey(cid)
    return path.join(this.dir, shardOf(key), key)
  }

  async has (cid: CID): Promise<boolean> {
    return fs.access(this.pathOf(cid)).then(() => true, () => false)
  }

  /**
   * `has` for a list of blocks (a have list, a fetch's start), looked up
   * with synchronous calls on this thread, HAS_SLICE at a time: as `has`
   * each lookup costs a thread-pool round trip and a promise, several times
   * an `existsSync` (docs/benchmarks.md); at the start of a fetch every
   * connected peer answers a have list at once, and on a loopback swarm
   * they all share the same cores.
   */
  async hasMany (cids: CID[]): Promise<boolean[]> {
    const found = new Array<boolean>(cids.length)
    for (let at = 0; at < cids.length; at += HAS_SLICE) {
      if (at > 0) await nextTurn()
      const end = Math.min(cids.length, at + HAS_SLICE)
      for (let i = at; i < end; i++) found[i] = existsSync(this.pathOf(cids[i]))
    }
    return found
  }

  /** The block's bytes, re-hashed against its CID unless `verify` is false. */
  async get (cid: CID, options: { verify?: boolean } = {}): Promise<Uint8Array> {
    let bytes: Uint8Array
    try {
      bytes = await fs.readFile(this.pathOf(cid))
    } catch (err) {
      if (isCode(err, 'ENOENT')) throw new BlockNotFoundError(`block ${cid} is not in the store`)
      throw err
    }
    if (options.verify !== false && !matchesCid(cid, bytes)) {
      throw new BlockMismatchError(`block ${cid} in the store is corrupt (its bytes do not match the CID); run "shoal verify --repair"`)
    }
    return bytes
  }

  /** Size of a stored block, or undefined. */
  async sizeOf (cid: CID): Promise<number | undefined> {
    const stat = await fs.stat(this.pathOf(cid)).catch(() => undefined)
    return stat?.size
  }

  /**
   * Stores a block whose bytes the caller has checked against the CID.
   * Resolves true when the block is new, false when it was already there.
   * `forOthers`: a replica, outside the user's quota (the caller checks
   * the replica quota).
   */
  async put (cid: CID, bytes: Uint8Array, options: { forOthers?: boolean } = {}): Promise<boolean> {
    const key = cidKey(cid)
    const pending = this.writing.get(key)
    if (pending != null) {
      await pending
      return false
    }
    const write = this.write(key, bytes, undefined, options.forOthers === true).finally(() => { this.writing.delete(key) })
    this.writing.set(key, write)
    return write
  }

  /**
   * Stores a block whose bytes the caller has checked against the CID, in
   * two steps: resolves once the bytes are written (the caller may reuse
   * them), with `stored`, which resolves as `put` does once the block is
   * fsynced and has its name. Blocks written and not yet fsynced are
   * bounded (STAGED_MAX_BYTES): past that, this waits for room.
   */
  async stage (cid: CID, bytes: Uint8Array): Promise<{ stored: Promise<boolean> }> {
    const key = cidKey(cid)
    await this.staging.acquire(bytes.length)
    const pending = this.writing.get(key)
    if (pending != null) {
      this.staging.release(bytes.length)
      return { stored: pending.then(() => false) }
    }
    const written = Promise.withResolvers<void>()
    const stored = this.write(key, bytes, written.resolve).finally(() => {
      this.writing.delete(key)
      this.staging.release(bytes.length)
    })
    this.writing.set(key, stored)
    // a failure before the bytes were written reaches the caller here
    stored.catch(() => {})
    await Promise.race([written.promise, stored])
    return { stored }
  }

  /** Writes a block; `onWritten` is called once its bytes are in the temp file (before the fsync). */
  private async write (key: string, bytes: Uint8Array, onWritten?: () => void, forOthers = false): Promise<boolean> {
    const shard = shardOf(key)
    const file = path.join(this.dir, shard, key)
    if (await fs.access(file).then(() => true, () => false)) return false
    if (!forOthers && this.userBytes() + this.reserved + bytes.length > this.quotaBytes) {
      throw new QuotaExceededError(`storage quota exceeded: ${formatBytes(this.userBytes())} stored, quota ${formatBytes(this.quotaBytes)}; a block of ${formatBytes(bytes.length)} does not fit (raise "storage.quota" in config.json or remove content with "shoal rm")`)
    }
    if (!forOthers) this.reserved += bytes.length
    const tmp = `${file}.${randomBytes(6).toString('hex')}${TEMP_SUFFIX}`
    try {
      await this.shards.ensure(shard)
      const handle = await fs.open(tmp, 'wx', 0o644)
      try {
        // write(), not writeFile(): writeFile cuts a block into 512 KiB calls
        let done = 0
        while (done < bytes.length) done += (await handle.write(bytes, done, bytes.length - done, done)).bytesWritten
        onWritten?.()
        if (this.syncWrites) await this.fsyncs.run(1, async () => { await this.fsync.file(handle) })
      } finally {
        await handle.close()
      }
      if (!(await commitTemp(tmp, file))) return false
    } catch (err) {
      if (isCode(err, 'ENOSPC')) throw new DiskFullError(`disk full while writing to ${this.dir}`)
      throw err
    } finally {
      // unlink, not rm: rm looks the path up first and walks it as a tree
      await fs.unlink(tmp).catch(() => {})
      if (!forOthers) this.reserved -= bytes.length
    }
    this.shards.wrote(shard)
    this.blocks++
    this.bytes += bytes.length
    return true
  }

  /**
   * Hashes a batch of an import's chunks into raw leaves and stores them, on
   * the leaf workers. The quota is checked before anything is written: a
   * batch that does not fit is only hashed, and fails with
   * QuotaExceededError unless all its blocks are already here. A file source
   * must stay open until this resolves.
   */
  async putLeaves (batch: LeafBatch): Promise<StoredLeaf[]> {
    const write = this.userBytes() + this.reserved + batch.length <= this.quotaBytes
    if (write) this.reserved += batch.length
    let result
    try {
      result = await this.onWorkers({ ...batch, write })
    } finally {
      if (write) this.reserved -= batch.length
    }
    this.shards.made(result.newShards)
    const leaves: StoredLeaf[] = []
    let refused = 0
    for (let i = 0; i < result.statuses.length; i++) {
      const cid = rawCid(result.digests.subarray(i * 32, i * 32 + 32))
      const size = Math.max(0, Math.min(batch.chunkSize, batch.length - i * batch.chunkSize))
      const status = result.statuses[i]
      if (status === LeafStatus.WRITTEN) {
        this.shards.wrote(shardOf(cidKey(cid)))
        this.blocks++
        this.bytes += size
      } else if (status === LeafStatus.REFUSED) {
        refused += size
      }
      leaves.push({ cid, size, written: status === LeafStatus.WRITTEN })
    }
    if (refused > 0) {
      throw new QuotaExceededError(`storage quota exceeded: ${formatBytes(this.userBytes())} stored, quota ${formatBytes(this.quotaBytes)}; ${formatBytes(refused)} more do not fit (raise "storage.quota" in config.json or remove content with "shoal rm")`)
    }
    return leaves
  }

  /**
   * Stores a raw leaf received from another peer, outside the user's quota
   * (the caller checks the replica quota): hashed, checked against its CID
   * and written on a leaf worker, so this thread neither hashes nor waits
   * on the file's calls. `transfer`: the bytes' buffer goes to the worker
   * (the caller no longer uses them). Resolves 'written' when the block is
   * new, 'present' when it was already here, 'mismatch' when the bytes are
   * not the CID's (nothing written).
   */
  async putReceivedLeaf (cid: CID, bytes: Uint8Array, options: { transfer?: boolean } = {}): Promise<'written' | 'present' | 'mismatch'> {
    const size = bytes.length
    const result = await this.onWorkers({ source: { bytes }, length: size, chunkSize: Math.max(1, size), write: true, expect: cid.multihash.digest, transfer: options.transfer })
    this.shards.made(result.newShards)
    const status = result.statuses[0]
    if (status === LeafStatus.MISMATCH) return 'mismatch'
    if (status !== LeafStatus.WRITTEN) return 'present'
    this.shards.wrote(shardOf(cidKey(cid)))
    this.blocks++
    this.bytes += size
    return 'written'
  }

  /** One job on the leaf workers (started on first use), a full disk as DiskFullError. */
  private async onWorkers (job: LeafJob): Promise<LeafJobResult> {
    // a block arriving while the peer stops would start workers nobody stops
    if (this.closed) throw new StoreClosedError(`the block store in ${this.dir} is closed`)
    this.workers ??= new LeafWorkers({ dir: this.dir, sync: this.syncWrites, tempSuffix: TEMP_SUFFIX, workers: this.leafWorkerCount })
    try {
      return await this.workers.run(job)
    } catch (err) {
      if (err instanceof LeafWorkerError && err.code === 'ENOSPC') throw new DiskFullError(`disk full while writing to ${this.dir}`)
      throw err
    }
  }

  /** Bytes counted against the user's quota: all but the replicas'. */
  private userBytes (): number {
    return Math.max(0, this.bytes - this.replicaBytes)
  }

  /** Stops the leaf workers; later leaf writes fail with StoreClosedError. */
  async close (): Promise<void> {
    this.closed = true
    const workers = this.workers
    this.workers = undefined
    await workers?.close()
  }

  /**
   * Makes the names of every write finished before this call durable
   * (shard-folders.ts); nothing to do when writes are not synced.
   */
  async sync (): Promise<void> {
    if (!this.syncWrites) {
      this.shards.forget()
      return
    }
    await this.shards.sync()
  }

  /** Removes a block; resolves the bytes freed (0 when it was not there). */
  async delete (cid: CID): Promise<number> {
    const file = this.pathOf(cid)
    const stat = await fs.stat(file).catch(() => undefined)
    if (stat == null) return 0
    try {
      await fs.unlink(file)
    } catch (err) {
      if (isCode(err, 'ENOENT')) return 0
      throw err
    }
    this.blocks--
    this.bytes -= stat.size
    return stat.size
  }

  /** Every stored block (CID and size), shard by shard. */
  async * list (): AsyncGenerator<StoredBlock> {
    const shards = await fs.readdir(this.dir).catch(() => [])
    for (const shard of shards.sort()) {
      const names = await fs.readdir(path.join(this.dir, shard)).catch(() => [])
      for (const name of names.sort()) {
        if (name.endsWith(TEMP_SUFFIX)) continue
        let cid: CID
        try {
          cid = CID.parse(name)
        } catch {
          continue
        }
        const stat = await fs.stat(path.join(this.dir, shard, name)).catch(() => undefined)
        if (stat?.isFile() === true) yield { cid, size: stat.size }
      }
    }
  }
}
