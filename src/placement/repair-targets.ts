/**
 * What repair looks after, from the holdings of this peer:
 *  - a replica: its block, for the k it was placed with; the copy here may
 *    be dropped once this peer is no longer among the k responsible;
 *  - a shared DAG: every block, for the k it was shared with (recorded in
 *    the holding; config `replicas` for a holding without one, none for
 *    k = 0): copies the sharer failed to place (a target down, a partition)
 *    are placed by a later pass; never dropped here;
 *  - a fetched DAG: the blocks this peer is itself one of the k responsible
 *    for (config `replicas`), as a replica holder would; never dropped here.
 * A block held for several reasons is looked after once, for the largest
 * k, and dropped only if a replica is all that holds it.
 */
import type { Logger } from '@libp2p/interface'
import { CID } from 'multiformats/cid'
import { cidKey } from '../content/cid.ts'
import type { ContentStore } from '../store/content-store.ts'
import { replicaKCap } from '../store/replica-k.ts'

export interface RepairTarget {
  cid: CID
  /** Copies it should have on its responsible peers. */
  k: number
  /** Only a replica holds it here: the copy may go once others hold it. */
  mayDrop: boolean
  /** Only a fetched DAG holds it: looked after only while this peer is one of its k responsible. */
  onlyIfResponsible: boolean
}

/** The blocks repair looks after, grouped by k (k >= 1). */
export async function repairTargets (
  content: Pick<ContentStore, 'list' | 'dagCids'>,
  defaultK: number,
  log: Logger,
  signal?: AbortSignal
): Promise<Map<number, RepairTarget[]>> {
  const byCid = new Map<string, RepairTarget>()
  const add = (cid: CID, k: number, reason: 'replica' | 'shared' | 'fetched'): void => {
    const key = cidKey(cid)
    const seen = byCid.get(key)
    if (seen == null) {
      byCid.set(key, { cid, k, mayDrop: reason === 'replica', onlyIfResponsible: reason === 'fetched' })
      return
    }
    seen.k = Math.max(seen.k, k)
    seen.mayDrop &&= reason === 'replica'
    seen.onlyIfResponsible &&= reason === 'fetched'
  }
  for (const holding of await content.list()) {
    signal?.throwIfAborted()
    const root = CID.parse(holding.cid)
    if (holding.reason === 'replica') {
      // a k recorded before the cap existed is capped here too
      add(root, Math.min(holding.replicas ?? defaultK, replicaKCap(defaultK)), 'replica')
      continue
    }
    const k = holding.reason === 'shared' ? holding.replicas ?? defaultK : defaultK
    if (k < 1) continue
    let cids: CID[]
    try {
      cids = await content.dagCids(root, signal)
    } catch (err) {
      signal?.throwIfAborted()
      // an incomplete DAG is marked as needing repair where it is found (gc, verify)
      log('repair: cannot list the blocks of %s %s: %s', holding.reason, holding.cid, (err as Error).message)
      continue
    }
    for (const cid of cids) add(cid, k, holding.reason)
  }
  const byK = new Map<number, RepairTarget[]>()
  for (const target of byCid.values()) {
    if (target.k < 1) continue
    let list = byK.get(target.k)
    if (list == null) byK.set(target.k, list = [])
    list.push(target)
  }
  return byK
}
