/**
 * One download of one file DAG, shared by everyone who wants it: `shoal
 * fetch` callers (each with its own output file) and streaming readers of
 * the API. It finds sources, resolves the DAG's layout, runs the block
 * scheduler, and writes every verified block to every attached output file;
 * the first output file keeps the raw leaves (file-backing.ts), and what no
 * output keeps (DAG nodes, leaves of a fetch without one) goes to the
 * blockstore, so this peer serves every block to others within moments.
 *
 * Sources: the root's provider records, the 2k closest peers of each block
 * (where placement put them), and a few connected peers; each is asked
 * once, with one have list, which of the needed blocks it holds. Blocks
 * nobody was found to hold are asked about again every REFRESH_MS.
 */
import type { Logger } from '@libp2p/interface'
import type { CID } from 'multiformats/cid'
import { cidKey, matchesCid } from '../content/cid.ts'
import type { BufferPool } from '../content/buffer-pool.ts'
import { decodeFileNode } from '../content/dag-reader.ts'
import type { HashWorker } from '../content/hash-worker.ts'
import type { ResponsiblePlanner } from '../routing/index.ts'
import type { ShoalNode } from '../routing/libp2p.ts'
import type { ContentStore, FetchSession } from '../store/content-store.ts'
import { ContentNotFoundError } from '../store/errors.ts'
import { mapConcurrent, raceSignal, sleep } from '../utils/wait.ts'
import { resolveLayout, type FileLayout } from './file-layout.ts'
import { FileBacking } from './file-backing.ts'
import type { OutputFile } from './output-file.ts'
import { BlockScheduler, type PeerReport } from './scheduler.ts'
import { XferSession } from './xfer-client.ts'

/** Provider records looked for. */
const MAX_PROVIDERS = 20
/** Connected peers asked first, before any DHT lookup (a have list costs ~36 bytes per block). */
const MAX_CONNECTED_ASKED = 20
/** Sources asked at once. */
const SOURCES_AT_ONCE = 8
/** How often blocks without a known holder are asked about again. */
const REFRESH_MS = 2_000
/** How long peers at hand get to say whether they hold a DAG node. */
const HAVE_AT_HAND_MS = 2_000
/** One try at a DAG node from one peer. */
const NODE_TRY_MS = 10_000

export interface FetchJobInit {
  root: CID
  node: ShoalNode
  content: ContentStore
  planner: () => ResponsiblePlanner
  replicas: number
  hasher: HashWorker
  /** Block buffers of (at least) this size, reused from fetch to fetch. */
  pools: (size: number) => BufferPool
  log: Logger
}

export interface JobProgress {
  blocks: number
  totalBlocks: number
  bytes: number
  size: number
  /** Peers with requests outstanding now. */
  peers: number
}

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

/**
 * Milliseconds from the start of the job: layout resolved, first source
 * found, first and last block stored; and `cpuMs`, the CPU time of this
 * daemon's process (every thread) while the job ran, whatever else it did
 * meanwhile (serving others counts too).
 */
export interface FetchTimings {
  layoutMs: number
  firstSourceMs?: number
  firstBlockMs?: number
  lastBlockMs?: number
  cpuMs?: number
}

export class FetchJob {
  readonly root: CID
  private readonly init: FetchJobInit
  private readonly controller = new AbortController()
  private readonly sessions = new Map<string, Promise<XferSession>>()
  private readonly providers = new Set<string>()
  private readonly sinks = new Set<OutputFile>()
  /** The output file that keeps this fetch's raw leaves (the first attached), instead of the blockstore. */
  private backing?: FileBacking
  private readonly download: FetchSession
  private layout?: FileLayout
  private readonly layoutReady = Promise.withResolvers<FileLayout>()
  private scheduler?: BlockScheduler
  private stored?: Uint8Array
  private storedBytes = 0
  private storedBlocks = 0
  private localBlocks = 0
  private changed: Array<() => void> = []
  private interest = 0
  private lingerTimer?: ReturnType<typeof setTimeout>
  private failure?: Error
  /** When a block was last stored (performance.now()): for stall timeouts. */
  lastProgressAt = performance.now()
  readonly outcome: Promise<JobOutcome>
  /** Called once the job ends, either way. */
  onEnded?: () => void

  constructor (init: FetchJobInit) {
    this.init = init
    this.root = init.root
    this.download = init.content.openFetch()
    this.download.keep(init.root)
    this.layoutReady.promise.catch(() => {})
    this.outcome = this.run()
    this.outcome.catch(() => {})
  }

  get signal (): AbortSignal {
    return this.controller.signal
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
      blocks: this.storedBlocks + (this.layout?.nodes.length ?? 0),
      totalBlocks: this.totalBlocks,
      bytes: this.storedBytes,
      size: this.layout?.size ?? 0,
      peers: this.scheduler?.activePeers() ?? 0
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
    const opened = Promise.withResolvers<void>()
    this.opening.add(opened.promise)
    let layout: FileLayout
    try {
      layout = await this.fileLayout(signal)
      await sink.open(layout.size)
      if (signal?.aborted === true) {
        // given up while it opened (the caller may have abandoned it already): close it here, it must not become this job's
        await sink.abandon()
        signal.throwIfAborted()
      }
      this.sinks.add(sink)
      if (this.backing == null && layout.pieces.some(p => p.raw)) {
        this.backing = new FileBacking({ root: this.root, sink, record: this.download.keepInFile })
      }
    } finally {
      this.opening.delete(opened.promise)
      opened.resolve()
    }
    // pieces verified before the sink was added are copied from the store,
    // unless they are in this very file already (a resumed fetch)
    const fileLeaves = this.init.content.fileLeaves
    await mapConcurrent(layout.pieces.map((_, i) => i), 4, async i => {
      if (!this.isVerified(i)) return
      const piece = layout.pieces[i]
      if (piece.raw && fileLeaves.isKeptAt(piece.cid, sink.partPath, piece.offset)) return
      await this.waitStored(i, signal)
      await sink.write(piece.offset, await this.pieceBytes(i))
      if (piece.raw && this.backing?.sink === sink) {
        const adding = this.backing.add({ cid: piece.cid, offset: piece.offset, size: piece.size })
        adding.catch(() => {}) // made durable by complete(); a failure surfaces there
      }
    })
  }

  /** The fetch into `sink` is over: its leaves durable and recorded, the file renamed into place. */
  async complete (sink: OutputFile): Promise<void> {
    const backing = this.backing?.sink === sink ? this.backing : undefined
    if (backing != null) {
      this.backing = undefined
      await backing.flush()
    }
    this.sinks.delete(sink)
    await sink.finish()
    // also for a sink that did not keep leaves now: it may have, in an earlier, interrupted fetch
    await this.download.fileRenamed(this.root, sink.partPath, sink.target)
  }

  /**
   * `sink` is given up (its fetch failed or was cancelled). What it keeps is
   * recorded, for a resume; but when the download goes on for others, those
   * leaves go to the store, so what they end up holding does not depend on
   * a file left behind.
   */
  async detach (sink: OutputFile): Promise<void> {
    this.sinks.delete(sink)
    if (this.backing?.sink !== sink) return
    const backing = this.backing
    this.backing = undefined
    await backing.flush().catch(() => {})
    if (this.signal.aborted || this.interest <= 1) return
    const moving = this.download.moveToStore(this.root, sink.partPath)
    this.leafStores.add(moving)
    moving.then(() => { this.leafStores.delete(moving) }, (err: unknown) => { this.abort(err as Error) })
  }

  /** The file bytes of piece `i`, once stored. */
  async pieceBytes (i: number): Promise<Uint8Array> {
    const piece = this.layout!.pieces[i]
    if (!piece.raw) await Promise.all(this.nodeStores) // a dag-pb node may still be on its way to the store
    const block = await this.init.content.readBlock(piece.cid, { verify: false })
    return piece.raw ? block : decodeFileNode(piece.cid, block).data
  }

  /** Resolves once piece `i` is stored here. */
  async waitStored (i: number, signal?: AbortSignal): Promise<void> {
    while (this.stored?.[i] !== 1) {
      if (this.failure != null) throw this.failure
      signal?.throwIfAborted()
      await raceSignal(new Promise<void>(resolve => { this.changed.push(resolve) }), signal)
    }
  }

  private isVerified (i: number): boolean {
    return this.stored?.[i] === 1 || this.verifiedPieces.has(i)
  }

  private readonly verifiedPieces = new Set<number>()

  private notify (): void {
    const waiting = this.changed
    this.changed = []
    for (const wake of waiting) wake()
  }

  private async run (): Promise<JobOutcome> {
    const signal = this.controller.signal
    // start the hash worker now (~100 ms), while the layout is resolved, not at the first block
    this.init.hasher.digest(new Uint8Array(0)).catch(() => {})
    try {
      const layout = await resolveLayout(this.root, async cid => this.getNode(cid, signal))
      this.layout = layout
      this.totalBlocks = layout.nodes.length + layout.pieces.filter(p => p.raw).length
      for (const cid of layout.nodes) this.download.keep(cid)
      const { pieces } = layout
      for (const p of pieces) this.download.keep(p.cid)
      await this.download.kept()
      // leaves kept in files are re-hashed before they count: the file may
      // have changed, been deleted or recreated since (a resume's .part too)
      const rawAt = pieces.flatMap((p, i) => p.raw ? [i] : [])
      const found = await this.init.content.hasBlocks(rawAt.map(i => pieces[i].cid), {
        recheck: true,
        onRecheck: () => {
          signal.throwIfAborted()
          // re-hashing a big resume takes a while: that is progress, not a stall
          this.lastProgressAt = performance.now()
        }
      })
      signal.throwIfAborted()
      const have = pieces.map(p => !p.raw)
      rawAt.forEach((i, j) => { have[i] = found[j] })
      this.stored = new Uint8Array(pieces.length)
      have.forEach((h, i) => {
        if (!h) return
        this.stored![i] = 1
        if (pieces[i].raw) { this.storedBlocks++; this.localBlocks++; this.localBytes += pieces[i].size }
        this.storedBytes += pieces[i].size
      })
      this.localBlocks += this.localNodes
      // blocks are joined into shared memory: the hash worker reads them in place
      const largest = pieces.reduce((m, p) => p.raw ? Math.max(m, p.size) : m, 1)
      const pool = this.init.pools(largest)
      this.pool = pool
      const scheduler = new BlockScheduler({
        pieces: pieces.map(p => ({ cid: p.cid, size: p.size })),
        have,
        recycle: bytes => { pool.release(bytes) },
        verify: async (cid, bytes) => this.verify(cid, bytes),
        deliver: async (i, bytes) => { await this.deliver(i, bytes) },
        log: this.init.log
      })
      this.scheduler = scheduler
      this.layoutReady.resolve(layout)
      this.lastProgressAt = performance.now()
      this.timings.layoutMs = Math.round(this.lastProgressAt - this.startedAt)
      // outputs being attached open first, so the first blocks already go to
      // the file that keeps them, not to the store as well
      await raceSignal(Promise.all(this.opening), signal)
      const running = scheduler.run(signal)
      if (!scheduler.done) void this.findSources(layout, scheduler, signal)
      await running
      // every piece is written: the last leaves are made durable now, not
      // when the backing's batch timer fires (250 ms, most of a small fetch)
      this.backing?.flush().catch(() => {}) // awaited through leafStores
      const blocks = this.totalBlocks
      await Promise.all([...this.nodeStores, ...this.leafStores])
      await this.download.commit(this.root, { size: layout.size, blocks })
      const cpu = process.cpuUsage(this.cpuAtStart)
      this.timings.cpuMs = Math.round((cpu.user + cpu.system) / 1000)
      return { size: layout.size, blocks, local: this.localBlocks, localBytes: this.localBytes, peers: scheduler.peerReports(), wasted: scheduler.wasted, timings: this.timings }
    } catch (err) {
      const error = signal.aborted ? signal.reason as Error : err as Error
      this.failure = error
      this.layoutReady.reject(error)
      this.scheduler?.stop(error)
      throw error
    } finally {
      this.failure ??= new Error('fetch ended')
      if (!signal.aborted) this.controller.abort(this.failure)
      this.notify()
      this.download.close()
      clearTimeout(this.lingerTimer)
      await Promise.all([...this.sessions.values()].map(async s => { await (await s.catch(() => undefined))?.close() }))
      this.onEnded?.()
    }
  }

  private localNodes = 0
  /** Blocks in the DAG (nodes and raw leaves), once the layout is known. */
  private totalBlocks = 0
  /** DAG nodes being written to the store. */
  private readonly nodeStores: Array<Promise<void>> = []
  /** Outputs being attached: the download waits for them to open. */
  private readonly opening = new Set<Promise<void>>()
  /** Leaves written and not yet durable in the store. */
  private readonly leafStores = new Set<Promise<void>>()
  /** Block buffers of this file's leaf size, once the layout is known. */
  private pool?: BufferPool
  private readonly startedAt = performance.now()
  private readonly cpuAtStart = process.cpuUsage()
  private readonly timings: FetchTimings = { layoutMs: 0 }
  private localBytes = 0

  private async verify (cid: CID, bytes: Uint8Array): Promise<boolean> {
    const digest = await this.init.hasher.digest(bytes)
    return Buffer.from(digest).equals(cid.multihash.digest)
  }

  /**
   * Writes a verified piece to every output and, unless the backing output
   * keeps it, to the store. Resolves once the bytes are written, so the
   * scheduler reuses the buffer and asks for more while they are made
   * durable; the piece counts as stored (streaming readers, the commit)
   * once it is durable.
   */
  private async deliver (i: number, bytes: Uint8Array): Promise<void> {
    const piece = this.layout!.pieces[i]
    this.verifiedPieces.add(i)
    const backing = piece.raw ? this.backing : undefined
    const writes = [...this.sinks].map(async sink => { await sink.write(piece.offset, bytes) })
    const storing = backing == null ? this.download.storeBlock(piece.cid, bytes, { verified: true }) : undefined
    await Promise.all([...writes, storing])
    let durable: Promise<void>
    if (backing != null && backing === this.backing) {
      durable = backing.add({ cid: piece.cid, offset: piece.offset, size: piece.size })
    } else {
      // the backing output was given up meanwhile: the store keeps it after all
      const { stored } = await (storing ?? this.download.storeBlock(piece.cid, bytes, { verified: true }))
      durable = stored
    }
    this.pieceWritten()
    const done = durable.then(() => { this.pieceStored(i) })
    this.leafStores.add(done)
    done.then(() => { this.leafStores.delete(done) }, (err: unknown) => { this.abort(err as Error) })
  }

  /** A piece verified and written: the fetch moves (stall timeout, timings). */
  private pieceWritten (): void {
    this.lastProgressAt = performance.now()
    this.timings.firstBlockMs ??= Math.round(this.lastProgressAt - this.startedAt)
    this.timings.lastBlockMs = Math.round(this.lastProgressAt - this.startedAt)
  }

  /** A piece durable here: it counts in the progress (what a resume keeps) and readers may have it. */
  private pieceStored (i: number): void {
    this.verifiedPieces.delete(i)
    this.stored![i] = 1
    this.storedBlocks++
    this.storedBytes += this.layout!.pieces[i].size
    this.notify()
  }

  /** A dag-pb node (or a raw root): from the store, else from whoever may hold it. */
  private async getNode (cid: CID, signal: AbortSignal): Promise<Uint8Array> {
    this.download.keep(cid)
    await this.download.kept()
    // recheck: a raw root may be a leaf kept in a file the user deleted since
    if (await this.init.content.hasBlock(cid, { recheck: true })) {
      this.localNodes++
      return this.init.content.readBlock(cid)
    }
    const tried = new Set<string>()
    // while the DHT finds the node's closest peers, ask those at hand
    // (providers found so far, connected peers) with one have query each
    while (true) {
      signal.throwIfAborted()
      const atHand = [...new Set([...this.providers, ...this.connectedPeers().slice(0, MAX_CONNECTED_ASKED)])]
        .filter(p => p !== this.selfId && !tried.has(p))
      const holder = await this.firstHolder(cid, atHand, signal)
      // the DHT (closest peers, provider records) only when nobody at hand has it
      let candidates = [holder ?? '']
      if (holder == null) {
        this.discoverProviders(signal)
        const plan = await this.init.planner().plan([cid.multihash.bytes], 2 * this.init.replicas, { signal })
        candidates = [...new Set([...plan.responsible[0], ...this.providers, ...this.connectedPeers()])].filter(p => p !== this.selfId && !tried.has(p))
      }
      if (candidates.length === 0 && tried.size === 0 && this.init.node.getPeers().length === 0) {
        throw new ContentNotFoundError(`${cidKey(cid)} is not held here and no peer is connected to fetch it from`)
      }
      for (const peer of candidates) {
        tried.add(peer)
        try {
          const session = await this.session(peer, signal)
          const bytes = await raceSignal(session.want(cid), AbortSignal.any([signal, AbortSignal.timeout(NODE_TRY_MS)]))
          if (bytes == null) continue
          if (!matchesCid(cid, bytes)) {
            this.dropSession(peer, 'sent a block that does not match its CID')
            continue
          }
          // stored in the background (an fsync must not hold up the layout); waited for before the commit
          const storing = this.download.storeBlock(cid, bytes, { verified: true }).then(async s => { await s.stored })
          storing.catch(() => {})
          this.nodeStores.push(storing)
          this.lastProgressAt = performance.now()
          return bytes
        } catch (err) {
          signal.throwIfAborted()
          this.dropSession(peer, (err as Error).message)
        }
      }
      if (holder != null) continue // it failed us: try the others, without waiting
      // nobody had it yet: providers may still turn up, peers may join
      await sleep(REFRESH_MS / 2, signal)
      if (candidates.length === 0) tried.clear()
    }
  }

  /** The first of `peers` to say it holds `cid` (have queries at once), or undefined. */
  private async firstHolder (cid: CID, peers: string[], signal: AbortSignal): Promise<string | undefined> {
    if (peers.length === 0) return undefined
    return new Promise(resolve => {
      let left = peers.length
      const done = (): void => { if (--left === 0) resolve(undefined) }
      const deadline = AbortSignal.any([signal, AbortSignal.timeout(HAVE_AT_HAND_MS)])
      for (const peer of peers) {
        this.session(peer, deadline)
          .then(async session => session.have([cid], deadline))
          .then(([held]) => { if (held) resolve(peer); done() }, () => { done() })
      }
    })
  }

  private get selfId (): string {
    return this.init.node.peerId.toString()
  }

  private connectedPeers (): string[] {
    return this.init.node.getPeers().map(p => p.toString())
  }

  private async session (peer: string, signal: AbortSignal): Promise<XferSession> {
    let s = this.sessions.get(peer)
    if (s != null) {
      const live = await s.catch(() => undefined)
      if (live != null && live.failed == null) return live
      this.sessions.delete(peer)
    }
    s = XferSession.open(this.init.node, peer, {
      signal,
      // blocks land in shared memory the hash worker reads in place, reused from block to block
      allocate: size => {
        const pool = this.pool
        return pool != null && size <= pool.size ? pool.acquire().subarray(0, size) : Buffer.from(new SharedArrayBuffer(size))
      },
      release: buf => { this.pool?.release(buf) }
    })
    this.sessions.set(peer, s)
    s.catch(() => { if (this.sessions.get(peer) === s) this.sessions.delete(peer) })
    return s
  }

  private dropSession (peer: string, why: string): void {
    const s = this.sessions.get(peer)
    this.sessions.delete(peer)
    this.init.log('source %s of %s: %s', peer, cidKey(this.root), why)
    void s?.then(live => { live.abort(new Error(why)) }, () => {})
  }

  /** Looks up the root's provider records (once), asking each provider found about what is still needed. */
  private discoverProviders (signal: AbortSignal): void {
    if (this.discovering) return
    this.discovering = true
    void this.findProviders(signal)
  }

  private discovering = false

  private async findProviders (signal: AbortSignal): Promise<void> {
    if (this.init.node.getPeers().length === 0) return
    try {
      const lookup = AbortSignal.any([signal, AbortSignal.timeout(30_000)])
      for await (const event of this.init.node.services.dht.findProviders(this.root, { signal: lookup })) {
        if (event.name !== 'PROVIDER') continue
        for (const p of event.providers) {
          const id = p.id.toString()
          if (id === this.selfId || this.providers.has(id)) continue
          this.providers.add(id)
          // a provider holds the whole file: ask it about everything still needed
          const scheduler = this.scheduler
          if (scheduler != null && !scheduler.done) void this.askSource(id, scheduler.needed(), signal)
        }
        if (this.providers.size >= MAX_PROVIDERS) break
      }
    } catch (err) {
      if (!signal.aborted) this.init.log('finding providers of %s: %s', this.root, (err as Error).message)
    }
  }

  /** Asks the likely holders which needed pieces they have, then keeps asking about orphans. */
  private async findSources (layout: FileLayout, scheduler: BlockScheduler, signal: AbortSignal): Promise<void> {
    try {
      const needed = scheduler.needed()
      const asked = new Set<string>([this.selfId])
      // first those at hand, no DHT lookup needed: providers found so far (they
      // hold it all) and connected peers; the closest peers of every block
      // are looked up meanwhile and asked about their blocks
      const atHand = [...this.providers, ...this.connectedPeers().filter(p => !this.providers.has(p)).slice(0, MAX_CONNECTED_ASKED)]
        .filter(p => !asked.has(p))
      for (const p of atHand) asked.add(p)
      await mapConcurrent(atHand, SOURCES_AT_ONCE, async peer => { await this.askSource(peer, needed, signal) })
      // the DHT only for what nobody at hand holds: the closest peers of those
      // blocks (placement put them there) and the root's provider records
      const orphans = scheduler.orphans()
      if (orphans.length > 0) {
        this.discoverProviders(signal)
        const plan = await this.init.planner().plan(orphans.map(i => layout.pieces[i].cid.multihash.bytes), 2 * this.init.replicas, { signal })
        const byPeer = new Map<string, number[]>()
        plan.responsible.forEach((peers, j) => {
          for (const peer of peers) {
            if (asked.has(peer)) continue
            let list = byPeer.get(peer)
            if (list == null) byPeer.set(peer, list = [])
            list.push(orphans[j])
          }
        })
        await mapConcurrent([...byPeer], SOURCES_AT_ONCE, async ([peer, indexes]) => { await this.askSource(peer, indexes, signal) })
      }
      while (!scheduler.done && !signal.aborted) {
        await sleep(REFRESH_MS, signal)
        const orphans = scheduler.orphans()
        if (orphans.length === 0) continue
        this.discoverProviders(signal)
        const peers = new Set([...this.sessions.keys(), ...this.providers, ...this.connectedPeers().slice(0, MAX_CONNECTED_ASKED)])
        peers.delete(this.selfId)
        await mapConcurrent([...peers], SOURCES_AT_ONCE, async peer => { await this.askSource(peer, orphans, signal) })
      }
    } catch (err) {
      if (!signal.aborted) this.init.log('finding sources of %s: %s', this.root, (err as Error).message)
    }
  }

  private async askSource (peer: string, indexes: number[], signal: AbortSignal): Promise<void> {
    const scheduler = this.scheduler
    if (scheduler == null || indexes.length === 0 || scheduler.isBanned(peer)) return
    try {
      const session = await this.session(peer, signal)
      const held = await session.have(indexes.map(i => this.layout!.pieces[i].cid), signal)
      const has = indexes.filter((_, j) => held[j])
      if (has.length > 0) this.timings.firstSourceMs ??= Math.round(performance.now() - this.startedAt)
      if (has.length > 0 || scheduler.hasPeer(peer)) scheduler.addPeer(session, has)
    } catch (err) {
      if (signal.aborted) return
      this.dropSession(peer, (err as Error).message)
    }
  }
}
