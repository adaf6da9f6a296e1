/**
 * Placement as a stream: blocks are added as they become available (an
 * import adds each one as soon as it is stored) and go to their k
 * responsible peers while the next ones are still being produced, so a
 * share ends about when its last block is both imported and placed.
 *
 * Design note, who tracks what:
 *
 *   add(cid) ─► pending ─► plan loop ─────────► PushRound ──► PeerQueue (one per target peer)
 *               (not yet    planner.plan of       loads each     one store session, putAll:
 *               planned)    whatever is pending   block once     its window of puts sized by
 *                           (a lookup covers      (a byte        the receiver's rate
 *                           many keys), the       budget), one
 *                           block's `closest`     copy per target
 *
 *  - `blocks[i]`: the block's k closest and, of those, who holds it now
 *    (this peer when it is one of them, and every peer that answered
 *    STORED or ALREADY_HELD);
 *  - a loaded block's bytes live until every target has answered for it;
 *    loaded bytes are bounded (LOADED_BYTES), so a fast import waits for
 *    slow receivers only through this budget;
 *  - a peer that cannot be reached is remembered; once the stream is
 *    finished, the blocks it was to hold are planned again without it
 *    (up to PLACE_ROUNDS rounds), as `place` always did; a peer whose
 *    session broke off midway is offered the copies it never took again
 *    in the next round (it is still among the closest).
 */
import type { Libp2p, Logger } from '@libp2p/interface'
import type { CID } from 'multiformats/cid'
import type { ResponsiblePlanner } from '../routing/index.ts'
import { Budget } from '../utils/budget.ts'
import { storeStatusName } from '../wire/store-messages.ts'
import type { PlacementMetrics } from './metrics.ts'
import { PeerQueue, settle, type Copy } from './peer-queue.ts'
import { isHeld, StoreSession } from './store-client.ts'
import { STORE_IDLE_TIMEOUT_MS } from './store-server.ts'

const MiB = 1024 * 1024
/** Block bytes read for pushing and not yet answered by every target, at most. */
export const LOADED_BYTES = 64 * MiB
/** Blocks read from the store at once. */
const LOADS_AT_ONCE = 4
/** Rounds of planning and pushing: the first, then again without the peers found unreachable. */
export const PLACE_ROUNDS = 3
/**
 * A session with nothing to offer for this long ends (a new one opens if
 * copies for its peer come later): well inside the receiver's idle
 * timeout, which resets a stream that sends nothing for
 * STORE_IDLE_TIMEOUT_MS (in a large swarm most of a long import's targets
 * get their few copies early and would wait out the whole import).
 */
export const SESSION_IDLE_MS = STORE_IDLE_TIMEOUT_MS / 3

export interface BlockPlacement {
  cid: string
  /** The k closest peers (this peer included when it is one of them). */
  closest: string[]
  /** Of those, the ones that hold the block now. */
  holders: string[]
}

export interface PlaceStreamComponents {
  node: Pick<Libp2p, 'dialProtocol'>
  planner: ResponsiblePlanner
  /** A block's bytes, verified. */
  readBlock: (cid: CID) => Promise<Uint8Array>
  selfId: string
  log: Logger
  metrics?: PlacementMetrics
}

export interface PlaceStreamOptions {
  signal?: AbortSignal
  /** How long a session with nothing to offer stays open (default SESSION_IDLE_MS). */
  sessionIdleMs?: number
  /** Block copies acknowledged so far, of `total` planned so far (block x peer). */
  onProgress?: (done: number, total: number, copy: PlacedCopy) => void
}

/** The answer that moved placement on: a block's copy, the peer asked, and whether it holds it now (STORED or ALREADY_HELD). */
export interface PlacedCopy {
  cid: string
  peer: string
  held: boolean
}

export interface PushTotals {
  blocks: BlockPlacement[]
  lookups: number
  planMs: number
  pushMs: number
  bytesPushed: number
  refused: Record<string, number>
}

export class PlaceStream {
  private readonly components: PlaceStreamComponents
  private readonly k: number
  private readonly options: PlaceStreamOptions
  private readonly aborter = new AbortController()
  private readonly signal: AbortSignal
  private readonly cids: CID[] = []
  private readonly sizes: Array<number | undefined> = []
  private readonly seen = new Set<string>()
  private readonly pending: number[] = []
  private planning?: Promise<void>
  private failure?: Error
  private readonly totals: PushTotals = { blocks: [], lookups: 0, planMs: 0, pushMs: 0, bytesPushed: 0, refused: {} }
  private readonly progress = { done: 0, total: 0 }
  private readonly budget = new Budget(LOADED_BYTES)
  private round: PushRound
  private startedAt?: number

  constructor (components: PlaceStreamComponents, k: number, options: PlaceStreamOptions = {}) {
    this.components = components
    this.k = k
    this.options = options
    this.signal = options.signal != null ? AbortSignal.any([options.signal, this.aborter.signal]) : this.aborter.signal
    this.round = this.newRound()
  }

  /** A block held here, to place (a block added twice is placed once). */
  add (cid: CID, size?: number): void {
    const key = cid.toString()
    if (this.seen.has(key) || this.failure != null) return
    this.seen.add(key)
    this.startedAt ??= performance.now()
    const index = this.cids.push(cid) - 1
    this.sizes[index] = size
    this.totals.blocks.push({ cid: key, closest: [], holders: [] })
    this.pending.push(index)
    this.planning ??= this.planPending()
  }

  /** Stops everything under way (the import failed): sessions reset, nothing more is pushed. */
  abort (reason: Error): void {
    this.failure ??= reason
    this.aborter.abort(reason)
  }

  /** No more blocks: waits until every block has its answers, plans again around unreachable peers, and says where each went. */
  async finish (): Promise<PushTotals> {
    while (this.planning != null) await this.planning
    if (this.failure != null) throw this.failure
    this.round.close()
    await this.round.done
    for (let r = 1; r < PLACE_ROUNDS && (this.round.unreachable.size > 0 || this.round.failed.size > 0); r++) {
      const unreachable = [...this.round.unreachable]
      const failed = this.round.failed
      this.totals.refused.UNREACHABLE = (this.totals.refused.UNREACHABLE ?? 0) + unreachable.length
      this.components.planner.exclude(unreachable)
      // planned again without the unreachable; offered again to a peer whose
      // session broke off (it is still one of the closest: a busy receiver
      // that missed a deadline, a reset stream), for the copies it never took
      const affected = this.totals.blocks
        .map((b, i) => b.closest.some(p => unreachable.includes(p) || (failed.has(p) && !b.holders.includes(p))) ? i : -1)
        .filter(i => i >= 0)
      this.round = this.newRound()
      await this.planAndPush(affected)
      this.round.close()
      await this.round.done
    }
    this.signal.throwIfAborted()
    this.totals.pushMs = Math.round(performance.now() - (this.startedAt ?? performance.now()))
    this.totals.planMs = Math.round(this.totals.planMs)
    return this.totals
  }

  private newRound (): PushRound {
    return new PushRound(this.components, this.k, this.signal, this.budget, this.options.sessionIdleMs ?? SESSION_IDLE_MS, {
      load: async i => this.components.readBlock(this.cids[i]),
      sizeOf: i => this.sizes[i],
      cidOf: i => this.cids[i],
      onResult: (i, peer, status, message, size) => {
        if (isHeld(status)) {
          if (!this.totals.blocks[i].holders.includes(peer)) this.totals.blocks[i].holders.push(peer)
          this.totals.bytesPushed += size
          this.components.metrics?.placed(size)
        } else {
          const name = storeStatusName(status)
          this.totals.refused[name] = (this.totals.refused[name] ?? 0) + 1
          this.components.log('peer %s refused %s: %s %s', peer, this.cids[i], name, message)
        }
        this.options.onProgress?.(++this.progress.done, this.progress.total, { cid: this.totals.blocks[i].cid, peer, held: isHeld(status) })
      },
      onFailed: peer => { this.totals.refused.FAILED = (this.totals.refused.FAILED ?? 0) + 1; void peer }
    })
  }

  private async planPending (): Promise<void> {
    try {
      while (this.pending.length > 0) await this.planAndPush(this.pending.splice(0))
    } catch (err) {
      this.abort(err as Error)
    } finally {
      this.planning = undefined
    }
  }

  /** Plans these blocks (again) and hands each to the peers of its k closest that do not hold it yet. */
  private async planAndPush (indexes: number[]): Promise<void> {
    if (indexes.length === 0) return
    const { planner, selfId } = this.components
    const started = performance.now()
    const plan = await planner.plan(indexes.map(i => this.cids[i].multihash.bytes), this.k, { signal: this.signal })
    this.totals.planMs += performance.now() - started
    // the planner counts every lookup it made so far
    this.totals.lookups = plan.lookups
    indexes.forEach((i, j) => {
      const block = this.totals.blocks[i]
      const closest = plan.responsible[j]
      block.closest = closest
      block.holders = block.holders.filter(h => closest.includes(h))
      if (closest.includes(selfId) && !block.holders.includes(selfId)) block.holders.push(selfId)
      const targets = closest.filter(p => !block.holders.includes(p))
      this.progress.total += targets.length
      if (targets.length > 0) this.round.push(i, targets)
    })
  }
}

interface RoundHooks {
  load: (index: number) => Promise<Uint8Array>
  sizeOf: (index: number) => number | undefined
  cidOf: (index: number) => CID
  onResult: (index: number, peer: string, status: number, message: string, size: number) => void
  onFailed: (peer: string) => void
}

/**
 * One round of pushes: blocks are read once (LOADS_AT_ONCE at a time, within
 * the byte budget) and queued to each of their targets; each target peer
 * has one session that offers its queue as it fills.
 */
class PushRound {
  readonly unreachable = new Set<string>()
  /** Peers whose session broke off before every copy was answered. */
  readonly failed = new Set<string>()
  private readonly components: PlaceStreamComponents
  private readonly k: number
  private readonly signal: AbortSignal
  private readonly budget: Budget
  private readonly hooks: RoundHooks
  private readonly sessionIdleMs: number
  private readonly toLoad: Array<{ index: number, targets: string[] }> = []
  private readonly peers = new Map<string, PeerQueue>()
  private readonly running: Array<Promise<void>> = []
  private loaders = 0
  private closed = false
  private readonly finished = Promise.withResolvers<void>()

  constructor (components: PlaceStreamComponents, k: number, signal: AbortSignal, budget: Budget, sessionIdleMs: number, hooks: RoundHooks) {
    this.components = components
    this.sessionIdleMs = sessionIdleMs
    this.k = k
    this.signal = signal
    this.budget = budget
    this.hooks = hooks
    this.finished.promise.catch(() => {})
    // stopped (the import failed, the share was cancelled): every session
    // stops waiting for more copies and ends now, instead of holding its
    // stream open until the receiver's idle timeout
    signal.addEventListener('abort', () => {
      for (const queue of this.peers.values()) { queue.drain(); queue.close() }
    }, { once: true })
  }

  /** Resolves once every block pushed has its answers from every target (after `close`). */
  get done (): Promise<void> {
    return this.finished.promise
  }

  push (index: number, targets: string[]): void {
    this.toLoad.push({ index, targets })
    while (this.loaders < LOADS_AT_ONCE && this.toLoad.length > 0) {
      this.loaders++
      void this.loadLoop()
    }
  }

  close (): void {
    this.closed = true
    this.checkDone()
  }

  private async loadLoop (): Promise<void> {
    try {
      while (this.toLoad.length > 0) {
        const { index, targets } = this.toLoad.shift()!
        const reserved = Math.min(this.hooks.sizeOf(index) ?? MiB, LOADED_BYTES)
        await this.budget.acquire(reserved)
        if (this.signal.aborted) {
          // stopped while waiting for room: nothing more is queued
          this.budget.release(reserved)
          this.toLoad.length = 0
          return
        }
        let left = targets.length
        const release = (): void => { if (--left === 0) this.budget.release(reserved) }
        let bytes: Promise<Uint8Array> | undefined
        const load = async (): Promise<Uint8Array> => { bytes ??= this.hooks.load(index); return bytes }
        for (const peer of targets) {
          const copy: Copy = { cid: this.hooks.cidOf(index), index, load, settled: false, release }
          this.queueOf(peer).push(copy)
        }
      }
    } finally {
      this.loaders--
      this.checkDone()
    }
  }

  private queueOf (peer: string): PeerQueue {
    let queue = this.peers.get(peer)
    // none yet, or its session ended idle: a new session for the new copies
    if (queue == null || queue.endedIdle) {
      queue = new PeerQueue(this.sessionIdleMs)
      this.peers.set(peer, queue)
      const run = this.runPeer(peer, queue)
      this.running.push(run)
    }
    return queue
  }

  private async runPeer (peer: string, queue: PeerQueue): Promise<void> {
    const { node, log } = this.components
    let session: StoreSession | undefined
    try {
      session = await StoreSession.open(node, peer, this.signal)
    } catch (err) {
      this.unreachable.add(peer)
      log('placing on %s: unreachable (%s)', peer, (err as Error).message)
      // its copies are planned again in the next round; their bytes are let go now
      queue.drain()
      return
    }
    try {
      await session.putAll(queue, this.k, (item, status, message, size) => {
        const copy = item as Copy
        this.hooks.onResult(copy.index, peer, status, message, size)
        settle(copy)
      }, this.signal)
      await session.close()
    } catch (err) {
      session.abort(err as Error)
      this.failed.add(peer)
      this.hooks.onFailed(peer)
      log('placing on %s failed: %s', peer, (err as Error).message)
    } finally {
      // copies never answered (a failed session): their bytes are let go
      queue.drain()
    }
  }

  private checkDone (): void {
    if (!this.closed || this.loaders > 0 || this.toLoad.length > 0) return
    for (const queue of this.peers.values()) queue.close()
    Promise.all(this.running).then(() => { this.finished.resolve() }, err => { this.finished.reject(err as Error) })
  }
}
