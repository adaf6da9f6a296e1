/**
 * Where each block of a UnixFS file DAG lands in the file. Resolving the
 * layout fetches every dag-pb node (the root and the levels of links, a few
 * KiB per GiB of file with 1 MiB raw leaves); raw leaves are only listed,
 * with their offset and size from the parent's blockSizes, for the
 * scheduler to fetch in parallel.
 */
import type { CID } from 'multiformats/cid'
import { cidKey, RAW_CODE } from '../content/cid.ts'
import { checkChildSize, DAG_LIMITS, decodeFileNode, maxPiecesOf, type FileNode } from '../content/dag-reader.ts'
import { InvalidDagError } from '../errors.ts'
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

/**
 * `getNode` returns a verified block (fetched or local). The DAG is checked
 * as it is read (DAG_LIMITS): every node's size against its parent's word,
 * the levels, and the pieces and nodes listed against what the root's size
 * allows, counted before they are listed; a DAG that breaks one is an
 * InvalidDagError, however few bytes describe it.
 */
export async function resolveLayout (root: CID, getNode: (cid: CID) => Promise<Uint8Array>): Promise<FileLayout> {
  const pieces: FilePiece[] = []
  const nodes: CID[] = []
  if (root.code === RAW_CODE) {
    const bytes = await getNode(root)
    return { size: bytes.length, pieces: [{ cid: root, raw: true, offset: 0, size: bytes.length }], nodes }
  }
  let size = 0
  let maxPieces = 1
  let depth = 0
  let level: Array<{ cid: CID, offset: number, size?: number }> = [{ cid: root, offset: 0 }]
  while (level.length > 0) {
    if (depth > DAG_LIMITS.maxDepth) throw new InvalidDagError(`${cidKey(root)} is more than ${DAG_LIMITS.maxDepth} levels deep`)
    const next: Array<{ cid: CID, offset: number, size: number }> = []
    // a node linked several times in a level is fetched and decoded once
    const decodedOnce = new Map<string, Promise<FileNode>>()
    const decoded = await mapConcurrent(level, NODES_AT_ONCE, async ({ cid }) => {
      const key = cidKey(cid)
      let node = decodedOnce.get(key)
      if (node == null) {
        node = getNode(cid).then(bytes => decodeFileNode(cid, bytes))
        decodedOnce.set(key, node)
      }
      return node
    })
    level.forEach(({ cid, offset, size: expected }, j) => {
      const node = decoded[j]
      if (expected != null) checkChildSize(cid, node, expected)
      nodes.push(cid)
      if (depth === 0) {
        size = node.size
        maxPieces = maxPiecesOf(size)
      }
      const count = (raw: boolean): void => {
        // every node holds a piece or leads to one: both are bounded by the pieces the size allows
        if (pieces.length > maxPieces || nodes.length + next.length + (raw ? 0 : 1) > maxPieces * 2 + 1) {
          throw new InvalidDagError(`${cidKey(root)} lists more pieces than a file of ${size} bytes holds (at most ${maxPieces})`)
        }
      }
      if (node.data.length > 0) {
        pieces.push({ cid, raw: false, offset, size: node.data.length })
        count(true)
      }
      let pos = offset + node.data.length
      for (const child of node.children) {
        if (child.cid.code === RAW_CODE) {
          pieces.push({ cid: child.cid, raw: true, offset: pos, size: child.size })
          count(true)
        } else {
          count(false)
          next.push({ cid: child.cid, offset: pos, size: child.size })
        }
        pos += child.size
      }
    })
    level = next
    depth++
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
