/**
 * Sharing a file, a use case of the peer:
 *
 * ```
 *  source (a path, or bytes as a stream)
 *    |  import: ContentStore cuts it into chunks, builds the UnixFS DAG,
 *    |  stores every block and holds the root as "shared"
 *    |     |  each block, as soon as it is stored
 *    |     v
 *    |  place (at the same time): Placement pushes each block to its k
 *    v  responsible peers; once the import is done, announces the root
 *  result
 * ```
 *
 * The share ends about when its last block is both imported and placed.
 * Progress comes as typed events through `options.onProgress`, both phases
 * in each: bytes imported, block copies placed of those planned so far.
 */
import fs from 'node:fs/promises'
import path from 'node:path'
import type { CID } from 'multiformats/cid'
import type { PlacedCopy } from '../placement/place-stream.ts'
import type { Placement, PlaceResult } from '../placement/placement.ts'
import type { ContentStore, ShareResult } from '../store/content-store.ts'
import { InvalidPathError } from '../store/errors.ts'

/** What to share: a file this process can read, or its bytes. */
export type ShareSource = { path: string } | { stream: AsyncIterable<Uint8Array> }

/** Where a share is: bytes imported, and block copies acknowledged (`done`) of those planned so far (`total`). */
export interface ShareProgress {
  bytes: number
  done: number
  total: number
  /** The import is over (its bytes are final; `total` grows no more once the last block is planned). */
  imported: boolean
}

export type ShareProgressEvent =
  /** More of the source imported. */
  | ({ name: 'share:imported' } & ShareProgress)
  /** One more block copy answered by the peer it was offered to (`copy`: which block, which peer, held there now or refused). */
  | ({ name: 'share:placed', copy: PlacedCopy } & ShareProgress)

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
  /** Wall time of the import (ms), and how much longer the placement ran after it (ms: placement runs during the import). */
  importMs: number
  placeMs: number
}

export interface ShareComponents {
  content: Pick<ContentStore, 'shareFile' | 'shareStream'>
  placement: Pick<Placement, 'stream'>
  /** The peer's repo folder: nothing in it (identity key, token, stores) is ever shared. */
  repoPath?: string
}

export async function share (components: ShareComponents, source: ShareSource, options: PeerShareOptions): Promise<PeerShareResult> {
  const { content, placement } = components
  const { signal, onProgress } = options
  const state: ShareProgress = { bytes: 0, done: 0, total: 0, imported: false }
  const placing = placement.stream(options.replicas, {
    signal,
    onProgress: onProgress == null
      ? undefined
      : (done, total, copy) => {
          state.done = done
          state.total = total
          onProgress({ name: 'share:placed', copy, ...state })
        }
  })
  const importOptions = {
    chunkSize: options.chunkSize,
    name: options.name,
    replicas: options.replicas,
    signal,
    onBlock: (cid: CID, size: number) => { placing.add(cid, size) },
    onProgress: onProgress == null
      ? undefined
      : (bytes: number) => {
          state.bytes = bytes
          onProgress({ name: 'share:imported', ...state })
        }
  }
  const started = performance.now()
  let imported: ShareResult
  try {
    if ('path' in source && components.repoPath != null) await refuseRepoFile(source.path, components.repoPath)
    imported = 'path' in source
      ? await content.shareFile(source.path, importOptions)
      : await content.shareStream(source.stream, importOptions)
  } catch (err) {
    placing.abort(err as Error)
    throw err
  }
  const importMs = Math.round(performance.now() - started)
  state.imported = true
  onProgress?.({ name: 'share:imported', ...state })
  const placed = await placing.finish(imported.cid)
  // placement ran beside the import: its time is what it added after the import ended
  return { ...imported, placement: placed, importMs, placeMs: Math.round(performance.now() - started) - importMs }
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
