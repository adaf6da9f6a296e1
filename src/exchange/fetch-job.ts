/**
 * One download of one file DAG, shared by everyone who wants it: `shoal
 * fetch` callers (each with its own output file) and streaming readers of
 * the API. This class is the orchestration: the NodeResolver gives the
 * layout, StoredPieces what is here already, the BlockScheduler (fed by the
 * SourceFinder, over the SessionPool's streams) the rest, the OutputSet
 * sends each verified piece to the outputs or the store, and FetchSession
 * commits the "fetched" holding once every write is durable.
 *
 * Who tracks what:
 * - wanted: the scheduler's RarestFirst (each piece missing, being
 *   verified, or verified; a streaming reader's range first); FetchSession
 *   keeps every block the download counts on safe from GC.
 * - in flight: each PeerPipeline (the requests a peer owes, its rate) and
 *   XferSession (wants on its stream); the scheduler bounds the bytes asked
 *   for and not yet delivered. NodeResolver asks for DAG nodes itself.
 * - held by whom: RarestFirst counts each piece's known holders, each
 *   PeerPipeline keeps its peer's bitmap; the SourceFinder knows the root's
 *   providers and asks peers; the SessionPool holds one stream per peer.
 * - here: StoredPieces (durable, or verified and on its way); the backing
 *   output's FileBacking batches leaves until they are fsynced and recorded.
 */
import type { Logger } from '@libp2p/interface'
import type { CID } from 'multiformats/cid'
import { cidKey } from '../content/cid.ts'
import type { BufferPool } from '../content/buffer-pool.ts'
import { decodeFileNode } from '../content/dag-reader.ts'
import type { HashWorker } from '../content/hash-worker.ts'
import type { FetchSession } from '../store/fetch-session.ts'
import { InvalidDagError } from '../errors.ts'
import { mapConcurrent, raceSignal } from '../utils/wait.ts'
import { resolveLayout, type FileLayout } from './file-layout.ts'
import { FetchClock } from './fetch-timings.ts'
import type { FetchConnection, FetchOverlay, FetchStore, JobOutcome, JobProgress } from './index.ts'
import { NodeResolver } from './node-resolver.ts'
import type { OutputFile } from './output-file.ts'
import { OutputSet } from './output-set.ts'
import { BlockScheduler } from './scheduler.ts'
import { SessionPool } from './session-pool.ts'
import { SourceFinder } from './source-finder.ts'
import { StoredPieces } from './stored-pieces.ts'

/** Pieces copied at once into an output attached late. */
const COPIES_AT_ONCE = 4

export interface FetchJobComponents {
  content: FetchStore
  connection: FetchConnection
  overlay: Pick<FetchOverlay, 'planner' | 'findProviders'>
  /** Verifies blocks off the main thread. */
  hasher: Pick<HashWorker, 'digest'>
  /** Block buffers of (at least) this size, reused from fetch to fetch. */
  pools: (size: number) => BufferPool
}

export interface FetchJobInit {
  root: CID
  replicas: number
  log: Logger
}

export class FetchJob {
  readonly root: CID
  readonly outcome: Promise<JobOutcome>
  /** Called once the job ends, either way. */
  onEnded?: () => void

  private readonly components: FetchJobComponents
  private readonly init: FetchJobInit
  // the parts (see above)
  private readonly store: FetchSession
  private readonly sessions: SessionPool
  private readonly sources: SourceFinder
  private readonly nodes: NodeResolver
  private readonly outputs: OutputSet
  private readonly clock = new FetchClock()
  // known once the layout is resolved
  private readonly layoutReady = Promise.withResolvers<FileLayout>()
  private layout?: FileLayout
  /** Blocks in the DAG (nodes and raw leaves). */
  private totalBlocks = 0
  private stored?: StoredPieces
  private scheduler?: BlockScheduler
  /** Pieces here before the download, and each piece verified since with the peer that sent it, in order. */
  private here: number[] = []
  private readonly arrivals: Array<[number, string]> = []
  // lifetime: who wants it, and its end
  private readonly controller = new AbortController()
  private interest = 0
  private lingerTimer?: ReturnType<typeof setTimeout>

  constructor (components: FetchJobComponents, init: FetchJobInit) {
    this.components = components
    this.init = init
    this.root = init.root
    this.store = components.content.openFetch()
    this.store.keep(init.root)
    this.sessions = new SessionPool(components, { log: init.log, name: cidKey(init.root) })
    this.sources = new SourceFinder({ ...components, sessions: this.sessions }, {
      root: init.root, replicas: init.replicas, log: init.log, onSource: () => { this.clock.sourceFound() }
    })
    this.nodes = new NodeResolver({ content: components.content, store: this.store, sessions: this.sessions, sources: this.sources }, {
      onNode: () => { this.clock.moved() }
    })
    this.outputs = new OutputSet({ store: this.store }, { root: init.root })
    this.layoutReady.promise.catch(() => {}) // reaches every caller of fileLayout()
    this.outcome = this.run()
    this.outcome.catch(() => {}) // reaches every caller awaiting it
  }

  get signal (): AbortSignal {
    return this.controller.signal
  }

  /** When a block was last stored (performance.now()): for stall timeouts. */
  get lastProgressAt (): number {
    return this.clock.lastProgressAt
  }

  /** Someone wants this file: the job keeps running. */
  acquire (): void {
    this.interest++
    clearTimeout(this.lingerTimer)
  }

  /** Someone no longer does: with nobody left, the job stops after `lingerMs`. */
  release (lingerMs = 0): void {
    this.interest = Math.max(0, this.interest - 1)
    if (this.interest > 0) return
    clearTimeout(this.lingerTimer)
    const stop = (): void => { if (this.interest === 0) this.abort(new Error('nobody wants this fetch any more')) }
    if (lingerMs <= 0) stop()
    else { this.lingerTimer = setTimeout(stop, lingerMs); this.lingerTimer.unref() }
  }

  abort (err: Error): void {
    if (!this.controller.signal.aborted) this.controller.abort(err)
  }

  async fileLayout (signal?: AbortSignal): Promise<FileLayout> {
    return raceSignal(this.layoutReady.promise, signal)
  }

  progress (): JobProgress {
    return {
      blocks: (this.stored?.blocks ?? 0) + (this.layout?.nodes.length ?? 0),
      totalBlocks: this.totalBlocks,
      bytes: this.stored?.bytes ?? 0,
      size: this.layout?.size ?? 0,
      peers: this.scheduler?.activePeers() ?? 0
    }
  }

  /**
   * The pieces (layout order) once the layout is known: their number, those
   * here before the download (with `cursor` 0), and the arrivals from
   * `cursor` on; `next` is the cursor for the next call.
   */
  piecesSince (cursor: number): { total: number, here?: number[], arrived: Array<[number, string]>, next: number } | undefined {
    if (this.layout == null || this.stored == null) return undefined
    return {
      total: this.layout.pieces.length,
      ...(cursor === 0 ? { here: this.here } : {}),
      arrived: this.arrivals.slice(cursor),
      next: this.arrivals.length
    }
  }

  /** Fetch these pieces before any other (a streaming reader's range). */
  prioritize (from: number, to: number): void {
    this.scheduler?.prioritize(from, to)
  }

  /**
   * Writes every piece, those stored already and those to come, to `sink`.
   * The first sink attached also keeps the raw leaves that arrive (they are
   * not stored a second time in the blockstore), and those copied into it.
   */
  async attach (sink: OutputFile, signal?: AbortSignal): Promise<void> {
    const layout = await this.outputs.add(sink, this.fileLayout(signal), signal)
    const stored = this.stored!
    // pieces verified before the sink was added are copied from the store,
    // unless they are in this very file already (a resumed fetch)
    await mapConcurrent(layout.pieces.map((_, i) => i), COPIES_AT_ONCE, async i => {
      if (!stored.isVerified(i)) return
      const piece = layout.pieces[i]
      if (piece.raw && this.store.isKeptIn(piece.cid, sink.partPath, piece.offset)) return
      await stored.wait(i, signal)
      await this.outputs.copyInto(sink, piece, await this.pieceBytes(i))
    })
  }

  /** The fetch into `sink` is over: its leaves durable and recorded, the file renamed into place. */
  async complete (sink: OutputFile): Promise<void> {
    await this.outputs.complete(sink)
  }

  /**
   * `sink` is given up (its fetch failed or was cancelled). What it keeps is
   * recorded, for a resume; but when the download goes on for others, those
   * leaves go to the store, so what they end up holding does not depend on
   * a file left behind.
   */
  async detach (sink: OutputFile): Promise<void> {
    const removed = this.outputs.remove(sink)
    const stored = this.stored
    if (stored == null) { await removed; return } // no layout yet: nothing was kept
    // tracked before the flush inside remove() has finished: a download that
    // completes meanwhile must still wait for the move before it commits
    const moving = removed.then(async kept => {
      if (!kept || this.signal.aborted || this.interest <= 1) return
      await this.store.moveToStore(this.root, sink.partPath)
    })
    stored.track(moving, err => { this.abort(err) })
    await removed
  }

  /** The file bytes of piece `i`, once stored. */
  async pieceBytes (i: number): Promise<Uint8Array> {
    const piece = this.layout!.pieces[i]
    if (!piece.raw) await this.nodes.stored() // a dag-pb node may still be on its way to the store
    // verified as it is read: a block that rotted here since it was counted never reaches an output
    const block = await this.components.content.readBlock(piece.cid)
    return piece.raw ? block : decodeFileNode(piece.cid, block).data
  }

  /** Resolves once piece `i` is stored here. */
  async waitStored (i: number, signal?: AbortSignal): Promise<void> {
    if (this.stored == null) await this.fileLayout(signal)
    await this.stored!.wait(i, signal)
  }

  private async run (): Promise<JobOutcome> {
    const signal = this.controller.signal
    let failure: Error | undefined
    // start the hash worker's thread now, while the layout is resolved, not at the first block
    this.components.hasher.digest(new Uint8Array(0)).catch(() => {}) // a failed start shows at the first real digest
    try {
      const layout = await resolveLayout(this.root, async cid => this.nodes.get(cid, signal))
      const scheduler = await this.prepare(layout, signal)
      // outputs being attached open first, so the first blocks already go to
      // the file that keeps them, not to the store as well
      await raceSignal(this.outputs.opened(), signal)
      const running = scheduler.run(signal)
      if (!scheduler.done) void this.sources.run(scheduler, layout.pieces.map(p => p.cid), signal)
      await running
      // every piece is written: the last leaves are made durable now, not
      // when the backing's batch timer fires
      this.outputs.flush().catch(() => {}) // awaited through the pieces' durability
      const stored = this.stored!
      await Promise.all([this.nodes.stored(), stored.settled()])
      await this.store.commit(this.root, { size: layout.size, blocks: this.totalBlocks })
      return {
        size: layout.size,
        blocks: this.totalBlocks,
        local: stored.localBlocks + this.nodes.local,
        localBytes: stored.localBytes,
        peers: scheduler.peerReports(),
        wasted: scheduler.wasted,
        timings: this.clock.finish()
      }
    } catch (err) {
      failure = signal.aborted ? signal.reason as Error : err as Error
      this.layoutReady.reject(failure)
      this.scheduler?.stop(failure)
      throw failure
    } finally {
      failure ??= new Error('fetch ended')
      if (!signal.aborted) this.controller.abort(failure)
      this.stored?.end(failure)
      this.store.close()
      clearTimeout(this.lingerTimer)
      await this.sessions.close()
      this.onEnded?.()
    }
  }

  /** Counts what is here already (kept leaves re-hashed) and sets up the scheduler for the rest. */
  private async prepare (layout: FileLayout, signal: AbortSignal): Promise<BlockScheduler> {
    const { pieces } = layout
    this.layout = layout
    this.totalBlocks = layout.nodes.length + pieces.filter(p => p.raw).length
    for (const cid of layout.nodes) this.store.keep(cid)
    for (const p of pieces) this.store.keep(p.cid)
    await this.store.kept()
    // leaves are re-hashed before they count: one kept in a file may have
    // changed, been deleted or recreated since (a resume's .part too), a
    // block file may have rotted (it is removed, and fetched again)
    const rawAt = pieces.flatMap((p, i) => p.raw ? [i] : [])
    const found = await this.components.content.hasBlocks(rawAt.map(i => pieces[i].cid), {
      recheck: true,
      onRecheck: () => {
        signal.throwIfAborted()
        // re-hashing a big resume takes a while: that is progress, not a stall
        this.clock.moved()
      }
    })
    signal.throwIfAborted()
    const have = pieces.map(p => !p.raw)
    rawAt.forEach((i, j) => { have[i] = found[j] })
    this.stored = new StoredPieces(pieces, have)
    this.here = have.flatMap((h, i) => h ? [i] : [])
    // blocks are received into shared memory: the hash worker reads them in place
    const largest = pieces.reduce((m, p) => p.raw ? Math.max(m, p.size) : m, 1)
    const pool = this.components.pools(largest)
    this.sessions.useBuffers(pool)
    this.scheduler = new BlockScheduler({
      pieces: pieces.map(p => ({ cid: p.cid, size: p.size })),
      have,
      recycle: bytes => { pool.release(bytes) },
      verify: async (cid, bytes) => this.verify(cid, bytes),
      deliver: async (i, bytes) => { await this.deliver(i, bytes) },
      onVerified: (i, peerId) => { this.arrivals.push([i, peerId]) },
      log: this.init.log
    })
    this.layoutReady.resolve(layout)
    this.clock.layoutResolved()
    return this.scheduler
  }

  private async verify (cid: CID, bytes: Uint8Array): Promise<boolean> {
    const digest = await this.components.hasher.digest(bytes)
    return Buffer.from(digest).equals(cid.multihash.digest)
  }

  /**
   * Sends a verified piece where it goes (OutputSet). Resolves once the
   * bytes are written, so the scheduler reuses the buffer and asks for more
   * while they are made durable; the piece counts as stored (streaming
   * readers, the commit) once it is durable.
   */
  private async deliver (i: number, bytes: Uint8Array): Promise<void> {
    const stored = this.stored!
    const piece = this.layout!.pieces[i]
    if (piece.raw && bytes.length !== piece.size) {
      // the block is the CID's, so the DAG lies about it: no byte of it lands anywhere
      throw new InvalidDagError(`leaf ${cidKey(piece.cid)} of ${cidKey(this.root)} holds ${bytes.length} bytes, the DAG says ${piece.size}`)
    }
    stored.verify(i)
    const { durable } = await this.outputs.deliver(piece, bytes)
    this.clock.blockWritten()
    stored.written(i, durable, err => { this.abort(err) })
  }
}
