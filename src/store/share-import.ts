/**
 * A share's import into the store: the file's leaves stored batch by batch
 * on the blockstore's leaf workers, the DAG built over them, and the
 * holding recorded once every block is durable (the commit point).
 *
 * GC must not sweep the import's blocks before its holding exists: they
 * are in flight (in-flight.ts) until the import ends, and each batch takes
 * the store's lock shared, not the whole import, so a GC asked for
 * meanwhile runs between two batches of a long import.
 */
import fs from 'node:fs/promises'
import type { Logger } from '@libp2p/interface'
import type { CID } from 'multiformats/cid'
import { cidKey } from '../content/cid.ts'
import { BufferPool } from '../content/buffer-pool.ts'
import { batchBytes, checkChunkSize, DEFAULT_CHUNK_SIZE, fileBatches, streamChunks } from '../content/chunker.ts'
import { DEFAULT_WRITE_CONCURRENCY, importBatches, SYNCED_WRITE_CONCURRENCY, type ImportResult, type Leaf } from '../content/importer.ts'
import { ShoalError } from '../errors.ts'
import { isCode } from '../utils/fs.ts'
import type { RwLock } from '../utils/rw-lock.ts'
import type { BlockIndex } from './block-index.ts'
import type { FsBlockstore, LeafBatch } from './blockstore.ts'
import { InvalidPathError } from './errors.ts'
import type { Holdings } from './holdings.ts'
import type { InFlight } from './in-flight.ts'

export interface ShareOptions {
  chunkSize?: number
  /** Batches of chunks being hashed and written at once (default: the importer's). */
  writeConcurrency?: number
  /** File name recorded with the holding. */
  name?: string
  /** The k its blocks are placed with, recorded with the holding (repair keeps that many copies). */
  replicas?: number
  signal?: AbortSignal
  onProgress?: (bytes: number) => void
  /** Each block of the DAG once it is stored (leaves as their batch is, nodes as they are built): placement streams from here. */
  onBlock?: (cid: CID, size: number) => void
}

export interface ShareResult extends ImportResult {
  name?: string
}

/** The parts of the content store an import writes to. */
export interface ShareImportComponents {
  blockstore: FsBlockstore
  holdings: Holdings
  blockIndex: BlockIndex
  lock: RwLock
  inFlight: InFlight
  /** Aborted when the store closes: imports in progress stop. */
  closing: AbortSignal
  log: Logger
  /** Sweeps what a failed import left behind. */
  gc: () => Promise<unknown>
}

/** Imports a file the daemon can read (its leaf workers read it by position), and records it as shared. */
export async function shareFile (store: ShareImportComponents, filePath: string, options: ShareOptions = {}): Promise<ShareResult> {
  const chunkSize = checkChunkSize(options.chunkSize ?? DEFAULT_CHUNK_SIZE)
  const handle = await openForImport(filePath)
  try {
    const { size } = await handle.stat()
    return await importLeaves(store, function * () {
      for (const { position, length } of fileBatches(size, chunkSize)) yield { source: { fd: handle.fd, position }, length, chunkSize }
    }, { ...options, chunkSize })
  } finally {
    // every batch has settled by now (importBatches waits), so no worker reads the fd
    await handle.close()
  }
}

/** Imports bytes streamed to the daemon (e.g. an HTTP request body), and records them as shared. */
export async function shareStream (store: ShareImportComponents, source: AsyncIterable<Uint8Array>, options: ShareOptions = {}): Promise<ShareResult> {
  const chunkSize = checkChunkSize(options.chunkSize ?? DEFAULT_CHUNK_SIZE)
  // batches in shared memory: the leaf workers read them in place
  const pool = new BufferPool(batchBytes(chunkSize), SYNCED_WRITE_CONCURRENCY + 4)
  return importLeaves(store, async function * (signal) {
    for await (const bytes of streamChunks(source, pool.size, signal, pool)) yield { source: { bytes }, length: bytes.length, chunkSize }
  }, { ...options, chunkSize }, batch => { if ('bytes' in batch.source) pool.release(batch.source.bytes) })
}

/**
 * Stores the leaves batch by batch (`release` gets each batch back once
 * stored), builds the DAG, and records the holding once it is durable.
 */
async function importLeaves (store: ShareImportComponents, batches: (signal: AbortSignal) => Iterable<LeafBatch> | AsyncIterable<LeafBatch>, options: ShareOptions, release?: (batch: LeafBatch) => void): Promise<ShareResult> {
  const { blockstore, lock } = store
  const signal = AbortSignal.any([store.closing, ...(options.signal != null ? [options.signal] : [])])
  const keys = store.inFlight.open()
  try {
    // the shared lock per batch, not for the whole import: a GC (or a
    // dropReplica) asked for meanwhile runs between two batches instead of
    // waiting for the end of a long (streamed) import, and stores and
    // fetches queued behind it go on; the import's blocks are in flight,
    // so GC leaves them alone
    const storeLeaves = async (batch: LeafBatch): Promise<Leaf[]> => lock.shared(async () => {
      try {
        signal.throwIfAborted()
        const leaves = await blockstore.putLeaves(batch)
        for (const leaf of leaves) keys.add(cidKey(leaf.cid))
        for (const leaf of leaves) options.onBlock?.(leaf.cid, leaf.size)
        return leaves
      } finally {
        release?.(batch)
      }
    })
    const storeNode = async (node: { cid: CID, bytes: Uint8Array }): Promise<void> => lock.shared(async () => {
      signal.throwIfAborted()
      await blockstore.put(node.cid, node.bytes)
      keys.add(cidKey(node.cid))
      options.onBlock?.(node.cid, node.bytes.length)
    })
    const result = await importBatches(batches(signal), storeLeaves, storeNode, {
      signal,
      onProgress: options.onProgress,
      writeConcurrency: options.writeConcurrency ?? (blockstore.syncWrites ? SYNCED_WRITE_CONCURRENCY : DEFAULT_WRITE_CONCURRENCY)
    })
    // The holding is the commit point: only once every block is durable.
    return await lock.shared(async () => {
      signal.throwIfAborted()
      await blockstore.sync()
      await store.holdings.add({ cid: result.cid, reason: 'shared', size: result.size, blocks: result.blocks, name: options.name, replicas: options.replicas })
      await store.blockIndex.addDag(result.cid, keys)
      return { ...result, ...(options.name != null ? { name: options.name } : {}) }
    })
  } catch (err) {
    store.inFlight.close(keys)
    // Blocks of a failed import are held by nothing (and no longer in
    // flight): sweep them now so a refused or aborted import leaves nothing behind.
    if (!store.closing.aborted) {
      await store.gc().catch(gcErr => { store.log.error('cleanup after failed import - %e', gcErr) })
    }
    throw signal.aborted && !(err instanceof ShoalError) ? (signal.reason as Error) : err
  } finally {
    store.inFlight.close(keys)
  }
}

/** Opens a path for import with one clear error for each way it can be wrong. */
async function openForImport (filePath: string): Promise<fs.FileHandle> {
  let handle: fs.FileHandle
  try {
    // a pipe or device given by path would block or be read in someone else's
    // place: the client streams those (shoal share does)
    const stat = await fs.stat(filePath)
    if (!stat.isFile() && !stat.isDirectory()) throw new InvalidPathError(`${filePath} is not a regular file: send its bytes as a stream instead`)
    handle = await fs.open(filePath, 'r')
  } catch (err) {
    if (err instanceof InvalidPathError) throw err
    if (isCode(err, 'ENOENT')) throw new InvalidPathError(`no such file: ${filePath}`)
    if (isCode(err, 'EACCES') || isCode(err, 'EPERM')) throw new InvalidPathError(`cannot read ${filePath}: permission denied`)
    if (isCode(err, 'EISDIR')) throw new InvalidPathError(`${filePath} is a directory, not a file`)
    throw new InvalidPathError(`cannot open ${filePath}: ${(err as Error).message}`)
  }
  const stat = await handle.stat()
  if (stat.isDirectory()) {
    await handle.close()
    throw new InvalidPathError(`${filePath} is a directory, not a file`)
  }
  return handle
}
