/**
 * The peer's local content: the blockstore, the holdings that say why each
 * DAG or block is kept, import (share), export (read), removal, garbage
 * collection and verification.
 *
 * GC must not sweep blocks an import or a download has written or counted
 * on before its holding is recorded: those are kept in "in flight" sets
 * that GC skips, and writers of blocks take a shared lock (per batch or
 * block, not for a whole import) while GC and repair's drops take it
 * exclusively, so a GC runs between two batches of a long import.
 */
import type { ComponentLogger, Logger } from '@libp2p/interface'
import type { Datastore } from 'interface-datastore'
import { CID } from 'multiformats/cid'
import { cidKey } from '../content/cid.ts'
import { fileSize, readFile, walkDag, type BlockGetter } from '../content/dag-reader.ts'
import { HashWorker } from '../content/hash-worker.ts'
import { DEFAULT_REPLICAS } from '../constants.ts'
import { ShoalError } from '../errors.ts'
import { RwLock } from '../utils/rw-lock.ts'
import type { BlockstoreUsage, FsBlockstore } from './blockstore.ts'
import { ContentNotFoundError } from './errors.ts'
import { ReplicaPuts, type ReplicaPut } from './replica-puts.ts'
import { Holdings, holdsWholeDag, type Holding } from './holdings.ts'
import { FetchSession } from './fetch-session.ts'
import { FileLeaves, type KeptFile } from './file-leaves.ts'
import { InFlight } from './in-flight.ts'
import { NeedsRepair, type RepairNeed } from './needs-repair.ts'
import { BlockIndex } from './block-index.ts'
import { REPLICA_AUTO_SHARE, replicasGone, resolveQuota } from './quota.ts'
import { VerifiedBlocks } from './verified-blocks.ts'
import { StoreSweeper, type GcResult, type VerifyResult } from './store-sweeper.ts'
import { shareFile, shareStream, type ShareImportComponents, type ShareOptions, type ShareResult } from './share-import.ts'

export type { GcResult, VerifyResult } from './store-sweeper.ts'
export type { ShareOptions, ShareResult } from './share-import.ts'

export interface ContentStoreComponents {
  /** Holdings and the records of leaves kept in fetched files. */
  datastore: Datastore
  /** The block files (its `sync` is config storage.sync); opened and closed with the store. */
  blockstore: FsBlockstore
  logger: ComponentLogger
  /** Re-hashes blocks read from the blockstore off the main thread (default: the store's own worker). */
  hasher?: Pick<HashWorker, 'digest'>
}

export interface ContentStoreInit {
  /** config storage.quota, what the user's own shares and fetches may take: "auto" (default: half of the disk), bytes, or a size string. */
  quota?: 'auto' | number | string
  /**
   * What replicas kept for others may take, apart from `quota`, so a flood
   * of them never makes the user's own share or fetch fail: "auto"
   * (default: a quarter of the disk, i.e. of stored + free bytes when the
   * store opens), bytes, or a size string.
   */
  replicaQuota?: 'auto' | number | string
  /** config replicas: a replica held here is kept for at least this many copies (default DEFAULT_REPLICAS). */
  replicas?: number
  /** A GC runs this often while the store is open (default GC_INTERVAL_MS; 0: never on its own). */
  gcIntervalMs?: number
}

/** How often the store sweeps what nothing holds on its own (orphans of crashes and failed writes). */
export const GC_INTERVAL_MS = 60 * 60 * 1000

export interface BlockPlaces {
  /** A block file in the blockstore. */
  blockstore: boolean
  /** Fetched files that keep it (raw leaves only). */
  files: Array<{ path: string, offset: number }>
}

export interface RemoveResult {
  cid: string
  removed: Holding[]
  freed: GcResult
}

export class ContentStore {
  private readonly blockstore: FsBlockstore
  /** Leaves of fetched files kept inside those files (file-leaves.ts). */
  private readonly fileLeaves: FileLeaves
  private readonly holdings: Holdings
  private readonly quota: NonNullable<ContentStoreInit['quota']>
  private readonly replicaQuota: NonNullable<ContentStoreInit['replicaQuota']>
  /** Replica puts: their batches, and the bytes being written counted against the replica quota. */
  private readonly replicaPuts: ReplicaPuts
  private readonly replicas: number
  private readonly log: Logger
  private readonly lock = new RwLock()
  private readonly closing = new AbortController()
  /** Blocks of downloads and imports in progress, which GC must not sweep. */
  private readonly inFlight = new InFlight()
  private readonly hasher: Pick<HashWorker, 'digest'>
  /** The hash worker this store started itself (closed with it). */
  private readonly ownHasher?: HashWorker
  /** Held DAGs found incomplete, until a fetch repairs them. */
  private readonly needsRepair: NeedsRepair
  /** Which held DAGs contain each block (for `holdsBlocks`). */
  private readonly blockIndex: BlockIndex
  private readonly gcIntervalMs: number
  private gcTimer?: ReturnType<typeof setInterval>
  private readonly sweeper: StoreSweeper
  /** Reads and presence checks that re-hash what they read. */
  private readonly verified: VerifiedBlocks

  constructor (components: ContentStoreComponents, init: ContentStoreInit = {}) {
    this.log = components.logger.forComponent('shoal:store')
    this.blockstore = components.blockstore
    this.holdings = new Holdings(components.datastore)
    this.fileLeaves = new FileLeaves(components.datastore, this.log)
    this.needsRepair = new NeedsRepair(components.datastore)
    this.blockIndex = new BlockIndex(components.datastore)
    this.gcIntervalMs = init.gcIntervalMs ?? GC_INTERVAL_MS
    this.quota = init.quota ?? 'auto'
    this.replicaQuota = init.replicaQuota ?? 'auto'
    this.replicas = init.replicas ?? DEFAULT_REPLICAS
    if (components.hasher == null) this.ownHasher = new HashWorker()
    this.hasher = components.hasher ?? this.ownHasher!
    this.verified = new VerifiedBlocks({ blockstore: this.blockstore, fileLeaves: this.fileLeaves, holdings: this.holdings, hasher: this.hasher, log: this.log })
    this.replicaPuts = new ReplicaPuts({ blockstore: this.blockstore, holdings: this.holdings, hasher: this.hasher, replicas: this.replicas, dropIfUnwanted: async cid => this.dropIfUnwanted(cid) })
    this.sweeper = new StoreSweeper({
      blockstore: this.blockstore,
      fileLeaves: this.fileLeaves,
      holdings: this.holdings,
      needsRepair: this.needsRepair,
      lock: this.lock,
      log: this.log,
      isInFlight: key => this.isInFlight(key),
      hasBlocks: async cids => this.hasBlocks(cids)
    })
  }

  async open (): Promise<void> {
    await this.blockstore.open()
    await this.fileLeaves.open()
    this.blockstore.quotaBytes = await resolveQuota(this.quota, this.blockstore.dir, this.blockstore.usage().bytes)
    this.blockstore.replicaQuotaBytes = await resolveQuota(this.replicaQuota, this.blockstore.dir, this.blockstore.usage().bytes, REPLICA_AUTO_SHARE)
    let replicaBytes = 0
    for (const h of await this.holdings.all()) if (h.reason === 'replica') replicaBytes += h.size
    this.blockstore.replicaBytes = replicaBytes
    // a held DAG found incomplete is left unindexed: its blocks answer "not held", and repair may bring copies
    const wholeDags = (await this.holdings.all()).filter(h => holdsWholeDag(h.reason)).map(h => h.cid)
    await this.blockIndex.reconcile(wholeDags, async root => {
      const marked = new Set<string>()
      return await this.sweeper.mark(CID.parse(root), marked) ? marked : undefined
    })
    const usage = this.blockstore.usage()
    this.log('blockstore: %d blocks, %d bytes, quota %d', usage.blocks, usage.bytes, usage.quotaBytes)
    if (this.gcIntervalMs > 0 && this.gcTimer == null) {
      // orphans (a crash mid-import, a failed write) are swept without anyone asking
      this.gcTimer = setInterval(() => {
        if (this.closing.signal.aborted) return
        this.gc().catch(err => { this.log.error('periodic gc - %e', err) })
      }, this.gcIntervalMs)
      this.gcTimer.unref()
    }
  }

  /** Aborts imports in progress and waits for every store operation to end. */
  async close (): Promise<void> {
    this.closing.abort(new ShoalError('the daemon is shutting down'))
    clearInterval(this.gcTimer)
    this.gcTimer = undefined
    await this.lock.exclusive(async () => {})
    await this.blockstore.close()
    await this.ownHasher?.close()
  }

  usage (): BlockstoreUsage {
    return this.blockstore.usage()
  }

  /** A verified block from the local store. */
  readonly getBlock: BlockGetter = async (cid) => this.readBlock(cid)

  /**
   * A verified block, from the blockstore or, for a leaf kept in a fetched
   * file, from that file. Every block read is re-hashed (blockstore blocks
   * on the hash worker): no byte leaves this store unverified, whoever asks
   * (serving, placement, an output). A blockstore block that no longer
   * matches is removed (`evictCorrupt`), so a good copy can take its
   * place, and the read fails with BlockMismatchError. `options.verify` is
   * accepted and ignored: there is no unverified read.
   */
  async readBlock (cid: CID, options: { verify?: boolean } = {}): Promise<Uint8Array> {
    void options
    return this.verified.read(cid)
  }

  /** Removes a blockstore block found corrupt, and its replica holding (verified-blocks.ts). */
  async evictCorrupt (cid: CID): Promise<void> {
    await this.verified.evictCorrupt(cid)
  }

  /** Size of a block held here (in the blockstore or a fetched file), or undefined. */
  async blockSize (cid: CID): Promise<number | undefined> {
    return await this.blockstore.sizeOf(cid) ?? this.fileLeaves.locate(cid)?.size
  }

  /**
   * Where a block is kept here: in the blockstore, and in which fetched
   * files at which offsets (a leaf may be in both, or in several files).
   * Files are not re-read: what the records say.
   */
  async locate (cid: CID): Promise<BlockPlaces> {
    return { blockstore: await this.blockstore.has(cid), files: this.fileLeaves.placesOf(cid) }
  }

  /** The fetched files keeping leaves of `root` (a fetch's `.part` file, then its target). */
  keptFiles (root: CID): KeptFile[] {
    return this.fileLeaves.filesOf(root)
  }

  /** Imports a file the daemon can read, and records it as shared (share-import.ts). */
  async shareFile (filePath: string, options: ShareOptions = {}): Promise<ShareResult> {
    return shareFile(this.importComponents, filePath, options)
  }

  /** Imports bytes streamed to the daemon (e.g. an HTTP request body), and records them as shared. */
  async shareStream (source: AsyncIterable<Uint8Array>, options: ShareOptions = {}): Promise<ShareResult> {
    return shareStream(this.importComponents, source, options)
  }

  private get importComponents (): ShareImportComponents {
    return {
      blockstore: this.blockstore,
      holdings: this.holdings,
      blockIndex: this.blockIndex,
      lock: this.lock,
      inFlight: this.inFlight,
      closing: this.closing.signal,
      log: this.log,
      gc: async () => this.gc()
    }
  }

  /**
   * A download in progress: its blocks are stored as they arrive (each
   * verified) and GC leaves them alone until the session ends; `commit`
   * records the DAG as fetched once its blocks are durable.
   */
  openFetch (): FetchSession {
    return new FetchSession({
      blockstore: this.blockstore,
      fileLeaves: this.fileLeaves,
      holdings: this.holdings,
      needsRepair: this.needsRepair,
      blockIndex: this.blockIndex,
      lock: this.lock,
      inFlight: this.inFlight,
      closing: this.closing.signal
    })
  }

  /**
   * Keeps several blocks for others at once (replica-puts.ts): each
   * verified and written off this thread, then one folder sync for all,
   * then their replica holdings in one batch. Resolves, per block, true
   * (stored), false (already here) or the error that refused it
   * (BlockMismatchError: the bytes are not the CID's).
   *
   * The k a replica is kept for is never lowered on anyone's word: a put
   * may raise it, never below what was recorded nor this peer's own
   * `replicas` (else one peer re-putting a block with k = 1 would make its
   * every holder drop it on the next repair), and never past a cap
   * (replica-k.ts).
   */
  async storeReplicas (blocks: ReplicaPut[]): Promise<Array<boolean | Error>> {
    return this.lock.shared(async () => {
      this.closing.signal.throwIfAborted()
      return this.replicaPuts.store(blocks)
    })
  }

  /** Deletes a block this store just wrote whose holding failed, unless a holding, a fetch or an import wants it. */
  private async dropIfUnwanted (cid: CID): Promise<void> {
    try {
      if (this.isInFlight(cidKey(cid)) || (await this.holdings.of(cid)).length > 0 || await this.isReachable(cid)) return
      await this.blockstore.delete(cid)
    } catch (err) {
      this.log.error('could not remove %s after its holding failed (the next gc will) - %e', cidKey(cid), err)
    }
  }

  /** Stops holding a block as a replica; the block goes if nothing else holds it. */
  async dropReplica (cid: CID): Promise<void> {
    const key = cidKey(cid)
    const removed = await this.holdings.remove(cid, ['replica'])
    if (removed.length === 0) return
    replicasGone(this.blockstore, removed)
    const stillWanted = async (): Promise<boolean> => (await this.holdings.of(cid)).length > 0 || this.isInFlight(key)
    if (await stillWanted()) return
    // decided again under the exclusive lock, like gc: a store or a fetch may
    // have come to want the block meanwhile
    await this.lock.exclusive(async () => {
      if (await stillWanted()) return
      if (!(await this.isReachable(cid))) await this.blockstore.delete(cid)
    })
  }

  private isInFlight (key: string): boolean {
    return this.inFlight.has(key)
  }

  /**
   * True when some holding still reaches the block (a DAG that contains
   * it), or might: a held DAG that cannot be walked whole may hold it.
   */
  private async isReachable (cid: CID): Promise<boolean> {
    const key = cidKey(cid)
    for (const holding of await this.holdings.all()) {
      if (holding.cid === key) return true
      if (!holdsWholeDag(holding.reason)) continue
      const marked = new Set<string>()
      if (!await this.sweeper.mark(CID.parse(holding.cid), marked)) return true
      if (marked.has(key)) return true
    }
    return false
  }

  /**
   * True when the block is here. A leaf kept in a fetched file counts from
   * the records alone and a block file from its name, unless `recheck`:
   * then each is read and re-hashed (the user may have changed or deleted
   * the file, a disk may have flipped a bit), as a fetch does before it
   * trusts them; a corrupt block file is removed.
   */
  async hasBlock (cid: CID, options: { recheck?: boolean } = {}): Promise<boolean> {
    return (await this.hasBlocks([cid], options))[0]
  }

  /** `hasBlock` for a list of blocks (verified-blocks.ts), `onRecheck` called after each block rechecked. */
  async hasBlocks (cids: CID[], options: { recheck?: boolean, onRecheck?: () => void } = {}): Promise<boolean[]> {
    return this.verified.has(cids, options)
  }

  /**
   * For each block: true when it is here and something holds it (a replica
   * holding, or a shared or fetched DAG that contains it: one lookup in the
   * block index, not a walk). A block left for GC does not count, so repair
   * never relies on a copy about to go. Only blockstore blocks count: a
   * leaf kept in a fetched file is the user's to delete, so placement and
   * repair do not count it as a copy (they may give this peer a replica of
   * its own).
   */
  async holdsBlocks (cids: CID[]): Promise<boolean[]> {
    const here = await this.blockstore.hasMany(cids)
    const out: boolean[] = []
    for (let i = 0; i < cids.length; i++) {
      out.push(here[i] && ((await this.holdings.of(cids[i])).length > 0 || await this.blockIndex.inSomeDag(cids[i])))
    }
    return out
  }

  /** Every CID of a DAG held here, parents first. */
  async dagCids (root: CID, signal?: AbortSignal): Promise<CID[]> {
    await this.requireRoot(root)
    const out: CID[] = []
    for await (const cid of walkDag(root, this.getBlock, { signal })) out.push(cid)
    return out
  }

  /** Holdings, optionally only those of one CID. */
  async list (cid?: CID): Promise<Holding[]> {
    return cid == null ? this.holdings.all() : this.holdings.of(cid)
  }

  /** Fails with ContentNotFoundError unless the root block is here. */
  async requireRoot (cid: CID): Promise<void> {
    if (!(await this.hasBlock(cid))) {
      throw new ContentNotFoundError(`${cidKey(cid)} is not held by this peer`)
    }
  }

  /** The file's size, from its root block. */
  async size (cid: CID, signal?: AbortSignal): Promise<number> {
    await this.requireRoot(cid)
    return fileSize(cid, this.getBlock, { signal })
  }

  /** The file's bytes (or a range), every block verified as it is read. */
  read (cid: CID, options: { offset?: number, length?: number, signal?: AbortSignal } = {}): AsyncGenerator<Uint8Array> {
    return readFile(cid, this.getBlock, options)
  }

  /** Stops holding a CID for every reason and frees what nothing else holds. */
  async remove (cid: CID): Promise<RemoveResult> {
    const removed = await this.holdings.remove(cid)
    if (removed.length === 0) throw new ContentNotFoundError(`${cidKey(cid)} is not held by this peer`)
    replicasGone(this.blockstore, removed)
    if (removed.some(h => holdsWholeDag(h.reason))) await this.blockIndex.removeDag(cid)
    const freed = await this.gc()
    return { cid: cidKey(cid), removed, freed }
  }

  /**
   * Mark and sweep: deletes blocks no holding reaches (store-sweeper.ts).
   * A held DAG whose nodes cannot all be read stops the sweep and is
   * recorded as needing repair.
   */
  async gc (): Promise<GcResult> {
    return this.sweeper.gc()
  }

  /** Held DAGs recorded as incomplete here, until a fetch (or a verify) finds them whole. */
  async needingRepair (): Promise<RepairNeed[]> {
    return this.needsRepair.all()
  }

  /** Re-hashes every block; with `repair`, removes those that do not match (store-sweeper.ts). */
  async verify (options: { repair?: boolean, signal?: AbortSignal } = {}): Promise<VerifyResult> {
    return this.sweeper.verify(options)
  }
}
