/**
 * Garbage collection and verification of the content store: mark and sweep
 * over what the holdings reach, and a re-hash of every block and kept leaf.
 * Both run under the store's lock (GC exclusively: no write of an import or
 * a download interleaves with a sweep; the "in flight" sets keep what
 * those have written before their holding is recorded).
 */
import type { Logger } from '@libp2p/interface'
import { CID } from 'multiformats/cid'
import { BlockMismatchError, cidKey, RAW_CODE } from '../content/cid.ts'
import { walkDag } from '../content/dag-reader.ts'
import type { RwLock } from '../utils/rw-lock.ts'
import type { FsBlockstore } from './blockstore.ts'
import type { FileLeaves } from './file-leaves.ts'
import { holdsWholeDag, type Holdings } from './holdings.ts'
import type { NeedsRepair } from './needs-repair.ts'

export interface GcResult {
  blocks: number
  bytes: number
  /** Held DAGs that could not be walked whole (a node missing or corrupt): nothing was swept, they need repair. */
  incomplete?: string[]
}

export interface VerifyResult {
  checked: number
  bytes: number
  /** CIDs of blocks whose bytes do not match. */
  bad: string[]
  /** True when the bad blocks were removed. */
  removed: boolean
  /** With `repair`: held DAGs now missing blocks, recorded as needing repair (a fetch of each brings them back). */
  needsRepair?: string[]
}

export interface StoreSweeperComponents {
  blockstore: Pick<FsBlockstore, 'list' | 'get' | 'delete'>
  fileLeaves: Pick<FileLeaves, 'roots' | 'drop' | 'all' | 'holds' | 'forgetLeaf'>
  holdings: Pick<Holdings, 'all'>
  needsRepair: Pick<NeedsRepair, 'add' | 'remove'>
  lock: RwLock
  log: Logger
  /** Blocks an import or a download has written or counted on, not yet held: never swept. */
  isInFlight: (key: string) => boolean
  /** Whether each block is here (in the blockstore or a kept file). */
  hasBlocks: (cids: CID[]) => Promise<boolean[]>
}

export class StoreSweeper {
  private readonly components: StoreSweeperComponents

  constructor (components: StoreSweeperComponents) {
    this.components = components
  }

  /**
   * Mark and sweep: marks every block a holding reaches (a whole DAG for
   * shared/fetched, the block alone for a replica) and deletes the rest.
   * A held DAG whose nodes cannot all be read (missing or corrupt) stops
   * the sweep: what lies under such a node is unknown, and would be lost.
   * It is recorded as needing repair, and reported.
   */
  async gc (): Promise<GcResult> {
    return this.components.lock.exclusive(async () => {
      const marked = new Set<string>()
      const incomplete: string[] = []
      for (const holding of await this.components.holdings.all()) {
        const root = CID.parse(holding.cid)
        if (!holdsWholeDag(holding.reason) || root.code === RAW_CODE) {
          marked.add(cidKey(root))
          continue
        }
        if (!await this.mark(root, marked)) incomplete.push(holding.cid)
      }
      if (incomplete.length > 0) {
        for (const root of incomplete) await this.components.needsRepair.add(root, 'a DAG node is missing or corrupt')
        this.components.log.error('gc swept nothing: %d held DAG(s) cannot be walked whole and need repair (fetch them again): %s', incomplete.length, incomplete.join(', '))
        return { blocks: 0, bytes: 0, incomplete }
      }
      let blocks = 0
      let bytes = 0
      for await (const block of this.components.blockstore.list()) {
        const key = cidKey(block.cid)
        if (marked.has(key) || this.components.isInFlight(key)) continue
        bytes += await this.components.blockstore.delete(block.cid)
        blocks++
      }
      if (blocks > 0) this.components.log('gc removed %d blocks, %d bytes', blocks, bytes)
      // leaves kept in fetched files: forgotten with their holding (the files stay)
      const heldDags = new Set((await this.components.holdings.all()).filter(h => holdsWholeDag(h.reason)).map(h => h.cid))
      for (const root of this.components.fileLeaves.roots()) {
        if (!heldDags.has(root) && !this.components.isInFlight(root)) await this.components.fileLeaves.drop(root)
      }
      return { blocks, bytes }
    })
  }

  /**
   * Marks every block of a DAG (dag-pb nodes read and verified: a rotten
   * node would name the wrong children). False when a node is missing or
   * corrupt: what was marked is kept, the rest of the DAG is unknown.
   */
  async mark (root: CID, marked: Set<string>): Promise<boolean> {
    try {
      for await (const cid of walkDag(root, async c => this.components.blockstore.get(c))) marked.add(cidKey(cid))
      return true
    } catch (err) {
      this.components.log('DAG %s is incomplete or corrupt: %s', root, (err as Error).message)
      return false
    }
  }

  /** Re-hashes every block; with `repair`, removes those that do not match. */
  async verify (options: { repair?: boolean, signal?: AbortSignal } = {}): Promise<VerifyResult> {
    const run = async (): Promise<VerifyResult> => {
      const bad: string[] = []
      let checked = 0
      let bytes = 0
      for await (const block of this.components.blockstore.list()) {
        options.signal?.throwIfAborted()
        checked++
        bytes += block.size
        try {
          await this.components.blockstore.get(block.cid)
        } catch (err) {
          if (!(err instanceof BlockMismatchError)) throw err
          bad.push(cidKey(block.cid))
          if (options.repair === true) await this.components.blockstore.delete(block.cid)
        }
      }
      // leaves kept in fetched files: the file may have changed since
      for (const leaf of this.components.fileLeaves.all()) {
        options.signal?.throwIfAborted()
        checked++
        bytes += leaf.size
        if (await this.components.fileLeaves.holds(leaf)) continue
        bad.push(leaf.cid)
        if (options.repair === true) await this.components.fileLeaves.forgetLeaf(leaf, 'verify found the file no longer holds it')
      }
      if (options.repair !== true) return { checked, bytes, bad, removed: false }
      // what was removed may belong to held DAGs: those are recorded as
      // needing repair (a fetch brings the blocks back), and GC sweeps
      // nothing under them meanwhile
      const needsRepair = await this.findIncomplete(options.signal)
      return { checked, bytes, bad, removed: bad.length > 0, needsRepair }
    }
    return options.repair === true ? this.components.lock.exclusive(run) : this.components.lock.shared(run)
  }

  /**
   * Held DAGs missing a block here (a node or a leaf): recorded as needing
   * repair, and returned; those found whole lose their record.
   */
  private async findIncomplete (signal?: AbortSignal): Promise<string[]> {
    const incomplete: string[] = []
    for (const holding of await this.components.holdings.all()) {
      signal?.throwIfAborted()
      if (!holdsWholeDag(holding.reason)) continue
      const root = CID.parse(holding.cid)
      const cids: CID[] = []
      const walked = await (async () => {
        try {
          for await (const cid of walkDag(root, async c => this.components.blockstore.get(c), { signal })) cids.push(cid)
          return true
        } catch {
          return false
        }
      })()
      const whole = walked && (await this.components.hasBlocks(cids)).every(Boolean)
      if (whole) {
        await this.components.needsRepair.remove(root)
      } else {
        incomplete.push(holding.cid)
        await this.components.needsRepair.add(root, 'blocks of it were corrupt and removed')
      }
    }
    return incomplete
  }
}
