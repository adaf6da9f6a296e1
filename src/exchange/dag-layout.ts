/**
 * A DAG's layout without its leaves: the root and the levels of dag-pb
 * nodes (a few KiB per GiB of file), fetched from whoever holds them the
 * way a fetch finds them (peers at hand, the nodes' responsible peers, the
 * root's providers; NodeResolver), each checked against its CID. `shoal
 * stat` uses it on a peer that does not hold the DAG. The nodes are stored
 * as a fetch stores them, but nothing holds them: GC sweeps them later.
 */
import type { Logger } from '@libp2p/interface'
import type { CID } from 'multiformats/cid'
import { cidKey } from '../content/cid.ts'
import { ContentNotFoundError } from '../store/errors.ts'
import { resolveLayout, type FileLayout } from './file-layout.ts'
import type { FetcherComponents } from './index.ts'
import { NodeResolver } from './node-resolver.ts'
import { SessionPool } from './session-pool.ts'
import { SourceFinder } from './source-finder.ts'

export interface DagLayout {
  layout: FileLayout
  /** Every block of the DAG: its dag-pb nodes (parents first), then its raw leaves in file order. */
  blocks: Array<{ cid: CID, size: number }>
}

/**
 * Resolves `root`'s layout from the network. Fails with
 * ContentNotFoundError when nobody answered for a node within `timeoutMs`.
 */
export async function fetchDagLayout (components: Pick<FetcherComponents, 'content' | 'connection' | 'overlay'>, root: CID, init: { replicas: number, log: Logger, timeoutMs: number, signal?: AbortSignal }): Promise<DagLayout> {
  const deadline = AbortSignal.timeout(init.timeoutMs)
  const signal = init.signal != null ? AbortSignal.any([init.signal, deadline]) : deadline
  const store = components.content.openFetch()
  const sessions = new SessionPool(components, { log: init.log, name: `layout of ${cidKey(root)}` })
  const sources = new SourceFinder({ ...components, sessions }, { root, replicas: init.replicas, log: init.log, onSource: () => {} })
  const nodes = new NodeResolver({ content: components.content, store, sessions, sources }, { onNode: () => {} })
  const sizes = new Map<string, number>()
  try {
    const layout = await resolveLayout(root, async cid => {
      const bytes = await nodes.get(cid, signal)
      sizes.set(cid.toString(), bytes.length)
      return bytes
    })
    await nodes.stored().catch(() => {})
    const blocks = [
      ...layout.nodes.map(cid => ({ cid, size: sizes.get(cid.toString()) ?? 0 })),
      ...layout.pieces.filter(p => p.raw).map(p => ({ cid: p.cid, size: p.size }))
    ]
    return { layout, blocks }
  } catch (err) {
    if (deadline.aborted && init.signal?.aborted !== true) {
      throw new ContentNotFoundError(`nobody answered for ${cidKey(root)} within ${Math.round(init.timeoutMs / 1000)} s`)
    }
    throw err
  } finally {
    store.close()
    await sessions.close()
  }
}
