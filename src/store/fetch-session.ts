/**
 * A download as the content store sees it (ContentStore.openFetch): the
 * blocks it counts on are kept from GC until it ends, the blocks it
 * receives are stored (each already verified by the fetcher), raw leaves
 * may stay in the file the fetch writes instead (file-leaves.ts), and
 * `commit` records the DAG as fetched once its blocks are durable.
 *
 * Every write takes the store's lock shared, per block or per batch, so a
 * GC (which takes it exclusively) never sweeps a block between its write
 * and its counting, and never waits for a whole download.
 */
import type { CID } from 'multiformats/cid'
import { cidKey, verifyBlock } from '../content/cid.ts'
import type { RwLock } from '../utils/rw-lock.ts'
import type { FsBlockstore } from './blockstore.ts'
import { BlockNotFoundError } from './errors.ts'
import type { FileLeaf, FileLeaves } from './file-leaves.ts'
import type { Holdings } from './holdings.ts'
import type { InFlight } from './in-flight.ts'
import type { NeedsRepair } from './needs-repair.ts'
import type { BlockIndex } from './block-index.ts'

export interface FetchSessionComponents {
  blockstore: Pick<FsBlockstore, 'stage' | 'put' | 'sync'>
  fileLeaves: Pick<FileLeaves, 'add' | 'renamed' | 'filesAt' | 'leavesIn' | 'read' | 'isKeptAt'>
  holdings: Pick<Holdings, 'add'>
  /** The DAG, once committed, no longer needs repair. */
  needsRepair: Pick<NeedsRepair, 'remove'>
  /** Where the committed DAG's blocks are indexed (ContentStore.holdsBlocks). */
  blockIndex: Pick<BlockIndex, 'addDag'>
  /** The store's lock: shared while writing; GC holds it exclusively. */
  lock: RwLock
  inFlight: InFlight
  /** Aborted when the store closes: no write starts after. */
  closing: AbortSignal
}

export class FetchSession {
  private readonly components: FetchSessionComponents
  /** Blocks this download wrote or counts on. */
  private readonly keys: Set<string>

  constructor (components: FetchSessionComponents) {
    this.components = components
    this.keys = components.inFlight.open()
  }

  /** Protects a block already here from GC for the rest of the download (once `kept()` resolves). */
  keep (cid: CID): void {
    this.keys.add(cidKey(cid))
  }

  /**
   * Resolves once no GC that began before the last `keep` is still
   * sweeping: only then may a block found here be counted on.
   */
  async kept (): Promise<void> {
    // GC sweeps under the exclusive lock, so taking the shared one waits it out
    await this.components.lock.shared(async () => {})
  }

  /**
   * Stores a block; `verified` says the caller already hashed it against the
   * CID. Resolves once the bytes are written (the caller may reuse them),
   * with `stored`, which resolves when the block is durable and in the store.
   */
  async storeBlock (cid: CID, bytes: Uint8Array, options: { verified?: boolean } = {}): Promise<{ stored: Promise<void> }> {
    if (options.verified !== true) verifyBlock(cid, bytes)
    this.keys.add(cidKey(cid))
    const { lock, blockstore, closing } = this.components
    // the shared lock is held until the block is in place (GC and
    // dropReplica wait), but the caller goes on once the bytes are written
    const written = Promise.withResolvers<void>()
    const stored = lock.shared(async () => {
      closing.throwIfAborted()
      const staged = await blockstore.stage(cid, bytes)
      written.resolve()
      await staged.stored
    })
    stored.catch(() => {}) // reaches the caller through `stored`
    await Promise.race([written.promise, stored])
    return { stored }
  }

  /** True when the leaf is recorded as kept in `path` at `offset` (a resumed fetch's own file). */
  isKeptIn (cid: CID, path: string, offset: number): boolean {
    return this.components.fileLeaves.isKeptAt(cid, path, offset)
  }

  /**
   * Keeps raw leaves where they already are, in the file this download
   * writes (`path`, renamed to `final` when complete), instead of a copy in
   * the blockstore. The caller has made those bytes durable first.
   */
  async keepInFile (root: CID, path: string, final: string, leaves: FileLeaf[]): Promise<void> {
    await this.underLock(async () => { await this.components.fileLeaves.add(root, path, final, leaves) })
  }

  /** That file was renamed (to its final name). */
  async fileRenamed (root: CID, from: string, to: string): Promise<void> {
    await this.underLock(async () => { await this.components.fileLeaves.renamed(root, from, to) })
  }

  /**
   * Copies the leaves kept in `path` (a fetch's output given up while the
   * download goes on for others) into the blockstore, so what is held does
   * not depend on a file left behind. The file's records stay, as a second
   * place (a resume into it finds them; reads re-hash and fall back).
   */
  async moveToStore (root: CID, path: string): Promise<void> {
    const { fileLeaves, blockstore, lock } = this.components
    const leaves = fileLeaves.filesAt(root, path).flatMap(file => fileLeaves.leavesIn(file))
    // the lock per block, not for the whole copy: a GC or drop asked for
    // meanwhile must not stall every store behind it (the keys protect the
    // blocks copied so far)
    for (const leaf of leaves) {
      this.keys.add(cidKey(leaf.cid))
      await this.underLock(async () => {
        const bytes = await fileLeaves.read(leaf.cid)
        if (bytes == null) throw new BlockNotFoundError(`block ${leaf.cid} of ${cidKey(root)} is no longer in ${path}`)
        await blockstore.put(leaf.cid, bytes)
      })
    }
    await lock.shared(async () => { await blockstore.sync() })
  }

  /** Records the DAG as fetched, once every block written so far is durable. */
  async commit (root: CID, info: { size: number, blocks: number }): Promise<void> {
    await this.underLock(async () => {
      await this.components.blockstore.sync()
      await this.components.holdings.add({ cid: root, reason: 'fetched', size: info.size, blocks: info.blocks })
      await this.components.blockIndex.addDag(root, this.keys)
      // every block is here again: a DAG found incomplete is whole
      await this.components.needsRepair.remove(root)
    })
  }

  /** The download ended: its blocks are GC's to judge again (the holding, if committed, keeps them). */
  close (): void {
    this.components.inFlight.close(this.keys)
  }

  private async underLock (fn: () => Promise<void>): Promise<void> {
    await this.components.lock.shared(async () => {
      this.components.closing.throwIfAborted()
      await fn()
    })
  }
}
