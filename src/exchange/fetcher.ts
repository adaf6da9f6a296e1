/**
 * Fetching files from the swarm: `shoal fetch` (into an output file, which
 * then keeps the file's leaves, or else into the store) and streaming reads
 * for the API. One FetchJob
 * per root at a time, shared by everyone who wants that file, so a stream
 * and a fetch of the same CID download each block once. A finished fetch
 * holds the file as "fetched" and announces this peer as a provider (in
 * the background: the caller does not wait for the DHT).
 *
 * `timeoutMs` is a stall timeout: the fetch fails when no block has arrived
 * for that long (no holder found, or every holder silent), however long
 * the whole download takes.
 */
import type { Logger } from '@libp2p/interface'
import type { CID } from 'multiformats/cid'
import { cidKey } from '../content/cid.ts'
import { BufferPool } from '../content/buffer-pool.ts'
import { HashWorker } from '../content/hash-worker.ts'
import { DEFAULT_REPLICAS } from '../constants.ts'
import { TimeoutError } from '../errors.ts'
import { asTimeout } from '../utils/timeouts.ts'
import { ContentNotFoundError } from '../store/errors.ts'
import { fetchDagLayout, type DagLayout } from './dag-layout.ts'
import { FetchJob } from './fetch-job.ts'
import type { FetchTimings } from './fetch-timings.ts'
import { pieceAt } from './file-layout.ts'
import type { FetcherComponents, FetcherInit, JobProgress } from './index.ts'
import { nodeFileSystem, OutputFile, type OutputFileSystem } from './output-file.ts'
import type { PeerReport } from './peer-pipeline.ts'

export interface FetchOptions {
  signal?: AbortSignal
  /** Fail when no block has arrived for this long (ms, default 60 s). */
  timeoutMs?: number
  /** Also write the file here (absolute path), through a temporary file renamed when complete. */
  output?: { path: string, force?: boolean }
  /** Called every PROGRESS_MS while it runs, and once more as it ends (the last pieces' arrivals). */
  onProgress?: (progress: FetchProgress) => void
}

export interface FetchProgress extends JobProgress {
  /** Bytes per second over the last few seconds. */
  rate: number
  /** Seconds left at that rate, when known. */
  eta?: number
  /**
   * The file's pieces, once its layout is known: `total`, `here` (those
   * held before, in the first report only) and `arrived`: [piece, peer ID]
   * of each piece verified since the previous report.
   */
  pieces?: { total: number, here?: number[], arrived: Array<[number, string]> }
}

export interface FetchResult {
  cid: string
  path?: string
  size: number
  blocks: number
  /** Blocks that were already here (a resumed or repeated fetch). */
  local: number
  localBytes: number
  /** Bytes received from each peer. */
  peers: Record<string, number>
  /** Per peer: bytes, blocks, measured rate (bytes/s), and why it was dropped if it was. */
  sources: Record<string, PeerReport>
  /** Bytes received twice (endgame races). */
  wasted: number
  seconds: number
  /** When the download reached its steps, and its CPU time (FetchTimings). */
  timings: FetchTimings
}

/** A file being read as it downloads. */
export interface FetchStream {
  size: number
  read: (offset: number, length: number) => AsyncGenerator<Uint8Array>
  /** The reader is done; the download goes on for STREAM_LINGER_MS in case it comes back (players do). */
  close: () => void
}

const DEFAULT_TIMEOUT_MS = 60_000
const PROGRESS_MS = 250
/** Window the progress rate is measured over. */
const RATE_WINDOW_MS = 3_000
const STREAM_LINGER_MS = 30_000
const ANNOUNCE_TIMEOUT_MS = 60_000
/** Idle block buffers kept per size, in bytes. */
const POOLED_BYTES = 32 * 1024 * 1024

export class Fetcher {
  private readonly components: FetcherComponents
  private readonly replicas: number
  private readonly log: Logger
  private readonly files: OutputFileSystem
  private readonly jobs = new Map<string, FetchJob>()
  private readonly hasher = new HashWorker()
  /** Block buffers by size, shared by every fetch: fresh ones cost page faults. */
  private readonly pools = new Map<number, BufferPool>()
  private readonly background = new Set<Promise<void>>()
  private readonly closing = new AbortController()

  constructor (components: FetcherComponents, init: FetcherInit = {}) {
    this.components = components
    this.replicas = init.replicas ?? DEFAULT_REPLICAS
    this.log = components.logger.forComponent('shoal:fetch')
    this.files = components.files ?? nodeFileSystem
  }

  async fetch (root: CID, options: FetchOptions = {}): Promise<FetchResult> {
    const started = performance.now()
    const timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS
    const out = options.output != null ? await OutputFile.prepare(options.output.path, cidKey(root), options.output.force === true, this.files) : undefined
    const job = this.jobFor(root)
    job.acquire()
    const watch = this.watch(job, timeoutMs, options)
    let finished = false
    try {
      if (out != null) await Promise.race([job.attach(out, watch.signal), watch.failed])
      const outcome = await Promise.race([job.outcome, watch.failed])
      if (out != null) await job.complete(out)
      finished = true
      this.announceLater(root)
      const peers: Record<string, number> = {}
      const sources = outcome.peers
      for (const [id, report] of Object.entries(sources)) if (report.bytes > 0) peers[id] = report.bytes
      return {
        cid: cidKey(root),
        ...(out != null ? { path: out.target } : {}),
        size: outcome.size,
        blocks: outcome.blocks,
        local: outcome.local,
        localBytes: outcome.localBytes,
        peers,
        sources,
        wasted: outcome.wasted,
        timings: outcome.timings,
        seconds: (performance.now() - started) / 1000
      }
    } catch (err) {
      // a lookup or dial that gave up below is a timeout, as the stall deadline is
      throw asTimeout(err, `fetching ${cidKey(root)}`)
    } finally {
      watch.stop()
      if (out != null && !finished) {
        await job.detach(out)
        await out.abandon()
      }
      job.release(0)
    }
  }

  /**
   * The DAG's nodes and leaves of `root` without its leaves' bytes, from
   * the peers that hold it (dag-layout.ts); ContentNotFoundError when
   * nobody answers within `timeoutMs` (default DEFAULT_TIMEOUT_MS).
   */
  async layout (root: CID, options: { signal?: AbortSignal, timeoutMs?: number } = {}): Promise<DagLayout> {
    const signal = options.signal != null ? AbortSignal.any([options.signal, this.closing.signal]) : this.closing.signal
    try {
      return await fetchDagLayout(this.components, root, { replicas: this.replicas, log: this.log, timeoutMs: options.timeoutMs ?? DEFAULT_TIMEOUT_MS, signal })
    } catch (err) {
      throw asTimeout(err, `resolving ${cidKey(root)}`)
    }
  }

  /** Opens a file for reading while it downloads (the requested range is fetched first). */
  async stream (root: CID, signal?: AbortSignal): Promise<FetchStream> {
    const job = this.jobFor(root)
    job.acquire()
    const watch = this.watch(job, DEFAULT_TIMEOUT_MS, { signal })
    let closed = false
    const close = (): void => {
      if (closed) return
      closed = true
      watch.stop()
      job.release(STREAM_LINGER_MS)
    }
    try {
      const layout = await Promise.race([job.fileLayout(watch.signal), watch.failed])
      const read = async function * (offset: number, length: number): AsyncGenerator<Uint8Array> {
        if (length <= 0) return
        const end = offset + length
        const first = pieceAt(layout.pieces, offset)
        const last = pieceAt(layout.pieces, end - 1)
        job.prioritize(first, last + 1)
        for (let i = first; i <= last; i++) {
          await Promise.race([job.waitStored(i, watch.signal), watch.failed])
          const piece = layout.pieces[i]
          const bytes = await job.pieceBytes(i)
          const from = Math.max(0, offset - piece.offset)
          const to = Math.min(piece.size, end - piece.offset)
          if (to > from) yield bytes.subarray(from, to)
        }
      }
      return { size: layout.size, read, close }
    } catch (err) {
      close()
      throw err
    }
  }

  async stop (): Promise<void> {
    this.closing.abort(new Error('the peer is stopping'))
    for (const job of this.jobs.values()) job.abort(new Error('the peer is stopping'))
    await Promise.all([...this.jobs.values()].map(async job => { await job.outcome.catch(() => {}) }))
    await Promise.all(this.background)
    await this.hasher.close()
  }

  private poolFor (size: number): BufferPool {
    // one pool per power of two: files of other chunk sizes share it
    const rounded = 2 ** Math.ceil(Math.log2(Math.max(size, 64 * 1024)))
    let pool = this.pools.get(rounded)
    if (pool == null) {
      pool = new BufferPool(rounded, Math.max(2, Math.floor(POOLED_BYTES / rounded)))
      this.pools.set(rounded, pool)
    }
    return pool
  }

  private jobFor (root: CID): FetchJob {
    const key = cidKey(root)
    let job = this.jobs.get(key)
    if (job == null || job.signal.aborted) {
      const created = new FetchJob({
        ...this.components,
        hasher: this.hasher,
        pools: size => this.poolFor(size)
      }, { root, replicas: this.replicas, log: this.log })
      created.onEnded = () => { if (this.jobs.get(key) === created) this.jobs.delete(key) }
      this.jobs.set(key, created)
      job = created
    }
    return job
  }

  /**
   * Reports progress and enforces the stall timeout for one caller: `failed`
   * rejects (and `signal` aborts) when nothing arrives for `timeoutMs` or the
   * caller's signal fires.
   */
  private watch (job: FetchJob, timeoutMs: number, options: Pick<FetchOptions, 'signal' | 'onProgress'>): { signal: AbortSignal, failed: Promise<never>, stop: () => void } {
    const controller = new AbortController()
    const failed = Promise.withResolvers<never>()
    failed.promise.catch(() => {})
    const fail = (err: Error): void => {
      if (controller.signal.aborted) return
      controller.abort(err)
      failed.reject(err)
    }
    const samples: Array<{ at: number, bytes: number }> = []
    let cursor = 0
    const report = (now: number, progress: JobProgress, onProgress: (progress: FetchProgress) => void): void => {
      samples.push({ at: now, bytes: progress.bytes })
      while (samples.length > 2 && now - samples[0].at > RATE_WINDOW_MS) samples.shift()
      const first = samples[0]
      const rate = now > first.at ? (progress.bytes - first.bytes) / ((now - first.at) / 1000) : 0
      const found = job.piecesSince(cursor)
      let pieces: FetchProgress['pieces']
      if (found != null) {
        const { next, ...rest } = found
        cursor = next
        pieces = rest
      }
      onProgress({
        ...progress,
        rate: Math.round(rate),
        ...(rate > 0 && progress.size > 0 ? { eta: Math.round((progress.size - progress.bytes) / rate) } : {}),
        ...(pieces != null ? { pieces } : {})
      })
    }
    // the stall deadline has a timer of its own, set for the moment it falls
    // due (and set again when the download moved meanwhile), so a timeout
    // of S seconds gives up at S seconds, not at the next progress tick
    let stallTimer: ReturnType<typeof setTimeout> | undefined
    const checkStall = (): void => {
      const now = performance.now()
      const due = job.lastProgressAt + timeoutMs
      if (now < due) {
        stallTimer = setTimeout(checkStall, Math.ceil(due - now))
        stallTimer.unref()
        return
      }
      const progress = job.progress()
      const seconds = Math.round(timeoutMs / 1000)
      fail(progress.size === 0 && progress.totalBlocks === 0
        ? new ContentNotFoundError(`no holder of ${cidKey(job.root)} answered within ${seconds} s`)
        : new TimeoutError(`no holder sent a block of ${cidKey(job.root)} for ${seconds} s (${progress.totalBlocks - progress.blocks} of ${progress.totalBlocks} blocks missing)`))
    }
    checkStall()
    const timer = setInterval(() => {
      if (options.onProgress != null) report(performance.now(), job.progress(), options.onProgress)
    }, PROGRESS_MS)
    timer.unref()
    const onAbort = (): void => { fail(options.signal?.reason as Error ?? new Error('aborted')) }
    options.signal?.addEventListener('abort', onAbort, { once: true })
    if (options.signal?.aborted === true) onAbort()
    const onClosing = (): void => { fail(this.closing.signal.reason as Error) }
    this.closing.signal.addEventListener('abort', onClosing, { once: true })
    return {
      signal: controller.signal,
      failed: failed.promise,
      stop: () => {
        clearInterval(timer)
        clearTimeout(stallTimer)
        // the pieces that arrived since the last report
        if (options.onProgress != null) report(performance.now(), job.progress(), options.onProgress)
        options.signal?.removeEventListener('abort', onAbort)
        this.closing.signal.removeEventListener('abort', onClosing)
      }
    }
  }

  private announceLater (root: CID): void {
    if (this.components.connection.getPeers().length === 0) return
    const task = (async () => {
      try {
        const signal = AbortSignal.any([this.closing.signal, AbortSignal.timeout(ANNOUNCE_TIMEOUT_MS)])
        await this.components.overlay.provide(root, { signal })
      } catch (err) {
        this.log('announcing %s failed: %s', root, (err as Error).message)
      }
    })()
    this.background.add(task)
    void task.finally(() => this.background.delete(task))
  }
}
