/**
 * Streaming import: raw leaves in, the balanced UnixFS DAG out.
 *
 * `importBatches` is the engine: the caller cuts the file into batches of
 * chunks and stores each batch's leaves however it likes (the blockstore
 * hashes and writes them on worker threads, src/store/leaf-workers.ts);
 * several batches are in flight at once and their leaves join the DAG in
 * file order. Memory: at most `window` batches in flight.
 *
 * `importChunks` hashes chunks on the calling thread and hands every block
 * to a sink: the small, in-memory path (tests compare it with Helia's).
 */
import type { CID } from 'multiformats/cid'
import { rawCid, sha256Digest } from './cid.ts'
import { BalancedDagBuilder, MAX_CHILDREN_PER_NODE, type BlockSink } from './dag-builder.ts'

export interface ImportOptions {
  /** Links per UnixFS node (default 1024, as IPFS). */
  maxChildren?: number
  /** Batches (or chunks, for importChunks) being stored at once (default 4). */
  writeConcurrency?: number
  signal?: AbortSignal
  /** Called after each batch with the file bytes imported so far. */
  onProgress?: (bytes: number) => void
}

export interface ImportResult {
  cid: CID
  /** File bytes. */
  size: number
  /** Raw leaves (chunks). */
  chunks: number
  /** Every block of the DAG: leaves and UnixFS nodes. */
  blocks: number
  /** Encoded bytes of the whole DAG (the root's Tsize). */
  dagSize: number
}

/** A stored raw leaf. */
export interface Leaf {
  cid: CID
  size: number
}

export const DEFAULT_WRITE_CONCURRENCY = 4
/**
 * With every block fsynced, a write waits mostly on the disk's flush: more
 * of them in flight let the filesystem commit them together
 * (docs/benchmarks.md, Import).
 */
export const SYNCED_WRITE_CONCURRENCY = 16

/**
 * Imports a file given as batches of chunks. `storeLeaves` stores one
 * batch and resolves its leaves in order; the DAG's parent nodes go to
 * `writeNode`. On failure, waits for every batch in flight before throwing.
 */
export async function importBatches<B> (batches: Iterable<B> | AsyncIterable<B>, storeLeaves: (batch: B) => Promise<Leaf[]>, writeNode: BlockSink, options: ImportOptions = {}): Promise<ImportResult> {
  const limit = options.writeConcurrency ?? DEFAULT_WRITE_CONCURRENCY
  const inflight: Array<Promise<Leaf[]>> = []
  const builder = new BalancedDagBuilder(writeNode, options.maxChildren ?? MAX_CHILDREN_PER_NODE)
  let size = 0
  let count = 0
  const next = async (): Promise<void> => {
    for (const leaf of await inflight.shift()!) {
      await builder.addLeaf(leaf.cid, leaf.size)
      size += leaf.size
      count++
    }
    options.onProgress?.(size)
  }
  try {
    for await (const batch of batches) {
      options.signal?.throwIfAborted()
      const stored = storeLeaves(batch)
      stored.catch(() => {}) // awaited in order below
      inflight.push(stored)
      if (inflight.length >= limit) await next()
    }
    while (inflight.length > 0) await next()
    const root = await builder.finish()
    return { cid: root.cid, size, chunks: count, blocks: count + builder.nodeCount, dagSize: root.tsize }
  } catch (err) {
    await Promise.allSettled(inflight)
    throw err
  }
}

/** Hashes each chunk here and gives every block (leaves, then nodes) to `sink`. */
export async function importChunks (chunks: AsyncIterable<Uint8Array>, sink: BlockSink, options: ImportOptions = {}): Promise<ImportResult> {
  return importBatches(chunks, async chunk => {
    const cid = rawCid(sha256Digest(chunk))
    await sink({ cid, bytes: chunk })
    return [{ cid, size: chunk.length }]
  }, sink, options)
}
