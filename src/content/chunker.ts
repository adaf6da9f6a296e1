/**
 * Fixed-size chunking, as ipfs-unixfs-importer's `fixedSize` chunker does it:
 * every chunk is exactly `chunkSize` bytes except the last, and empty input
 * gives one empty chunk (so an empty file still has a CID).
 *
 * Files are cut into ranges that leaf workers read themselves
 * (src/store/leaf-workers.ts); streams are re-cut on the main thread.
 */
import { InvalidInputError } from '../errors.ts'
import type { BufferPool } from './buffer-pool.ts'
import { copyBytes } from '../utils/bytes.ts'

export const DEFAULT_CHUNK_SIZE = 1024 * 1024
export const MIN_CHUNK_SIZE = 16 * 1024
export const MAX_CHUNK_SIZE = 4 * 1024 * 1024

export function checkChunkSize (size: number): number {
  if (!Number.isInteger(size) || size < MIN_CHUNK_SIZE || size > MAX_CHUNK_SIZE) {
    throw new InvalidInputError(`chunk size must be an integer from ${MIN_CHUNK_SIZE} (16 KiB) to ${MAX_CHUNK_SIZE} (4 MiB), got ${size}`)
  }
  return size
}

/**
 * Bytes per batch of chunks handed to a leaf worker at once: one chunk of
 * 1 MiB or more, else as many whole chunks as fit in 1 MiB (64 of 16 KiB),
 * so a message per batch costs little next to the hashing and writing.
 */
export const BATCH_BYTES = 1024 * 1024

export function batchBytes (chunkSize: number): number {
  return Math.max(1, Math.floor(BATCH_BYTES / chunkSize)) * chunkSize
}

/**
 * A file of `size` bytes as ranges of whole chunks, `batchBytes(chunkSize)`
 * each but the last; an empty file is one empty range (one empty chunk).
 */
export function * fileBatches (size: number, chunkSize: number): Generator<{ position: number, length: number }> {
  const step = batchBytes(chunkSize)
  if (size === 0) yield { position: 0, length: 0 }
  for (let position = 0; position < size; position += step) yield { position, length: Math.min(step, size - position) }
}

/**
 * Re-cuts a stream of arbitrary pieces (an HTTP body) into chunks of
 * `chunkSize` (or batches of chunks: any multiple of it). With a `pool`,
 * buffers come from it and the caller releases each one when done with it.
 */
export async function * streamChunks (source: AsyncIterable<Uint8Array>, chunkSize: number, signal?: AbortSignal, pool?: BufferPool): AsyncGenerator<Uint8Array> {
  const allocate = (): Buffer => pool != null && pool.size === chunkSize ? pool.acquire() : Buffer.allocUnsafe(chunkSize)
  let emitted = false
  let buf = allocate()
  let filled = 0
  for await (const piece of source) {
    signal?.throwIfAborted()
    let offset = 0
    while (offset < piece.length) {
      const n = Math.min(chunkSize - filled, piece.length - offset)
      copyBytes(piece, buf, filled, offset, offset + n)
      filled += n
      offset += n
      if (filled === chunkSize) {
        emitted = true
        yield buf
        buf = allocate()
        filled = 0
      }
    }
  }
  if (filled > 0 || !emitted) yield buf.subarray(0, filled)
}
