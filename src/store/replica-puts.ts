/**
 * Blocks other peers place here (the store protocol's puts), stored a batch
 * at a time with as little work on the main thread as the fetch's:
 *
 *  - a raw leaf (nearly every block) is hashed, checked against its CID and
 *    written on the blockstore's leaf workers (the import's pool): its
 *    bytes go to the worker without a copy, and are never hashed here;
 *  - a UnixFS node is hashed on the store's hash worker, then written;
 *  - the batch's folders are made durable once, then its holdings are
 *    written (one read and one write each, no query) with one log sync
 *    for the lot, before any block is reported stored.
 *
 * A block whose bytes are not its CID's is reported as BlockMismatchError
 * and nothing of it is written. Replicas have their own quota, checked
 * (and room reserved) before anything is written.
 */
import type { CID } from 'multiformats/cid'
import { BlockMismatchError, cidKey, RAW_CODE, SHA256_CODE } from '../content/cid.ts'
import type { HashWorker } from '../content/hash-worker.ts'
import { formatBytes } from '../utils/bytes.ts'
import type { FsBlockstore } from './blockstore.ts'
import { QuotaExceededError } from './errors.ts'
import type { Holdings } from './holdings.ts'
import { acceptedReplicaK } from './replica-k.ts'

export interface ReplicaPut {
  cid: CID
  bytes: Uint8Array
  /** The k the block is placed for (the caller caps it). */
  replicas: number
  /** Hand the bytes' buffer over to a worker (the caller no longer uses them). */
  transfer?: boolean
}

export interface ReplicaPutsComponents {
  blockstore: Pick<FsBlockstore, 'has' | 'put' | 'putReceivedLeaf' | 'sync' | 'replicaBytes' | 'replicaQuotaBytes'>
  holdings: Pick<Holdings, 'get' | 'add' | 'sync'>
  hasher: Pick<HashWorker, 'digest'>
  /** This peer's k: a replica held here is kept for at least this many copies. */
  replicas: number
  /** A block this batch wrote whose holding failed: removed unless something else wants it. */
  dropIfUnwanted: (cid: CID) => Promise<void>
}

export class ReplicaPuts {
  private readonly components: ReplicaPutsComponents
  /** Replica bytes being written and not yet counted in the blockstore's replicaBytes. */
  private reserved = 0

  constructor (components: ReplicaPutsComponents) {
    this.components = components
  }

  /** Per block: true when stored anew, false when it was already here, or the error. */
  async store (blocks: ReplicaPut[]): Promise<Array<boolean | Error>> {
    const { blockstore, holdings } = this.components
    // sizes first: a transferred buffer is empty here once it went to a worker
    const sizes = blocks.map(b => b.bytes.byteLength)
    const results = await Promise.all(blocks.map(async (block, i) => this.write(block, sizes[i])))
    await blockstore.sync()
    const added: number[] = []
    await Promise.all(blocks.map(async ({ cid, replicas }, i) => {
      if (results[i] instanceof Error) return
      try {
        // one read of this block's replica holding (not a query of all its holdings)
        const held = await holdings.get(cid, 'replica')
        const k = acceptedReplicaK(this.components.replicas, replicas, held?.replicas)
        await holdings.add({ cid, reason: 'replica', size: sizes[i], blocks: 1, replicas: k }, { sync: false })
        if (held == null) added.push(i)
      } catch (err) {
        results[i] = err as Error
      }
    }))
    try {
      // one durable write for the whole batch of holdings, before any is reported stored
      if (added.length > 0 || results.some(r => !(r instanceof Error))) await holdings.sync()
      for (const i of added) blockstore.replicaBytes += sizes[i]
    } catch (err) {
      for (let i = 0; i < blocks.length; i++) if (!(results[i] instanceof Error)) results[i] = err as Error
    }
    // no holding (a datastore error): a block this batch wrote would be an orphan
    for (let i = 0; i < blocks.length; i++) {
      if (results[i] instanceof Error && this.wrote.has(blocks[i])) await this.components.dropIfUnwanted(blocks[i].cid)
      this.wrote.delete(blocks[i])
    }
    return results
  }

  /** Blocks of the running batches that their write stored anew. */
  private readonly wrote = new WeakSet<ReplicaPut>()

  private async write (block: ReplicaPut, size: number): Promise<boolean | Error> {
    const { blockstore } = this.components
    const { cid, bytes } = block
    let reserved = 0
    try {
      if (cid.multihash.code !== SHA256_CODE) throw new BlockMismatchError(`block ${cid} is not sha2-256`)
      if (!(await blockstore.has(cid))) {
        if (blockstore.replicaBytes + this.reserved + size > blockstore.replicaQuotaBytes) {
          throw new QuotaExceededError(`replica quota exceeded: ${formatBytes(blockstore.replicaBytes)} kept for others, quota ${formatBytes(blockstore.replicaQuotaBytes)}; a block of ${formatBytes(size)} does not fit`)
        }
        reserved = size
        this.reserved += reserved
      }
      let stored: boolean
      if (cid.code === RAW_CODE) {
        const status = await blockstore.putReceivedLeaf(cid, bytes, { transfer: block.transfer })
        if (status === 'mismatch') throw new BlockMismatchError(`block ${cidKey(cid)} does not match its bytes`)
        stored = status === 'written'
      } else {
        const digest = await this.components.hasher.digest(bytes)
        if (!Buffer.from(digest).equals(cid.multihash.digest)) throw new BlockMismatchError(`block ${cidKey(cid)} does not match its bytes`)
        stored = await blockstore.put(cid, bytes, { forOthers: true })
      }
      if (stored) this.wrote.add(block)
      return stored
    } catch (err) {
      return err as Error
    } finally {
      this.reserved -= reserved
    }
  }
}
