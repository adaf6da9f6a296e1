/**
 * Hand-made UnixFS file nodes, for DAGs no importer would build: repeated
 * links, sizes that lie, chains deeper than any file needs.
 */
import * as dagPb from '@ipld/dag-pb'
import { UnixFS } from 'ipfs-unixfs'
import type { CID } from 'multiformats/cid'
import { cidOf, DAG_PB_CODE, RAW_CODE } from '../../src/content/cid.ts'

export interface CraftedBlock {
  cid: CID
  bytes: Uint8Array
}

export function rawBlock (bytes: Uint8Array): CraftedBlock {
  return { cid: cidOf(RAW_CODE, bytes), bytes }
}

/** A UnixFS file node linking `children`, each with the file size given (true or not). */
export function fileNode (children: Array<{ cid: CID, size: number, tsize?: number }>, data?: Uint8Array): CraftedBlock {
  const unixfs = new UnixFS({ type: 'file', ...(data != null ? { data } : {}) })
  for (const child of children) unixfs.addBlockSize(BigInt(child.size))
  const bytes = dagPb.encode(dagPb.prepare({
    Data: unixfs.marshal(),
    Links: children.map(child => ({ Name: '', Tsize: child.tsize ?? child.size, Hash: child.cid }))
  }))
  return { cid: cidOf(DAG_PB_CODE, bytes), bytes }
}

/**
 * A DAG bomb: `levels` nodes each linking the one below `fanout` times,
 * over one raw leaf of `leafBytes` bytes; every size consistent. Small to
 * send, fanout^levels pieces to list.
 */
export function repeatedLinks (fanout: number, levels: number, leafBytes = 1): { root: CID, blocks: CraftedBlock[] } {
  const leaf = rawBlock(new Uint8Array(leafBytes).fill(7))
  const blocks = [leaf]
  let below = { cid: leaf.cid, size: leafBytes }
  for (let l = 0; l < levels; l++) {
    const node = fileNode(Array.from({ length: fanout }, () => below))
    blocks.push(node)
    below = { cid: node.cid, size: below.size * fanout }
  }
  return { root: below.cid, blocks }
}
