/**
 * `rm`, a use case of the peer: before this peer lets go of a CID, each of
 * its blocks for which this peer is among the k closest is handed to the
 * next closest peer (Placement.handOff), so the swarm does not drop to k-1
 * copies until a repair pass notices; then the holdings go and the blocks
 * nothing else holds are freed. A hand-off that fails (no peer reachable)
 * does not stop the rm: the result says how many copies went where.
 */
import type { CID } from 'multiformats/cid'
import type { Logger } from '@libp2p/interface'
import { cidKey } from '../content/cid.ts'
import type { HandOffResult, Placement } from '../placement/placement.ts'
import type { ContentStore, RemoveResult } from '../store/content-store.ts'
import { ContentNotFoundError } from '../store/errors.ts'
import { holdsWholeDag } from '../store/holdings.ts'

export interface RemoveComponents {
  content: Pick<ContentStore, 'list' | 'dagCids' | 'remove'>
  placement: Pick<Placement, 'handOff'>
  /** This peer's replica count (config `replicas`). */
  replicas: number
  log: Logger
}

export interface PeerRemoveResult extends RemoveResult {
  /** Blocks this peer was among the k closest of, and the copies handed on before they went. */
  handedOff: HandOffResult
}

/** `signal` bounds the hand-off (and the DAG walk before it): past it, the rm goes on without the copies not yet handed on. */
export async function removeContent (components: RemoveComponents, cid: CID, signal?: AbortSignal): Promise<PeerRemoveResult> {
  const { content, placement, log } = components
  const holdings = await content.list(cid)
  if (holdings.length === 0) throw new ContentNotFoundError(`${cidKey(cid)} is not held by this peer`)
  let cids = [cid]
  if (holdings.some(h => holdsWholeDag(h.reason))) {
    // a DAG that cannot be walked whole here: its root at least
    cids = await content.dagCids(cid, signal).catch(() => [cid])
  }
  const k = Math.max(components.replicas, ...holdings.map(h => h.replicas ?? 0))
  let handedOff: HandOffResult
  try {
    handedOff = await placement.handOff(cids, k, signal)
  } catch (err) {
    // the rm goes on: repair passes elsewhere restore what was not handed on
    log('handing %s on before removing it failed: %s', cidKey(cid), (err as Error).message)
    handedOff = { blocks: 0, copies: 0, failed: cids.length }
  }
  return { ...(await content.remove(cid)), handedOff }
}
