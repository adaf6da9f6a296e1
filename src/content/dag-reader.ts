/**
 * Reading a UnixFS file DAG: its size, its blocks, and its bytes (all or a
 * range), verifying every block against its CID as it is read. Works on any
 * UnixFS file DAG (raw or dag-pb leaves, data inline or in links), not only
 * the ones Shoal builds, so content imported by IPFS reads the same.
 *
 * A DAG comes from anyone: its nodes are bounded before they are followed
 * (DAG_LIMITS), and every size is checked against the one its parent gives,
 * so a small crafted DAG of repeated links cannot describe more pieces than
 * its file's bytes could hold, nor a walk that never ends.
 */
import * as dagPb from '@ipld/dag-pb'
import { UnixFS } from 'ipfs-unixfs'
import type { CID } from 'multiformats/cid'
import { NotAFileError } from '../errors.ts'
import { DAG_PB_CODE, RAW_CODE } from './cid.ts'
import { InvalidDagError } from '../errors.ts'
import { MAX_CHUNK_SIZE, MIN_CHUNK_SIZE } from './chunker.ts'

/** Fetches a block's bytes, already verified against the CID. */
export type BlockGetter = (cid: CID, options?: { signal?: AbortSignal }) => Promise<Uint8Array>

export interface FileNode {
  /** Bytes held in the node itself (raw leaf or UnixFS data). */
  data: Uint8Array
  /** Children with the file bytes under each. */
  children: Array<{ cid: CID, size: number }>
  size: number
}

/**
 * What a file DAG may be: any honest DAG of a file Shoal can fetch stays
 * within these, and a crafted one is refused (InvalidDagError) before its
 * pieces are listed.
 */
export const DAG_LIMITS = {
  /** Links in one node, unless its file bytes need more (one per MIN_PIECE_BYTES). */
  linksPerNode: 1024,
  /** File bytes a piece holds at least on average: a file of n bytes has at most n / this + 1 pieces (the smallest chunk size). */
  minPieceBytes: MIN_CHUNK_SIZE,
  /** A raw leaf holds at most this (the largest chunk, and block, size). */
  maxLeafBytes: MAX_CHUNK_SIZE,
  /** Levels of nodes below the root. */
  maxDepth: 64,
  /** Pieces of one file at most, whatever its size: bounds a download's memory (4 TiB of 4 MiB leaves, 1 TiB of 1 MiB ones). */
  maxPieces: 1 << 20
} as const

/** The most pieces (leaves and nodes with data) a file of `size` bytes may have. */
export function maxPiecesOf (size: number): number {
  return Math.min(DAG_LIMITS.maxPieces, Math.floor(size / DAG_LIMITS.minPieceBytes) + 1)
}

/**
 * Decodes a block of a file DAG; refuses directories and other types, and
 * nodes that contradict themselves (blockSizes against links and their
 * Tsize, more links than the node's bytes allow, a raw child larger than a
 * block).
 */
export function decodeFileNode (cid: CID, bytes: Uint8Array): FileNode {
  if (cid.code === RAW_CODE) return { data: bytes, children: [], size: bytes.length }
  if (cid.code !== DAG_PB_CODE) throw new NotAFileError(`${cid} is not a UnixFS file (codec 0x${cid.code.toString(16)})`)
  const node = dagPb.decode(bytes)
  if (node.Data == null) throw new NotAFileError(`${cid} is a dag-pb node without UnixFS data`)
  const unixfs = UnixFS.unmarshal(node.Data)
  if (unixfs.type !== 'file' && unixfs.type !== 'raw') throw new NotAFileError(`${cid} is a UnixFS ${unixfs.type}, not a file`)
  if (unixfs.blockSizes.length !== node.Links.length) throw new InvalidDagError(`${cid}: UnixFS blockSizes and links disagree`)
  const total = unixfs.fileSize()
  if (total > BigInt(Number.MAX_SAFE_INTEGER)) throw new InvalidDagError(`${cid} claims a file of ${total} bytes`)
  const size = Number(total)
  const links = node.Links.length
  if (links > Math.max(DAG_LIMITS.linksPerNode, maxPiecesOf(size))) {
    throw new InvalidDagError(`${cid} has ${links} links for ${size} bytes (at most ${DAG_LIMITS.linksPerNode}, or one per ${DAG_LIMITS.minPieceBytes} bytes)`)
  }
  const children = node.Links.map((link, i) => {
    const childSize = Number(unixfs.blockSizes[i])
    if (link.Hash.code === RAW_CODE && childSize > DAG_LIMITS.maxLeafBytes) {
      throw new InvalidDagError(`${cid} gives its raw leaf ${link.Hash} ${childSize} bytes, more than a block holds`)
    }
    // a child's encoding holds at least its file bytes (a Tsize of 0 or none: not given)
    if (link.Tsize != null && link.Tsize > 0 && link.Tsize < childSize) {
      throw new InvalidDagError(`${cid} gives ${link.Hash} ${childSize} file bytes in ${link.Tsize} encoded bytes`)
    }
    return { cid: link.Hash, size: childSize }
  })
  return { data: unixfs.data ?? new Uint8Array(0), children, size }
}

/** Refuses a child whose own size disagrees with the one its parent gives. */
export function checkChildSize (cid: CID, node: FileNode, expected: number): void {
  if (node.size !== expected) {
    throw new InvalidDagError(`${cid} holds ${node.size} file bytes, its parent says ${expected}`)
  }
}

function checkDepth (cid: CID, depth: number): void {
  if (depth > DAG_LIMITS.maxDepth) throw new InvalidDagError(`${cid} is more than ${DAG_LIMITS.maxDepth} levels below its root`)
}

/**
 * Every CID of the DAG once, parents before children (a subtree linked
 * twice is walked once). Raw leaves are not read.
 */
export async function * walkDag (root: CID, getBlock: BlockGetter, options: { signal?: AbortSignal } = {}): AsyncGenerator<CID> {
  yield * walkFrom(root, undefined, 0, new Set(), getBlock, options.signal)
}

async function * walkFrom (cid: CID, expected: number | undefined, depth: number, seen: Set<string>, getBlock: BlockGetter, signal?: AbortSignal): AsyncGenerator<CID> {
  const key = cid.toString()
  if (seen.has(key)) return
  seen.add(key)
  yield cid
  if (cid.code === RAW_CODE) return
  signal?.throwIfAborted()
  checkDepth(cid, depth)
  const node = decodeFileNode(cid, await getBlock(cid, { signal }))
  if (expected != null) checkChildSize(cid, node, expected)
  for (const child of node.children) yield * walkFrom(child.cid, child.size, depth + 1, seen, getBlock, signal)
}

/** The file's size in bytes, from its root block alone. */
export async function fileSize (root: CID, getBlock: BlockGetter, options: { signal?: AbortSignal } = {}): Promise<number> {
  return decodeFileNode(root, await getBlock(root, options)).size
}

/**
 * The file's bytes from `offset` for `length` bytes (default: to the end),
 * in order, skipping subtrees outside the range without reading them.
 */
export async function * readFile (root: CID, getBlock: BlockGetter, options: { offset?: number, length?: number, signal?: AbortSignal } = {}): AsyncGenerator<Uint8Array> {
  const start = options.offset ?? 0
  const end = options.length == null ? Infinity : start + options.length
  if (end <= start) return
  yield * readRange(root, start, end, undefined, 0, getBlock, options.signal)
}

async function * readRange (cid: CID, start: number, end: number, expected: number | undefined, depth: number, getBlock: BlockGetter, signal?: AbortSignal): AsyncGenerator<Uint8Array> {
  signal?.throwIfAborted()
  checkDepth(cid, depth)
  const node = decodeFileNode(cid, await getBlock(cid, { signal }))
  if (expected != null) checkChildSize(cid, node, expected)
  let pos = 0
  if (node.data.length > 0) {
    if (start < node.data.length && end > 0) yield node.data.subarray(Math.max(0, start), Math.min(node.data.length, end))
    pos = node.data.length
  }
  for (const child of node.children) {
    if (pos >= end) return
    if (pos + child.size > start) {
      yield * readRange(child.cid, Math.max(0, start - pos), Math.min(child.size, end - pos), child.size, depth + 1, getBlock, signal)
    }
    pos += child.size
  }
}
