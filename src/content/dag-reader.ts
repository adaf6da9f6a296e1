/**
 * Reading a UnixFS file DAG: its size, its blocks, and its bytes (all or a
 * range), verifying every block against its CID as it is read. Works on any
 * UnixFS file DAG (raw or dag-pb leaves, data inline or in links), not only
 * the ones Shoal builds, so content imported by IPFS reads the same.
 */
import * as dagPb from '@ipld/dag-pb'
import { UnixFS } from 'ipfs-unixfs'
import type { CID } from 'multiformats/cid'
import { NotAFileError } from '../errors.ts'
import { DAG_PB_CODE, RAW_CODE } from './cid.ts'

/** Fetches a block's bytes, already verified against the CID. */
export type BlockGetter = (cid: CID, options?: { signal?: AbortSignal }) => Promise<Uint8Array>

interface FileNode {
  /** Bytes held in the node itself (raw leaf or UnixFS data). */
  data: Uint8Array
  /** Children with the file bytes under each. */
  children: Array<{ cid: CID, size: number }>
  size: number
}

/** Decodes a block of a file DAG; refuses directories and other types. */
export function decodeFileNode (cid: CID, bytes: Uint8Array): FileNode {
  if (cid.code === RAW_CODE) return { data: bytes, children: [], size: bytes.length }
  if (cid.code !== DAG_PB_CODE) throw new NotAFileError(`${cid} is not a UnixFS file (codec 0x${cid.code.toString(16)})`)
  const node = dagPb.decode(bytes)
  if (node.Data == null) throw new NotAFileError(`${cid} is a dag-pb node without UnixFS data`)
  const unixfs = UnixFS.unmarshal(node.Data)
  if (unixfs.type !== 'file' && unixfs.type !== 'raw') throw new NotAFileError(`${cid} is a UnixFS ${unixfs.type}, not a file`)
  if (unixfs.blockSizes.length !== node.Links.length) throw new NotAFileError(`${cid}: UnixFS blockSizes and links disagree`)
  return {
    data: unixfs.data ?? new Uint8Array(0),
    children: node.Links.map((link, i) => ({ cid: link.Hash, size: Number(unixfs.blockSizes[i]) })),
    size: Number(unixfs.fileSize())
  }
}

/** Every CID of the DAG, parents before children. Raw leaves are not read. */
export async function * walkDag (root: CID, getBlock: BlockGetter, options: { signal?: AbortSignal } = {}): AsyncGenerator<CID> {
  yield root
  if (root.code === RAW_CODE) return
  const node = decodeFileNode(root, await getBlock(root, options))
  for (const child of node.children) yield * walkDag(child.cid, getBlock, options)
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
  yield * readRange(root, start, end, getBlock, options.signal)
}

async function * readRange (cid: CID, start: number, end: number, getBlock: BlockGetter, signal?: AbortSignal): AsyncGenerator<Uint8Array> {
  signal?.throwIfAborted()
  const node = decodeFileNode(cid, await getBlock(cid, { signal }))
  let pos = 0
  if (node.data.length > 0) {
    if (start < node.data.length && end > 0) yield node.data.subarray(Math.max(0, start), Math.min(node.data.length, end))
    pos = node.data.length
  }
  for (const child of node.children) {
    if (pos >= end) return
    if (pos + child.size > start) {
      yield * readRange(child.cid, Math.max(0, start - pos), Math.min(child.size, end - pos), getBlock, signal)
    }
    pos += child.size
  }
}
