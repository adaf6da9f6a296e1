/**
 * The ring-maintenance operations, after Zave's corrected Chord ("Reasoning
 * about identifier spaces: How to make Chord correct", IEEE TSE 2017); see
 * docs/overlays.md for the rules and how each is followed here.
 *
 *  - join: find this peer's successor through bootstrap peers, ask that
 *    successor (live: it answers) for its list and take it; no predecessor.
 *  - stabilize: ask the first successor s for its predecessor p and list;
 *    a dead s is dropped (update) and the next one asked; one that is only
 *    a suspect (it failed, but not yet enough: suspects.ts) stays first
 *    and ends the round. If p lies between
 *    this peer and s, p is asked for its list and becomes the successor, only
 *    once it has answered (and again from p, up to r steps a round); the
 *    list becomes the successor + its list (reconcile). The same question
 *    notifies the successor (notify).
 *  - notified (rectify): a notifier between the predecessor and this peer
 *    becomes the predecessor; one that is not replaces it only once the
 *    predecessor is found dead by a ping.
 *  - check-predecessor (flush): a predecessor found dead by a ping
 *    is dropped.
 *  - fix-fingers: one finger per round, by a lookup of its start; the
 *    fingers the successor list answers need none.
 *  - a peer left: its neighbours close the gap at once from what it sent.
 *  - seed: a launcher's list, adopted as it is; a stabilize round asked
 *    before it came does not replace it.
 *
 * A peer only ever takes a successor or predecessor that has just answered
 * it (or just spoke to it): Zave's rule that no pointer is adopted before
 * the peer it points at is known to be alive.
 */
import type { AbortOptions, Logger } from '@libp2p/interface'
import { MAX_DEPARTED_PEERS, RING_BITS } from './constants.ts'
import type { LookupOptions, LookupOutcome } from './lookup.ts'
import { decodePeer, decodePeers, type PeerInfo, type PeerMessage } from './messages.ts'
import { clockwise, clockwiseFrom, inHalfOpen, inOpen } from './ring.ts'
import type { RingState } from './ring-state.ts'
import type { ChordRpc } from './rpc.ts'

export interface MaintenanceInit {
  state: RingState
  rpc: ChordRpc
  lookup: (key: bigint, count: number, options?: LookupOptions) => Promise<LookupOutcome>
  learn: (peer: PeerInfo) => void
  /**
   * A query to a peer failed: resolves whether that makes it dead
   * (suspects.ts); a dead one is forgotten wherever it is a hint (fingers).
   */
  failed: (peer: string, err: unknown) => boolean
  /** Peers to rejoin through when every successor is lost (bootstrap peers). */
  fallbackSeeds: () => string[]
  /** A peer as it goes on the wire. */
  peerMessage: (peer: string) => PeerMessage
  log: Logger
}

export class Maintenance {
  private readonly init: MaintenanceInit
  private readonly state: RingState
  private nextFinger = 0
  /** Zave's rectify: the best notifier since the predecessor was last checked. */
  private rectifyWith: string | undefined
  private rectifying = false
  /** The last peer that notified this one since check-predecessor last ran. */
  private heardFrom: string | undefined
  /**
   * Peers that said goodbye, and when: a stabilize round that got its
   * answer before a goodbye arrived must not put the leaver back.
   */
  private readonly departed = new Map<string, number>()
  /**
   * When a launcher last handed this peer its successor list (seed): a
   * stabilize round under way then, slow on a loaded machine, would put
   * back the list its answers showed before, and the next round would
   * only confirm it.
   */
  private handedAt = -Infinity

  constructor (init: MaintenanceInit) {
    this.init = init
    this.state = init.state
  }

  /**
   * Joins the ring through `seeds`: looks up this peer's own position,
   * then takes the first peer clockwise among those found and the `live`
   * seeds (peers that have just answered), once it answers, with its list
   * merged with the live seeds in ring order. On a formed ring the lookup
   * finds the true successor and no live peer lies before it; a launcher
   * that knows the true ring hands each peer its next successors as seeds,
   * and then every pointer a peer takes is true even while the ring is
   * still forming (peers still alone answer lookups wrongly).
   * Resolves whether a live successor was found.
   */
  async join (seeds: string[], options: AbortOptions = {}, live: string[] = []): Promise<boolean> {
    const { state } = this
    const started = performance.now()
    let found: string[] = []
    try {
      const outcome = await this.init.lookup(state.selfPosition, state.r, { ...options, seeds, confirmedOnly: true })
      found = [...outcome.window.peers, outcome.window.left]
    } catch (err) {
      if (options.signal?.aborted === true || live.length === 0) throw err
      this.init.log('looking up our own position failed: %s', (err as Error).message)
    }
    const inOrder = (peers: Iterable<string>): string[] =>
      clockwiseFrom(state.selfPosition, new Set([...peers].filter(p => p !== state.self)), p => state.positionOf(p))
    for (const successor of inOrder([...found, ...live])) {
      options.signal?.throwIfAborted()
      const answer = await this.askState(successor, true, options)
      if (isNoAnswer(answer)) continue
      // a successor alone (not joined yet) closes no ring: it knows nothing past itself
      const said = answer.successors.map(p => p.id)
      const list = said.length === 1 && said[0] === successor ? [successor] : [successor, ...said]
      // a list that comes back round to this peer closes the ring, unless live seeds lie outside it
      const back = list.indexOf(state.self)
      const known = back >= 0 ? list.slice(0, back) : list
      const extra = live.filter(p => !known.includes(p) && p !== state.self)
      this.adopt(extra.length === 0 ? list : inOrder([...known, ...extra]), started)
      this.init.log('joined the ring: successor %s', successor)
      return true
    }
    return false
  }

  /**
   * Back on the ring after a restart: the saved successors that answer a
   * ping, in their saved order, become the successor list (stabilize then
   * checks it as it checks any). Resolves whether any answered.
   */
  async restore (successors: string[], options: AbortOptions = {}): Promise<boolean> {
    const started = performance.now()
    const alive = await Promise.all(successors.map(async peer => this.ping(peer, options)))
    const live = successors.filter((_, i) => alive[i] === 'alive')
    if (live.length === 0) return false
    this.adopt(live, started)
    this.init.log('back on the ring through %d of %d saved successors', live.length, successors.length)
    return true
  }

  /**
   * A successor list handed out by a launcher that knows the swarm, adopted
   * as it is (no lookup, no pings); the next stabilize checks it.
   */
  seed (successors: string[], fingers: string[] = []): void {
    this.handedAt = performance.now()
    this.adopt(successors, this.handedAt)
    this.state.placeFingers(fingers)
    this.init.log('successor list of %d and %d fingers handed out, successor %s', successors.length, fingers.length, successors[0])
  }

  /** One stabilize round. */
  async stabilize (options: AbortOptions = {}): Promise<void> {
    const { state } = this
    const started = performance.now()
    if (state.alone) {
      // a ring of one that someone notified: that peer is the successor too
      const predecessor = state.predecessor
      if (predecessor == null) return
      // its list continues past this peer with this peer's successors; only
      // a list with nothing past this peer makes a ring of two with it
      // (taking the predecessor as the last successor would close a ring
      // around a part of the peers)
      const answer = await this.askState(predecessor, true, options)
      if (isNoAnswer(answer)) return
      const list = answer.successors.map(p => p.id)
      const past = list.indexOf(state.self) >= 0 ? list.slice(list.indexOf(state.self) + 1).filter(p => p !== predecessor) : []
      this.adopt(past.length > 0 ? past : [predecessor, state.self], started)
      return
    }
    let successor: string | undefined
    let answer: StateAnswer | NoAnswer = 'dead'
    while ((successor = state.successors[0]) != null) {
      options.signal?.throwIfAborted()
      answer = await this.askState(successor, true, options)
      if (!isNoAnswer(answer)) break
      // a suspect (slow, or dead: suspects.ts tells once it has failed
      // enough) stays first; the next round asks it again
      if (answer === 'suspect') return
      // update: the first successor is dead, the next one takes its place
      state.dropSuccessor(successor)
    }
    if (successor == null || isNoAnswer(answer)) {
      await this.rejoin(options)
      return
    }
    // a peer between this one and the successor (it joined there) becomes
    // the successor once it answers; walking back repeats the step, as
    // many stabilize rounds in a row would, up to r peers
    for (let step = 0; step < state.r; step++) {
      const between = answer.predecessor?.id
      if (between == null || between === state.self ||
          !inOpen(state.selfPosition, state.positionOf(between), state.positionOf(successor))) break
      const closer = await this.askState(between, true, options)
      if (isNoAnswer(closer)) break
      successor = between
      answer = closer
    }
    // a list handed out meanwhile stands (adopt), and so does what its successor says
    if (started < this.handedAt) return
    // a successor alone (it has not joined yet) knows nothing of what follows it: the rest of the list stays
    const said = answer.successors.map(p => p.id)
    const alone = said.length === 1 && said[0] === successor
    this.adopt(alone ? [successor, ...state.successors.slice(state.successors.indexOf(successor) + 1)] : [successor, ...said], started)
    state.successorSaid(successor, answer.predecessor?.id)
  }

  /**
   * Adopts a successor list built from answers got since `since`, without
   * any peer that left meanwhile; none at all when a list was handed out
   * after those answers were asked for.
   */
  private adopt (sequence: string[], since: number): void {
    if (since < this.handedAt) return
    this.state.adoptSuccessors(sequence.filter(peer => (this.departed.get(peer) ?? -Infinity) < since))
  }

  /**
   * One fix-fingers round: the next finger the successor list does not
   * answer. A finger already known is checked with the peer it points at
   * (one request on a connection already open); only a finger not known, or
   * whose peer does not answer, takes a lookup. Lookups from this peer open
   * connections to every peer on their path, and checking keeps a peer's
   * connections to its fingers and their neighbours.
   */
  async fixFinger (options: AbortOptions = {}): Promise<void> {
    const { state } = this
    const first = state.firstFingerBeyondSuccessors()
    if (first >= RING_BITS || state.stranded) return
    let index = Math.max(this.nextFinger, first)
    if (index >= RING_BITS) index = first
    const start = state.fingerStarts[index]
    const finger = await this.checkFinger(index, start, options) ?? (await this.init.lookup(start, 1, options)).window.peers[0]
    let last = index
    if (finger != null && finger !== state.self) {
      // every later finger whose start the same peer succeeds
      while (last + 1 < RING_BITS && inHalfOpen(state.selfPosition, state.fingerStarts[last + 1], state.positionOf(finger))) last++
      state.setFingers(index, last, finger)
    }
    this.nextFinger = last + 1 >= RING_BITS ? 0 : last + 1
  }

  /**
   * The known finger for `start`, if its peer confirms it: a finger f is
   * right when its predecessor lies before the start (start in (pred f, f]).
   * Undefined when no finger is known, its peer is dead, or a peer joined
   * between (a lookup then finds the new finger: walking back from f would
   * open a connection to every peer on the way). A finger only suspected
   * stays: a lookup in its place is more work for a machine already slow.
   */
  private async checkFinger (index: number, start: bigint, options: AbortOptions): Promise<string | undefined> {
    const { state } = this
    const finger = state.fingers.get(index)
    if (finger == null) return undefined
    const fromSelf = (position: bigint): bigint => clockwise(state.selfPosition, position)
    // a stand-in left by a dead finger may lie far past the start: look it up
    if (fromSelf(state.positionOf(finger)) < fromSelf(start)) return undefined
    const answer = await this.askState(finger, false, options)
    if (answer === 'suspect') return finger
    if (answer === 'dead') return undefined
    const before = answer.predecessor?.id
    if (before == null || before === state.self) return finger
    const at = fromSelf(state.positionOf(before))
    return at < fromSelf(start) || at >= fromSelf(state.positionOf(finger)) ? finger : undefined
  }

  /**
   * Flush: a predecessor that is dead (suspects.ts) is dropped. One that
   * notified this peer since the last check has just shown it lives: no
   * ping. Resolves whether the predecessor was dropped.
   */
  async checkPredecessor (options: AbortOptions = {}): Promise<boolean> {
    const predecessor = this.state.predecessor
    const heard = this.heardFrom
    this.heardFrom = undefined
    if (predecessor == null || heard === predecessor) return false
    if (await this.ping(predecessor, options) !== 'dead') return false
    // ping's failure forgot it as predecessor and finger (init.failed)
    this.init.log('predecessor %s is gone', predecessor)
    return true
  }

  /** Rectify: `notifier` (which just spoke to this peer) says it may be the predecessor. */
  notified (notifier: string): void {
    const { state } = this
    if (notifier === state.self) return
    this.heardFrom = notifier
    if (state.alone) {
      // a peer alone just heard from another (it joined): the notifier, alive
      // (it has just spoken), is its predecessor; the next stabilize (soon:
      // a change wakes it) takes the successors from the notifier's list,
      // unless this peer joins through peers of its own first
      state.setPredecessor(notifier)
      return
    }
    const predecessor = state.predecessor
    if (predecessor == null || inOpen(state.positionOf(predecessor), state.positionOf(notifier), state.selfPosition)) {
      state.setPredecessor(notifier)
      return
    }
    if (predecessor === notifier) return
    // not better than the predecessor: it takes over only if the predecessor is dead
    if (this.rectifyWith == null || inOpen(state.positionOf(this.rectifyWith), state.positionOf(notifier), state.selfPosition)) {
      this.rectifyWith = notifier
    }
    if (this.rectifying) return
    this.rectifying = true
    void this.ping(predecessor).then(alive => {
      const candidate = this.rectifyWith
      this.rectifyWith = undefined
      if (alive === 'dead' && state.predecessor === predecessor && candidate != null) state.setPredecessor(candidate)
    }).finally(() => { this.rectifying = false })
  }

  /**
   * A neighbour leaves. Its successor forgets it as predecessor (the next
   * notify from the leaver's predecessor, which learns of this peer from
   * the same leave, sets the new one); its predecessor puts the leaver's
   * successors in its place, and verifies them at the next stabilize.
   */
  left (peer: string, predecessor: PeerInfo | undefined, successors: PeerInfo[]): void {
    const { state } = this
    this.departed.set(peer, performance.now())
    if (this.departed.size > MAX_DEPARTED_PEERS) this.departed.delete(this.departed.keys().next().value as string)
    for (const p of successors) this.init.learn(p)
    if (predecessor != null) this.init.learn(predecessor)
    if (state.predecessor === peer) {
      state.setPredecessor(undefined)
      if (predecessor != null && predecessor.id !== state.self) this.notifiedLater(predecessor.id)
    }
    const at = state.successors.indexOf(peer)
    if (at >= 0) {
      state.adoptSuccessors([...state.successors.slice(0, at), ...successors.map(p => p.id).filter(p => p !== peer)])
    }
    state.forgetPeer(peer)
  }

  /** The leaver's predecessor, adopted as predecessor once it answers a ping. */
  private notifiedLater (candidate: string): void {
    void this.ping(candidate).then(alive => {
      if (alive === 'alive' && this.state.predecessor == null) this.state.setPredecessor(candidate)
    })
  }

  /** Stranded (every successor dead): join again through every peer still known. */
  private async rejoin (options: AbortOptions): Promise<void> {
    const { state } = this
    const seeds = [...new Set([...state.knownPeers(), ...this.init.fallbackSeeds()])].filter(p => p !== state.self)
    if (seeds.length === 0) return
    this.init.log('every successor is gone: rejoining through %d known peers', seeds.length)
    try {
      await this.join(seeds, options)
    } catch (err) {
      if (options.signal?.aborted !== true) this.init.log('rejoining failed: %s', (err as Error).message)
    }
  }

  /** `peer`'s predecessor and successors, or why there is no answer. */
  private async askState (peer: string, notify: boolean, options: AbortOptions = {}): Promise<StateAnswer | NoAnswer> {
    try {
      const response = await this.init.rpc.request(peer, { get_state: { notify } }, options)
      const state = response.state!
      const answer: StateAnswer = {
        predecessor: state.predecessor != null ? decodePeer(state.predecessor) : undefined,
        successors: decodePeers(state.successors)
      }
      if (answer.predecessor != null) this.init.learn(answer.predecessor)
      for (const p of answer.successors) this.init.learn(p)
      return answer
    } catch (err) {
      if (options.signal?.aborted === true) throw err
      this.init.log('%s did not answer get-state: %s', peer, (err as Error).message)
      return this.init.failed(peer, err) ? 'dead' : 'suspect'
    }
  }

  private async ping (peer: string, options: AbortOptions = {}): Promise<'alive' | NoAnswer> {
    try {
      await this.init.rpc.request(peer, { ping: {} }, options)
      return 'alive'
    } catch (err) {
      if (options.signal?.aborted === true) throw err
      return this.init.failed(peer, err) ? 'dead' : 'suspect'
    }
  }
}

/** A peer that did not answer: dead, or only a suspect so far (suspects.ts). */
type NoAnswer = 'dead' | 'suspect'

function isNoAnswer (answer: StateAnswer | NoAnswer): answer is NoAnswer {
  return typeof answer === 'string'
}

interface StateAnswer {
  predecessor?: PeerInfo
  successors: PeerInfo[]
}
