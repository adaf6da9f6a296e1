/**
 * The k responsible peers of many keys with as few lookups as can be proved
 * enough.
 *
 * A lookup of key X ends at X's predecessor P, which answers with its
 * successor list s_0 .. s_{m-1}. On a stabilized ring that list holds the m
 * peers that follow P, in order, with none missing: every peer in the arc
 * (P, s_{m-1}] is in it. Call that a window. For any key T in (P, s_{m-k}],
 * T's successor is the first s_j at or after T, and j <= m-k since s_{m-k}
 * itself lies at or after T; its k responsible peers s_j .. s_{j+k-1} are
 * then all in the window (j+k-1 <= m-1). So T needs no lookup of its own. A
 * window whose list closes the ring (fewer than r+1 peers) names every peer
 * and covers every key. This peer's own predecessor and successor list are
 * a window too (covering (pred, s_{m-k}] before any lookup), so keys near
 * this peer cost nothing.
 *
 * Peers found dead are excluded: the peers of a window that remain are
 * still every live peer of its arc, so the same argument holds with m the
 * number that remain.
 *
 * Which lookups: keys are sorted by ring position and the first key no
 * window covers is looked up. Its window starts at its predecessor, the
 * latest start of any window that covers it, and so reaches farthest
 * clockwise: the classic greedy cover of points by intervals, which uses
 * the fewest lookups (one more at most, for the arc where the ring wraps
 * past 0, where the sorted order starts). To save round trips, after the
 * first lookup a round looks up several keys at once: the first uncovered
 * key, then the first uncovered key past where the previous pick's window is
 * predicted to end (the mean width of the windows seen so far). A
 * prediction that falls short costs an overlap, one that overshoots leaves a
 * gap for the next round; the proof above decides coverage either way.
 */
import type { AbortOptions } from '@libp2p/interface'
import type { PlanResult, ResponsiblePlanner } from '../index.ts'
import { clockwise, clockwiseFrom, inHalfOpen } from './ring.ts'
import type { RingWindow } from './ring-state.ts'

export interface PlannerRing {
  /** This peer's own window: its predecessor and successor list (or the whole ring). */
  ownWindow: () => RingWindow
  /** A lookup: the window of the key's predecessor, holding at least `count` peers when the ring has them. */
  findWindow: (key: bigint, count: number, options?: AbortOptions) => Promise<RingWindow>
  positionOfKey: (key: Uint8Array) => bigint
  positionOfPeer: (peer: string) => bigint
}

export interface ChordPlannerOptions {
  /** Lookups per round after the first (1 = strictly one at a time, the fewest lookups). */
  lookupsAtOnce?: number
}

const DEFAULT_LOOKUPS_AT_ONCE = 4

/** A window made ready for coverage checks: its live peers with their positions. */
interface Prepared {
  window: RingWindow
  left: bigint
  live: string[]
  positions: bigint[]
}

export class ChordPlanner implements ResponsiblePlanner {
  private readonly ring: PlannerRing
  private readonly lookupsAtOnce: number
  private readonly windows: Prepared[] = []
  private readonly excluded = new Set<string>()
  /** Widths (ring distance from start to the end of coverage) of the windows lookups returned, for predictions. */
  private readonly widths: bigint[] = []

  constructor (ring: PlannerRing, options: ChordPlannerOptions = {}) {
    this.ring = ring
    this.lookupsAtOnce = Math.max(1, options.lookupsAtOnce ?? DEFAULT_LOOKUPS_AT_ONCE)
    this.windows.push(this.prepare(ring.ownWindow()))
  }

  async plan (keys: Uint8Array[], k: number, options: AbortOptions = {}): Promise<PlanResult> {
    const started = performance.now()
    let lookups = 0
    const targets = keys.map(key => this.ring.positionOfKey(key))
    const responsible: string[][] = new Array(keys.length)
    // ring order, so each window covers a run of them (two, where it wraps past 0)
    let pending = targets.map((_, i) => i).sort((a, b) => (targets[a] < targets[b] ? -1 : targets[a] > targets[b] ? 1 : 0))
    const settle = (windows: Prepared[]): void => {
      for (const window of windows) {
        for (const i of this.keysIn(window, k, pending, targets)) responsible[i] ??= this.responsibleIn(window, targets[i], k)
      }
      pending = pending.filter(i => responsible[i] == null)
    }
    settle(this.windows)
    while (pending.length > 0) {
      options.signal?.throwIfAborted()
      const picks = this.picks(pending, targets, lookups === 0 ? 1 : this.lookupsAtOnce)
      const found = await Promise.all(picks.map(async i => this.ring.findWindow(targets[i], k, options)))
      lookups += picks.length
      const added = found.map(window => this.add(window, k))
      settle(added)
      // a picked key whose own window cannot prove it (fewer than k peers
      // left in it) takes that window's answer as it is: every round settles
      // at least the keys it looked up
      picks.forEach((i, j) => { responsible[i] ??= added[j].live.slice(0, k) })
      pending = pending.filter(i => responsible[i] == null)
    }
    return { responsible, lookups, ms: performance.now() - started }
  }

  exclude (peerIds: Iterable<string>): void {
    for (const peer of peerIds) this.excluded.add(peer)
    this.windows.splice(0, this.windows.length, ...this.windows.map(w => this.prepare(w.window)))
  }

  /**
   * The keys (indices into `targets`, from `sorted`, which is in ring
   * order) that a window proves: all of them for a window that closes the
   * ring, else those in (left, s_(m-k)].
   */
  private keysIn (window: Prepared, k: number, sorted: number[], targets: bigint[]): number[] {
    if (window.window.complete) return window.live.length > 0 ? sorted : []
    if (window.live.length < k) return []
    const from = window.left
    const to = window.positions[window.live.length - k]
    // first index whose target is above `bound`
    const above = (bound: bigint): number => {
      let lo = 0
      let hi = sorted.length
      while (lo < hi) {
        const mid = (lo + hi) >> 1
        if (targets[sorted[mid]] > bound) hi = mid
        else lo = mid + 1
      }
      return lo
    }
    if (from < to) return sorted.slice(above(from), above(to))
    // the arc wraps past 0: (from, top] and [0, to]
    return [...sorted.slice(above(from)), ...sorted.slice(0, above(to))]
  }

  /** A key's k responsible peers from a window that proves them. */
  private responsibleIn (window: Prepared, key: bigint, k: number): string[] {
    if (window.window.complete) return clockwiseFrom(key, window.live, p => this.ring.positionOfPeer(p)).slice(0, k)
    const first = window.positions.findIndex(p => inHalfOpen(window.left, key, p))
    return window.live.slice(first, first + k)
  }

  private prepare (window: RingWindow): Prepared {
    const live = window.peers.filter(p => !this.excluded.has(p))
    return { window, left: this.ring.positionOfPeer(window.left), live, positions: live.map(p => this.ring.positionOfPeer(p)) }
  }

  private add (window: RingWindow, k: number): Prepared {
    const prepared = this.prepare(window)
    this.windows.push(prepared)
    if (!window.complete && prepared.live.length >= k) {
      this.widths.push(clockwise(prepared.left, prepared.positions[prepared.live.length - k]))
    }
    return prepared
  }

  /**
   * The first uncovered key, then (up to `count` in all) each next uncovered
   * key past the predicted end of the previous pick's window.
   */
  private picks (uncovered: number[], targets: bigint[], count: number): number[] {
    const picks = [uncovered[0]]
    if (count === 1 || this.widths.length === 0) return picks
    const width = this.widths.reduce((a, b) => a + b, 0n) / BigInt(this.widths.length)
    let from = targets[uncovered[0]]
    for (const i of uncovered) {
      if (picks.length >= count) break
      if (clockwise(from, targets[i]) > width && targets[i] > from) {
        picks.push(i)
        from = targets[i]
      }
    }
    return picks
  }
}
