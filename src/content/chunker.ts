/**
 * Fixed-size chunking, as ipfs-unixfs-importer's `fixedSize` chunker does it:
 * every chunk is exactly `chunkSize` bytes except the last, and empty input
 * gives one empty chunk (so an empty file still has a CID).
 *
 * Each chunk is a fresh buffer the caller may keep: blocks are written to
 * disk while the next chunk is read.
 */
import type { FileHandle } from 'node:fs/promises'
import { InvalidInputError } from '../errors.ts'
import type { BufferPool } from './buffer-pool.ts'

export const DEFAULT_CHUNK_SIZE = 1024 * 1024
export const MIN_CHUNK_SIZE = 16 * 1024
export const MAX_CHUNK_SIZE = 4 * 1024 * 1024

export function checkChunkSize (size: number): number {
  if (!Number.isInteger(size) || size < MIN_CHUNK_SIZE || size > MAX_CHUNK_SIZE) {
    throw new InvalidInputError(`chunk size must be an integer from ${MIN_CHUNK_SIZE} (16 KiB) to ${MAX_CHUNK_SIZE} (4 MiB), got ${size}`)
  }
  return size
}

/** Reads of a regular file kept in flight ahead of the one being hashed. */
export const READ_AHEAD = 2

/**
 * Chunks of an open regular file, from its start. Reads are positional and
 * the next ones are already in flight while the caller hashes the current
 * chunk, so disk and CPU overlap. With a `pool`, chunk buffers come from it
 * and the caller releases each one when done with it.
 */
export async function * fileChunks (handle: FileHandle, chunkSize: number, signal?: AbortSignal, pool?: BufferPool): AsyncGenerator<Uint8Array> {
  const size = (await handle.stat()).size
  const count = Math.max(1, Math.ceil(size / chunkSize))
  const pending: Array<Promise<Uint8Array>> = []
  let next = 0
  const readChunk = async (index: number): Promise<Uint8Array> => {
    const position = index * chunkSize
    const length = Math.min(chunkSize, size - position)
    const buf = pool != null && pool.size === chunkSize ? pool.acquire().subarray(0, length) : Buffer.allocUnsafe(length)
    let filled = 0
    while (filled < length) {
      const { bytesRead } = await handle.read(buf, filled, length - filled, position + filled)
      if (bytesRead === 0) throw new Error(`file shrank while being read (at byte ${position + filled} of ${size})`)
      filled += bytesRead
    }
    return buf
  }
  try {
    for (let index = 0; index < count; index++) {
      signal?.throwIfAborted()
      while (next < count && next <= index + READ_AHEAD) {
        const read = readChunk(next++)
        read.catch(() => {}) // awaited in order below
        pending.push(read)
      }
      yield await pending.shift()!
    }
  } finally {
    await Promise.allSettled(pending)
  }
}

/** Re-cuts a stream of arbitrary pieces (an HTTP body) into chunks. */
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
      buf.set(piece.subarray(offset, offset + n), filled)
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
