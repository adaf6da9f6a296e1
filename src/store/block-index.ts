/**
 * Which held DAGs contain a block, kept in the datastore so a remote `has`
 * (placement and repair asking whether this peer holds a block) is one
 * lookup, not a walk of every held DAG:
 *  - /shoal/block-dags/<block>/<root>: the block is in the DAG under root;
 *  - /shoal/dag-blocks/<root>/<block>: the same, by root, to remove a DAG;
 *  - /shoal/dag-indexed/<root>: written after a DAG's entries, last.
 * When the store opens, a held DAG whose marker is missing (a crash
 * between its holding and its entries, or a repo from before the index)
 * is indexed again from its blocks, and a marker left for a DAG no longer
 * held (a crash while it was removed) has its entries removed.
 */
import { Key, type Datastore } from 'interface-datastore'
import type { CID } from 'multiformats/cid'
import { cidKey } from '../content/cid.ts'

const BY_BLOCK = '/shoal/block-dags'
const BY_ROOT = '/shoal/dag-blocks'
const INDEXED = '/shoal/dag-indexed'
const EMPTY = new Uint8Array(0)
/** Entries written per datastore batch. */
const BATCH_ENTRIES = 1024

export class BlockIndex {
  private readonly datastore: Datastore

  constructor (datastore: Datastore) {
    this.datastore = datastore
  }

  /** Records every block of the DAG under `root` (the root itself included). */
  async addDag (root: CID | string, blocks: Iterable<CID | string>): Promise<void> {
    const rootKey = keyOf(root)
    let batch = this.datastore.batch()
    let entries = 0
    for (const block of blocks) {
      const blockKey = keyOf(block)
      batch.put(new Key(`${BY_BLOCK}/${blockKey}/${rootKey}`), EMPTY)
      batch.put(new Key(`${BY_ROOT}/${rootKey}/${blockKey}`), EMPTY)
      if (++entries % BATCH_ENTRIES === 0) {
        await batch.commit()
        batch = this.datastore.batch()
      }
    }
    batch.put(new Key(`${INDEXED}/${rootKey}`), EMPTY)
    await batch.commit()
  }

  /** Forgets the DAG under `root`. */
  async removeDag (root: CID | string): Promise<void> {
    const rootKey = keyOf(root)
    const blocks: string[] = []
    for await (const key of this.datastore.queryKeys({ prefix: `${BY_ROOT}/${rootKey}/` })) blocks.push(key.baseNamespace())
    let batch = this.datastore.batch()
    let entries = 0
    for (const blockKey of blocks) {
      batch.delete(new Key(`${BY_BLOCK}/${blockKey}/${rootKey}`))
      batch.delete(new Key(`${BY_ROOT}/${rootKey}/${blockKey}`))
      if (++entries % BATCH_ENTRIES === 0) {
        await batch.commit()
        batch = this.datastore.batch()
      }
    }
    // the marker last: a crash midway leaves it, and the store, finding
    // the DAG no longer held when it opens, removes the rest
    batch.delete(new Key(`${INDEXED}/${rootKey}`))
    await batch.commit()
  }

  /** True when the DAG under `root` has all its entries. */
  /**
   * Brings the index in line with the held DAGs when the store opens: a
   * held DAG not indexed (a crash after its holding, a repo from before the
   * index) is indexed from `walk` (its every block, or undefined when it
   * cannot be walked whole: then it stays unindexed); a DAG indexed and no
   * longer held (a crash while it was removed) is removed from the index.
   */
  async reconcile (heldRoots: Iterable<string>, walk: (root: string) => Promise<Iterable<string> | undefined>): Promise<void> {
    const held = new Set<string>()
    for (const root of heldRoots) {
      if (held.has(root)) continue
      held.add(root)
      if (await this.isIndexed(root)) continue
      const blocks = await walk(root)
      if (blocks != null) await this.addDag(root, blocks)
    }
    for (const root of await this.roots()) {
      if (!held.has(root)) await this.removeDag(root)
    }
  }

  async isIndexed (root: CID | string): Promise<boolean> {
    return this.datastore.has(new Key(`${INDEXED}/${keyOf(root)}`))
  }

  /** True when some indexed DAG contains `block`. */
  async inSomeDag (block: CID | string): Promise<boolean> {
    for await (const _ of this.datastore.queryKeys({ prefix: `${BY_BLOCK}/${keyOf(block)}/`, limit: 1 })) return true
    return false
  }

  /** Roots with entries or a marker (to find DAGs no longer held). */
  async roots (): Promise<Set<string>> {
    const out = new Set<string>()
    for await (const key of this.datastore.queryKeys({ prefix: `${INDEXED}/` })) out.add(key.baseNamespace())
    return out
  }
}

function keyOf (cid: CID | string): string {
  return typeof cid === 'string' ? cid : cidKey(cid)
}
