/**
 * Where each block of a UnixFS file DAG lands in the file. Resolving the
 * layout fetches every dag-pb node (the root and the levels of links, a few
 * KiB per GiB of file with 1 MiB raw leaves); raw leaves are only listed,
 * with their offset and size from the parent's blockSizes, for the
 * scheduler to fetch in parallel.
 */
import type { CID } from 'multiformats/cid'
import { RAW_CODE } from '../content/cid.ts'
import { decodeFileNode } from '../content/dag-reader.ts'
import { mapConcurrent } from '../utils/wait.ts'

export interface FilePiece {
  /** The block holding these bytes: a raw leaf, or a dag-pb node with data. */
  cid: CID
  raw: boolean
  offset: number
  /** File bytes in the piece (for a raw leaf, the block's size). */
  size: number
}

export interface FileLayout {
  size: number
  /** In file order; together they cover every byte once. */
  pieces: FilePiece[]
  /** Every dag-pb node, fetched while resolving. */
  nodes: CID[]
}

/** Nodes of one level fetched at once. */
const NODES_AT_ONCE = 8

/** `getNode` returns a verified block (fetched or local). */
export async function resolveLayout (root: CID, getNode: (cid: CID) => Promise<Uint8Array>): Promise<FileLayout> {
  const pieces: FilePiece[] = []
  const nodes: CID[] = []
  if (root.code === RAW_CODE) {
    const bytes = await getNode(root)
    return { size: bytes.length, pieces: [{ cid: root, raw: true, offset: 0, size: bytes.length }], nodes }
  }
  let size = 0
  let level: Array<{ cid: CID, offset: number }> = [{ cid: root, offset: 0 }]
  while (level.length > 0) {
    const next: Array<{ cid: CID, offset: number }> = []
    const decoded = await mapConcurrent(level, NODES_AT_ONCE, async ({ cid }) => decodeFileNode(cid, await getNode(cid)))
    level.forEach(({ cid, offset }, j) => {
      const node = decoded[j]
      nodes.push(cid)
      if (cid === root) size = node.size
      if (node.data.length > 0) pieces.push({ cid, raw: false, offset, size: node.data.length })
      let pos = offset + node.data.length
      for (const child of node.children) {
        if (child.cid.code === RAW_CODE) pieces.push({ cid: child.cid, raw: true, offset: pos, size: child.size })
        else next.push({ cid: child.cid, offset: pos })
        pos += child.size
      }
    })
    level = next
  }
  pieces.sort((a, b) => a.offset - b.offset)
  return { size, pieces, nodes }
}

/** Index of the first piece holding byte `offset` (pieces sorted by offset). */
export function pieceAt (pieces: FilePiece[], offset: number): number {
  let lo = 0
  let hi = pieces.length - 1
  while (lo < hi) {
    const mid = (lo + hi + 1) >> 1
    if (pieces[mid].offset <= offset) lo = mid
    else hi = mid - 1
  }
  return lo
}
