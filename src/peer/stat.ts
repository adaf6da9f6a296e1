/**
 * `stat`, a use case of the peer: a DAG's blocks and, for each, who holds it
 * now (asked, not assumed). Works on any peer: one that holds the DAG reads
 * it from its store; any other gets its inner nodes from the peers that
 * hold them (the fetch's machinery, Fetcher.layout), then asks each block's
 * closest peers as a holder would. Only a CID nobody answers for is an
 * error (ContentNotFoundError).
 */
import type { CID } from 'multiformats/cid'
import type { Fetcher } from '../exchange/fetcher.ts'
import type { Placement } from '../placement/placement.ts'
import type { Overlay } from '../routing/index.ts'
import type { ContentStore } from '../store/content-store.ts'
import { BlockNotFoundError, ContentNotFoundError } from '../store/errors.ts'

export interface StatResult {
  cid: string
  size: number
  replicas: number
  blocks: Array<{ cid: string, size: number, holders: string[], closest: string[] }>
}

export interface StatComponents {
  content: Pick<ContentStore, 'dagCids' | 'blockSize' | 'size'>
  fetcher: Pick<Fetcher, 'layout'>
  overlay: Pick<Overlay, 'planner'>
  placement: Pick<Placement, 'whoHas'>
}

export async function statContent (components: StatComponents, root: CID, k: number, options: { signal?: AbortSignal, timeoutMs?: number } = {}): Promise<StatResult> {
  const { content, fetcher, overlay, placement } = components
  const { signal } = options
  let blocks: Array<{ cid: CID, size: number }>
  let size: number
  try {
    const cids = await content.dagCids(root, signal)
    blocks = await Promise.all(cids.map(async cid => ({ cid, size: await content.blockSize(cid) ?? 0 })))
    size = await content.size(root, signal)
  } catch (err) {
    // not held here, or only in part (a replica of the root): from the peers that hold it
    if (!(err instanceof ContentNotFoundError) && !(err instanceof BlockNotFoundError)) throw err
    const remote = await fetcher.layout(root, { signal, timeoutMs: options.timeoutMs })
    blocks = remote.blocks
    size = remote.layout.size
  }
  const cids = blocks.map(b => b.cid)
  // ask the 2k closest of each block (a holder may sit just outside the k)
  const plan = await overlay.planner().plan(cids.map(c => c.multihash.bytes), 2 * k, { signal })
  const { holders } = await placement.whoHas(cids, plan.responsible, signal)
  return {
    cid: root.toString(),
    size,
    replicas: k,
    blocks: blocks.map((b, i) => ({ cid: b.cid.toString(), size: b.size, holders: holders[i], closest: plan.responsible[i].slice(0, k) }))
  }
}
