/**
 * What one peer knows of the ring: its successor list, its predecessor and
 * its fingers. No network here: the maintenance operations
 * (maintenance.ts) and the handlers decide, this holds the result, derives
 * what follows from it (fingers the successor list already answers,
 * closest preceding peers for a lookup) and tells listeners when it changes.
 *
 * The successor list holds up to r peers, nearest first, never this peer.
 * `wrapped` says the list closes the ring: after its last entry comes this
 * peer again, so this peer and the list are every peer there is (a ring of
 * r or fewer peers; a peer alone has an empty, wrapped list). An empty list
 * that is not wrapped means this peer has lost every successor
 * ("stranded") and must find its way back through the peers it knows.
 */
import type { OverlayChange } from '../index.ts'
import { RING_BITS } from './constants.ts'
import { FingerTable } from './finger-table.ts'
import type { Positions } from './positions.ts'
import { clockwise, fingerStart, inHalfOpen, inOpen } from './ring.ts'

/**
 * A run of consecutive ring peers: the successor list of `left`, as `left`
 * had it. Every peer between `left` and the last of `peers` is in `peers`.
 */
export interface RingWindow {
  left: string
  peers: string[]
  /** `peers` are every peer on the ring (`left` among them). */
  complete: boolean
}

export class RingState {
  readonly self: string
  readonly selfPosition: bigint
  /** Where each finger starts: self + 2^i. */
  readonly fingerStarts: readonly bigint[]
  private readonly positions: Positions
  private readonly maxSuccessors: number
  private successorList: string[] = []
  private wrappedList = true
  private predecessorId: string | undefined
  readonly fingers = new FingerTable()
  /** Goes up whenever the first successor or the predecessor changes. */
  neighbourVersion = 0
  /**
   * The first successor answered, at the last stabilize, with this peer as
   * its predecessor: this peer is on the ring, not only pointing into it.
   */
  private confirmedBy: string | undefined
  private readonly changed: (change: OverlayChange) => void
  private readonly admits: (peer: string) => boolean

  /**
   * `changed` is called after every change of the successor list,
   * predecessor or fingers; `admits` says which peers may enter them at all
   * (not those refused for speaking another overlay).
   */
  constructor (self: string, positions: Positions, maxSuccessors: number, changed: (change: OverlayChange) => void = () => {}, admits: (peer: string) => boolean = () => true) {
    this.self = self
    this.changed = changed
    this.admits = admits
    this.positions = positions
    this.selfPosition = positions.ofPeer(self)
    this.maxSuccessors = maxSuccessors
    this.fingerStarts = Array.from({ length: RING_BITS }, (_, i) => fingerStart(this.selfPosition, i))
  }

  get r (): number { return this.maxSuccessors }
  get successors (): readonly string[] { return this.successorList }
  get wrapped (): boolean { return this.wrappedList }
  get predecessor (): string | undefined { return this.predecessorId }
  /** The first successor; this peer itself when it is alone. */
  get successor (): string | undefined { return this.successorList[0] ?? (this.wrappedList ? this.self : undefined) }
  get alone (): boolean { return this.successorList.length === 0 && this.wrappedList }
  /** On the ring for sure: alone, or its first successor has it as predecessor. */
  get confirmed (): boolean { return this.alone || (this.confirmedBy != null && this.confirmedBy === this.successorList[0]) }

  /**
   * What the first successor gave as its predecessor at the last stabilize,
   * when that was not this peer: a peer that may lie between the two.
   */
  get successorsPredecessor (): string | undefined { return this.otherPredecessor }
  private otherPredecessor: string | undefined

  /** The first successor answered with `predecessor` as its predecessor. */
  successorSaid (successor: string, predecessor: string | undefined): void {
    this.confirmedBy = predecessor === this.self ? successor : undefined
    this.otherPredecessor = predecessor === this.self || (predecessor != null && !this.admits(predecessor)) ? undefined : predecessor
  }
  get stranded (): boolean { return this.successorList.length === 0 && !this.wrappedList }

  positionOf (peer: string): bigint {
    return peer === this.self ? this.selfPosition : this.positions.ofPeer(peer)
  }

  /** Every peer in the routing state, this one excluded. */
  knownPeers (): string[] {
    const known = new Set(this.successorList)
    if (this.predecessorId != null) known.add(this.predecessorId)
    for (const peer of this.fingers.peers()) known.add(peer)
    return [...known]
  }

  /**
   * Builds a successor list from `sequence` (peers in clockwise order from
   * this peer, e.g. a successor followed by that successor's own list),
   * then adopts it. The list stops at this peer or at a peer seen already
   * (the sequence went round the ring: the list is then wrapped), or at r
   * (wrapped only if the next one would have been this peer or a repeat).
   */
  adoptSuccessors (sequence: string[]): void {
    const list: string[] = []
    let wrapped = false
    for (const peer of sequence) {
      if (peer === this.self || list.includes(peer)) { wrapped = true; break }
      if (!this.admits(peer)) continue
      if (list.length === this.maxSuccessors) break
      list.push(peer)
    }
    if (wrapped === this.wrappedList && list.length === this.successorList.length && list.every((p, i) => p === this.successorList[i])) return
    this.update(() => {
      this.successorList = list
      this.wrappedList = wrapped
      this.fingersFromSuccessors()
    })
  }

  /** Drops one peer from the successor list (found dead, or leaving): the rest keep their order. */
  dropSuccessor (peer: string): void {
    if (!this.successorList.includes(peer)) return
    this.update(() => {
      this.successorList = this.successorList.filter(p => p !== peer)
      // a list that loses an entry no longer provably closes the ring
      if (this.successorList.length === 0) this.wrappedList = false
    })
  }

  /** Back to a ring of one (before joining, after leaving). */
  reset (): void {
    this.confirmedBy = undefined
    this.otherPredecessor = undefined
    this.update(() => {
      this.successorList = []
      this.wrappedList = true
      this.predecessorId = undefined
      this.fingers.clear()
    })
  }

  setPredecessor (peer: string | undefined): void {
    if (peer === this.self || (peer != null && !this.admits(peer))) peer = undefined
    if (peer === this.predecessorId) return
    this.update(() => { this.predecessorId = peer })
  }

  /** Fingers from..to point at `peer` (a fix-fingers lookup's answer). */
  setFingers (from: number, to: number, peer: string): void {
    if (peer === this.self || !this.admits(peer)) return
    if (this.fingers.get(from) === peer && this.fingers.get(to) === peer && this.fingers.distinct().every(f => f.index <= from || f.index > to)) return
    this.update(() => { this.fingers.setRange(from, to, peer) })
  }

  /**
   * Fingers from peers a launcher knows to be this peer's fingers: each
   * finger past the successor list is the first of them at or after its
   * start.
   */
  placeFingers (peers: string[]): void {
    const fromSelf = (position: bigint): bigint => clockwise(this.selfPosition, position)
    const sorted = peers.filter(p => p !== this.self).sort((a, b) => { const d = fromSelf(this.positionOf(a)) - fromSelf(this.positionOf(b)); return d < 0n ? -1 : d > 0n ? 1 : 0 })
    let from = this.firstFingerBeyondSuccessors()
    let at = 0
    while (from < RING_BITS && at < sorted.length) {
      const peer = sorted[at]
      if (fromSelf(this.positionOf(peer)) < fromSelf(this.fingerStarts[from])) { at++; continue }
      let to = from
      while (to + 1 < RING_BITS && fromSelf(this.fingerStarts[to + 1]) <= fromSelf(this.positionOf(peer))) to++
      this.setFingers(from, to, peer)
      from = to + 1
      at++
    }
  }

  /** Forgets a peer found dead everywhere but in the successor list, which stabilize owns. */
  forgetPeer (peer: string): void {
    this.update(() => {
      this.fingers.remove(peer)
      if (this.predecessorId === peer) this.predecessorId = undefined
    })
  }

  /** The lowest finger index whose start the successor list does not already answer; RING_BITS if none. */
  firstFingerBeyondSuccessors (): number {
    if (this.wrappedList) return RING_BITS
    const last = this.successorList[this.successorList.length - 1]
    if (last == null) return 0
    for (let i = 0; i < RING_BITS; i++) {
      if (!inHalfOpen(this.selfPosition, this.fingerStarts[i], this.positionOf(last))) return i
    }
    return RING_BITS
  }

  /**
   * Key position in (self, first successor]: this peer is the key's
   * predecessor and its successor list starts with the key's successor.
   * A peer alone answers yes to every key.
   */
  precedesKey (key: bigint): boolean {
    const successor = this.successor
    if (successor == null) return false
    return inHalfOpen(this.selfPosition, key, this.positionOf(successor))
  }

  /** Key position in (predecessor, self]: this peer is the key's successor. */
  succeedsKey (key: bigint): boolean {
    if (this.predecessorId == null) return false
    return inHalfOpen(this.positionOf(this.predecessorId), key, this.selfPosition)
  }

  /**
   * Up to `count` known peers strictly between this peer and the key,
   * closest to the key first: whom to ask next in a lookup.
   */
  closestPreceding (key: bigint, count: number, skip?: (peer: string) => boolean): string[] {
    return this.knownPeers()
      .filter(peer => skip?.(peer) !== true && inOpen(this.selfPosition, this.positionOf(peer), key))
      .map(peer => ({ peer, d: clockwise(this.positionOf(peer), key) }))
      .sort((a, b) => (a.d < b.d ? -1 : a.d > b.d ? 1 : 0))
      .slice(0, count)
      .map(entry => entry.peer)
  }

  /** This peer's own window: what its predecessor and successor list prove. */
  ownWindow (): RingWindow {
    if (this.wrappedList) return { left: this.self, peers: [this.self, ...this.successorList], complete: true }
    if (this.predecessorId != null) return { left: this.predecessorId, peers: [this.self, ...this.successorList], complete: false }
    return { left: this.self, peers: [...this.successorList], complete: false }
  }

  /**
   * Fingers whose start falls within the successor list are the first
   * successor at or after that start: no lookup needed for them.
   */
  private fingersFromSuccessors (): void {
    const list = this.successorList
    this.fingers.edit(fingers => {
      let j = 0
      for (let i = 0; i < RING_BITS; i++) {
        const start = this.fingerStarts[i]
        while (j < list.length && !inHalfOpen(this.selfPosition, start, this.positionOf(list[j]))) j++
        if (j < list.length) fingers[i] = list[j]
        // past the list of a closed ring the start's successor is this peer: no finger
        else if (this.wrappedList) fingers[i] = undefined
        else break
      }
    })
  }

  private update (mutate: () => void): void {
    const before = new Set(this.knownPeers())
    const shape = this.shape()
    const neighbours = this.neighbours()
    mutate()
    if (this.shape() === shape) return
    if (this.neighbours() !== neighbours) this.neighbourVersion++
    const after = new Set(this.knownPeers())
    const change: OverlayChange = {
      added: [...after].filter(p => !before.has(p)),
      removed: [...before].filter(p => !after.has(p))
    }
    this.changed(change)
  }

  private neighbours (): string {
    return `${this.successorList[0] ?? ''} ${this.predecessorId ?? ''}`
  }

  private shape (): string {
    return JSON.stringify([this.successorList, this.wrappedList, this.predecessorId ?? null, this.fingers.distinct()])
  }
}
