/**
 * The exchange: fetching files from the peers that hold their blocks, and
 * serving blocks to fetchers, over /shoal/xfer/1.0.0.
 *
 * ```
 *  Fetcher (fetcher.ts)   one FetchJob per root, output files, stall timeouts, API streams
 *    '-- FetchJob (fetch-job.ts)   one download, shared by every caller of that root
 *          |-- NodeResolver    the DAG's nodes -> FileLayout (file-layout.ts)
 *          |-- SourceFinder    peers at hand, then the overlay: who holds which piece
 *          |-- SessionPool     one XferSession (xfer-client.ts) per peer
 *          |-- BlockScheduler  (scheduler.ts) RarestFirst picks, a PeerPipeline per peer
 *          |-- OutputSet       the output files (output-file.ts); FileBacking keeps the leaves
 *          |-- StoredPieces    what is durable here; streaming readers wait on it
 *          '-- FetchSession    (store/fetch-session.ts) blocks stored, kept from GC, committed
 *  XferServer (xfer-server.ts)   answers have lists and wants, paced by UploadLimiter
 * ```
 *
 * The fetch reaches the network only through the components below: the
 * libp2p node for streams and the overlay for the peers responsible for
 * blocks and for provider records.
 */
import type { ComponentLogger, Libp2p } from '@libp2p/interface'
import type { Overlay } from '../routing/index.ts'
import type { ContentStore } from '../store/content-store.ts'
import type { FetchTimings } from './fetch-timings.ts'
import type { OutputFileSystem } from './output-file.ts'
import type { PeerReport } from './peer-pipeline.ts'

/** What the fetch needs of the libp2p node: who this peer is, whom it is connected to, new streams. */
export type FetchConnection = Pick<Libp2p, 'peerId' | 'getPeers' | 'dialProtocol'>

/** What the fetch needs of the overlay: the peers responsible for keys, and the root's provider records. */
export type FetchOverlay = Pick<Overlay, 'planner' | 'provide' | 'findProviders'>

/** What the fetch needs of the content store: blocks already here, and a session that stores what arrives. */
export type FetchStore = Pick<ContentStore, 'openFetch' | 'hasBlocks' | 'readBlock'>

export interface FetcherComponents {
  content: FetchStore
  connection: FetchConnection
  overlay: FetchOverlay
  logger: ComponentLogger
  /** How output files are opened (default: node:fs/promises). */
  files?: OutputFileSystem
}

export interface FetcherInit {
  /** The replication factor: a block nobody at hand holds is asked of its 2 × replicas responsible peers (default DEFAULT_REPLICAS). */
  replicas?: number
}

/** How far a download is. */
export interface JobProgress {
  blocks: number
  totalBlocks: number
  bytes: number
  size: number
  /** Peers with requests outstanding now. */
  peers: number
}

/** What a finished download did. */
export interface JobOutcome {
  size: number
  /** Blocks in the DAG, and how many were already here. */
  blocks: number
  local: number
  /** File bytes that were already here. */
  localBytes: number
  peers: Record<string, PeerReport>
  /** Bytes received twice (endgame races, answers already cancelled). */
  wasted: number
  timings: FetchTimings
}

export { Fetcher } from './fetcher.ts'
export type { FetchOptions, FetchProgress, FetchResult, FetchStream } from './fetcher.ts'
export type { FetchTimings }
