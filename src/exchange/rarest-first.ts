/**
 * The pieces of one fetch and which to ask for next (WebTorrent's rarity
 * map and piece selection). Pure bookkeeping, no I/O: each piece's state,
 * how many requests for it are out, how many known peers hold it.
 *
 * Choice: pieces in the priority range first (a streaming reader's range),
 * then the rarest (fewest known holders) among the next RAREST_WINDOW
 * candidates in file order, which keeps a fetch close to sequential when
 * every piece is equally common (placement makes them so); a piece only
 * one peer holds is taken at once.
 */

export const PieceState = {
  MISSING: 0,
  /** Received, its hash being checked: it may fail and be missing again. */
  VERIFYING: 1,
  /** Verified (being delivered, or delivered). */
  VERIFIED: 2
} as const
export type PieceStateValue = typeof PieceState[keyof typeof PieceState]

/** Candidates looked at when picking the rarest piece. */
const RAREST_WINDOW = 64

export class RarestFirst {
  /** PieceState of each piece. */
  private readonly state: Uint8Array
  /** Requests out for each piece, over all peers. */
  private readonly racers: Uint8Array
  /** Known peers holding each piece. */
  private readonly holders: Uint16Array
  private priorityFrom = 0
  private priorityTo = 0
  /** Every piece before this one is verified. */
  private firstMissing = 0

  /** `have[i]`: piece i is here already and needs no fetching. */
  constructor (have: boolean[]) {
    const n = have.length
    this.state = new Uint8Array(n)
    this.racers = new Uint8Array(n)
    this.holders = new Uint16Array(n)
    for (let i = 0; i < n; i++) if (have[i]) this.state[i] = PieceState.VERIFIED
  }

  get length (): number {
    return this.state.length
  }

  stateOf (i: number): PieceStateValue {
    return this.state[i] as PieceStateValue
  }

  setState (i: number, state: PieceStateValue): void {
    this.state[i] = state
  }

  /** Requests out for piece i. */
  racersOf (i: number): number {
    return this.racers[i]
  }

  requested (i: number): void {
    this.racers[i]++
  }

  released (i: number): void {
    this.racers[i]--
  }

  /** Peers known to hold pieces `indexes` (a peer's `has` bitmap), one more each. */
  gained (has: Uint8Array, indexes: number[]): void {
    for (const i of indexes) {
      if (has[i] === 1) continue
      has[i] = 1
      this.holders[i]++
    }
  }

  /** A peer no longer holds piece i (it said so). */
  lost (has: Uint8Array, i: number): void {
    if (has[i] !== 1) return
    has[i] = 0
    this.holders[i]--
  }

  /** A peer left: every piece it held has one holder fewer. */
  left (has: Uint8Array): void {
    for (let i = 0; i < has.length; i++) if (has[i] === 1) this.holders[i]--
  }

  /** Pieces `from` .. `to` (exclusive) go before any other. */
  prioritize (from: number, to: number): void {
    this.priorityFrom = Math.max(0, from)
    this.priorityTo = Math.min(this.state.length, to)
  }

  /** Pieces still to verify. */
  needed (): number[] {
    const out: number[] = []
    for (let i = 0; i < this.state.length; i++) if (this.state[i] === PieceState.MISSING) out.push(i)
    return out
  }

  /** Pieces still to verify that no known peer holds. */
  orphans (): number[] {
    const out: number[] = []
    for (let i = 0; i < this.state.length; i++) if (this.state[i] === PieceState.MISSING && this.holders[i] === 0) out.push(i)
    return out
  }

  /** A missing piece nobody is asking for that a peer holding `has` could send: priority range, then rarest in file order. */
  pick (has: Uint8Array): number | undefined {
    const { state, racers, holders } = this
    for (let i = this.priorityFrom; i < this.priorityTo; i++) {
      if (state[i] === PieceState.MISSING && racers[i] === 0 && has[i] === 1) return i
    }
    // only verified pieces are passed for good: one being verified may fail and be missing again
    while (this.firstMissing < state.length && state[this.firstMissing] === PieceState.VERIFIED) this.firstMissing++
    let best: number | undefined
    let seen = 0
    for (let i = this.firstMissing; i < state.length && seen < RAREST_WINDOW; i++) {
      if (state[i] !== PieceState.MISSING || racers[i] !== 0 || has[i] !== 1) continue
      seen++
      if (best == null || holders[i] < holders[best]) best = i
      if (holders[i] <= 1) break
    }
    return best
  }

  /** True while some missing piece a known peer holds has not been asked for: no endgame yet. */
  anyUnasked (): boolean {
    for (let i = this.firstMissing; i < this.state.length; i++) {
      if (this.state[i] === PieceState.MISSING && this.racers[i] === 0 && this.holders[i] > 0) return true
    }
    return false
  }
}
