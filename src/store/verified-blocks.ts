/**
 * Reads and presence checks that trust no byte on disk: every block read
 * is re-hashed (blockstore blocks on the hash worker), a blockstore block
 * that no longer matches its CID is removed so a good copy can take its
 * place, and a leaf kept in a fetched file (the user's file, which they
 * may have changed) is confirmed by reading it.
 */
import type { Logger } from '@libp2p/interface'
import type { CID } from 'multiformats/cid'
import { BlockMismatchError, cidKey, matchesCid, SHA256_CODE } from '../content/cid.ts'
import type { HashWorker } from '../content/hash-worker.ts'
import { mapConcurrent } from '../utils/wait.ts'
import type { FsBlockstore } from './blockstore.ts'
import type { FileLeaves } from './file-leaves.ts'
import type { Holdings } from './holdings.ts'
import { replicasGone } from './quota.ts'

/** Blocks re-hashed at once by `hasBlocks` with `recheck` (each is read whole into memory). */
const RECHECKS_AT_ONCE = 16

export interface VerifiedBlocksComponents {
  blockstore: FsBlockstore
  fileLeaves: FileLeaves
  holdings: Holdings
  hasher: Pick<HashWorker, 'digest'>
  log: Logger
}

export class VerifiedBlocks {
  private readonly c: VerifiedBlocksComponents

  constructor (components: VerifiedBlocksComponents) {
    this.c = components
  }

  /**
   * A verified block, from the blockstore or, for a leaf kept in a fetched
   * file, from that file. A blockstore block that no longer matches is
   * removed (`evictCorrupt`) and the read fails with BlockMismatchError.
   */
  async read (cid: CID): Promise<Uint8Array> {
    const { fileLeaves, blockstore } = this.c
    if (fileLeaves.has(cid)) {
      const bytes = await fileLeaves.read(cid)
      if (bytes != null) return bytes
    }
    const bytes = await blockstore.get(cid, { verify: false })
    if (!(await this.matches(cid, bytes))) {
      await this.evictCorrupt(cid)
      throw new BlockMismatchError(`block ${cid} in the store is corrupt (its bytes do not match the CID); it was removed, to be fetched again`)
    }
    return bytes
  }

  private async matches (cid: CID, bytes: Uint8Array): Promise<boolean> {
    if (cid.multihash.code !== SHA256_CODE) return false
    return Buffer.from(await this.c.hasher.digest(bytes)).equals(cid.multihash.digest)
  }

  /**
   * Removes a blockstore block found corrupt (checked again first: a good
   * copy may have replaced it meanwhile). A replica holding of it goes too:
   * this peer no longer has it, so repair by the other holders puts a good
   * copy back here or elsewhere. A DAG holding stays; the next fetch of it
   * fetches the block again.
   */
  async evictCorrupt (cid: CID): Promise<void> {
    const { blockstore, holdings, log } = this.c
    const bytes = await blockstore.get(cid, { verify: false }).catch(() => undefined)
    if (bytes == null || matchesCid(cid, bytes)) return
    await blockstore.delete(cid)
    const dropped = await holdings.remove(cid, ['replica'])
    replicasGone(blockstore, dropped)
    log.error('block %s was corrupt: removed%s', cidKey(cid), dropped.length > 0 ? ', with its replica holding' : '')
  }

  /**
   * For each block, true when it is here: the blockstore looked up in one
   * pass (FsBlockstore.hasMany); a leaf kept in a fetched file counts from
   * the records alone, unless `recheck`: then the blocks found and the
   * leaves kept in files are read and re-hashed RECHECKS_AT_ONCE at a time
   * (the user may have changed or deleted the file, a disk may have
   * flipped a bit), as a fetch does before it trusts them, `onRecheck`
   * called after each; a corrupt block file is removed and counts as missing.
   */
  async has (cids: CID[], options: { recheck?: boolean, onRecheck?: () => void } = {}): Promise<boolean[]> {
    const { blockstore, fileLeaves } = this.c
    const found = await blockstore.hasMany(cids)
    if (options.recheck !== true) {
      for (let i = 0; i < cids.length; i++) if (!found[i] && fileLeaves.has(cids[i])) found[i] = true
      return found
    }
    await mapConcurrent(cids.map((_, i) => i), RECHECKS_AT_ONCE, async i => {
      if (found[i]) {
        const bytes = await blockstore.get(cids[i], { verify: false }).catch(() => undefined)
        found[i] = bytes != null && await this.matches(cids[i], bytes)
        if (bytes != null && !found[i]) await this.evictCorrupt(cids[i])
      }
      if (!found[i] && fileLeaves.has(cids[i])) found[i] = await fileLeaves.confirm(cids[i])
      options.onRecheck?.()
    })
    return found
  }
}
