/**
 * Sharing a file, a use case of the peer:
 *
 * ```
 *  source (a path, or bytes as a stream)
 *    |  1. import: ContentStore cuts it into chunks, builds the UnixFS DAG,
 *    |     stores every block and holds the root as "shared"
 *    |  2. every block of the DAG (root, inner nodes, leaves)
 *    v  3. place: Placement pushes each block to its k responsible peers
 *  result    and announces the root as a provider record
 * ```
 *
 * Progress comes as typed events through `options.onProgress`: bytes
 * imported, then block copies placed.
 */
import fs from 'node:fs/promises'
import path from 'node:path'
import type { CID } from 'multiformats/cid'
import type { Placement, PlaceResult } from '../placement/placement.ts'
import type { ContentStore, ShareResult } from '../store/content-store.ts'
import { InvalidPathError } from '../store/errors.ts'

/** What to share: a file this process can read, or its bytes. */
export type ShareSource = { path: string } | { stream: AsyncIterable<Uint8Array> }

export type ShareProgressEvent =
  /** Bytes of the source imported so far. */
  | { name: 'share:imported', bytes: number }
  /** Block copies acknowledged by the peers they were placed on, of `total`. */
  | { name: 'share:placed', done: number, total: number }

export interface PeerShareOptions {
  /** Copies of each block to place (0: keep it here only and announce the root). */
  replicas: number
  chunkSize?: number
  /** File name recorded with the holding. */
  name?: string
  signal?: AbortSignal
  onProgress?: (event: ShareProgressEvent) => void
}

export interface PeerShareResult extends ShareResult {
  /** Where the blocks went: copies per block, lookups, bytes pushed, the provider record. */
  placement: PlaceResult
  /** Wall time of the import and of the placement (ms). */
  importMs: number
  placeMs: number
}

export interface ShareComponents {
  content: Pick<ContentStore, 'shareFile' | 'shareStream' | 'dagCids'>
  placement: Pick<Placement, 'place'>
  /** The peer's repo folder: nothing in it (identity key, token, stores) is ever shared. */
  repoPath?: string
}

export async function share (components: ShareComponents, source: ShareSource, options: PeerShareOptions): Promise<PeerShareResult> {
  const { content, placement } = components
  const { signal, onProgress } = options
  const importOptions = {
    chunkSize: options.chunkSize,
    name: options.name,
    replicas: options.replicas,
    signal,
    onProgress: onProgress == null ? undefined : (bytes: number) => { onProgress({ name: 'share:imported', bytes }) }
  }
  if ('path' in source && components.repoPath != null) await refuseRepoFile(source.path, components.repoPath)
  const importStarted = performance.now()
  const imported = 'path' in source
    ? await content.shareFile(source.path, importOptions)
    : await content.shareStream(source.stream, importOptions)
  const importMs = Math.round(performance.now() - importStarted)
  const placeStarted = performance.now()
  const cids: CID[] = await content.dagCids(imported.cid, signal)
  const placed = await placement.place(imported.cid, cids, options.replicas, {
    signal,
    onProgress: onProgress == null ? undefined : (done, total) => { onProgress({ name: 'share:placed', done, total }) }
  })
  return { ...imported, placement: placed, importMs, placeMs: Math.round(performance.now() - placeStarted) }
}

/**
 * A path inside the repo (the identity key, the API token, the stores) is
 * refused, whoever asks: a share would hand its bytes to the whole network.
 * Compared by real path, so a link to the key is refused too; a path that
 * does not resolve is left to the import, which says what is wrong with it.
 */
async function refuseRepoFile (file: string, repoPath: string): Promise<void> {
  let real: string
  let repo: string
  try {
    [real, repo] = await Promise.all([fs.realpath(file), fs.realpath(repoPath)])
  } catch {
    return
  }
  const relative = path.relative(repo, real)
  if (relative === '' || (!relative.startsWith('..') && !path.isAbsolute(relative))) {
    throw new InvalidPathError(`refusing to share ${file}: it is inside the peer's repo ${repoPath} (identity key, API token, stores)`)
  }
}
