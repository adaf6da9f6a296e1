/**
 * Iterative lookup: this peer asks, one peer at a time, the peer it knows
 * closest before the key (counter-clockwise nearest) whether the key lies
 * between that peer and its first successor. The one that says yes is the
 * key's predecessor, and its successor list starts with the key's
 * successor; any other names the peers it knows closer to the key, which
 * join the candidates. A peer that fails or times out is routed around:
 * the next-best candidate is asked instead.
 *
 * ```
 *  querier           p1 (finger)        p2              pred(key)
 *     | FindSuccessor   |                 |                  |
 *     |---------------->|                 |                  |
 *     |<--- closer: p2,p2',p2'' ----------|                  |
 *     | FindSuccessor                     |                  |
 *     |---------------------------------->|                  |
 *     |<--- closer: pred(key), ... -------|                  |
 *     | FindSuccessor                                        |
 *     |----------------------------------------------------->|
 *     |<--- done: successor list [succ(key), next, ...] -----|
 * ```
 *
 * Every candidate named by an answer must lie strictly between the peer
 * that named it and the key, so each step gets closer and a lookup ends;
 * MAX_LOOKUP_QUERIES bounds it against answers that name endless peers.
 *
 * A successor list that spans the key (this peer's own, a `done` answer's,
 * or the one a peer sends along with closer peers when its list reaches
 * past the key) names the key's successor: its first entry at or after
 * the key that is alive. That entry is asked for its state before the
 * lookup returns it (the paper's lookup reaches the successor): a dead one
 * is a timeout in the path and the next entry is asked, so a lookup routes
 * around dead successors as it does around dead fingers, with no
 * stabilization. The state it sends gives the window its own successor
 * list, and its predecessor, when that lies between the key and it, is a
 * closer successor the list missed (a peer that joined since), asked next.
 */
import type { AbortOptions } from '@libp2p/interface'
import type { LookupHop } from '../index.ts'
import { MAX_LOOKUP_QUERIES } from './constants.ts'
import { LookupFailedError } from './errors.ts'
import { decodePeer, decodePeers, type FindSuccessorResult, type PeerInfo } from './messages.ts'
import { RING_SIZE, clockwise, fromPosition, inHalfOpen, inOpen } from './ring.ts'
import type { RingState, RingWindow } from './ring-state.ts'
import type { ChordRpc } from './rpc.ts'

export interface LookupContext {
  state: RingState
  rpc: ChordRpc
  /** A peer named in an answer: remember where to reach it. */
  learn: (peer: PeerInfo) => void
  /** A query to this peer failed: a dead one is dropped from the fingers (suspects.ts); resolves whether it is dead. */
  failed: (peer: string, err: unknown) => boolean
  /** Peers never to ask nor return (a planner's exclusions). */
  skip?: (peer: string) => boolean
}

export interface LookupOptions extends AbortOptions {
  /**
   * Start from these peers rather than this peer's own routing state, and
   * do not answer from it: a join, when this peer is not on the ring yet.
   */
  seeds?: string[]
  /**
   * Take the answer only from a predecessor whose successor has confirmed
   * it (a join: a peer that joined a moment ago and is not on the ring yet
   * may point past peers that are). Unconfirmed answers are the fallback
   * when no confirmed one comes.
   */
  confirmedOnly?: boolean
}

export interface LookupOutcome {
  /** The key's predecessor (`left`) and its successor list (`peers`, the key's successor first). */
  window: RingWindow
  path: LookupHop[]
  /** Depth of the peer that answered, plus any queries that extended the list. */
  hops: number
  messages: number
  ms: number
}

/**
 * The key's predecessor and at least `count` peers from the key's successor
 * on (fewer only when the ring has fewer), through the overlay.
 */
export async function findSuccessors (ctx: LookupContext, key: bigint, count: number, options: LookupOptions = {}): Promise<LookupOutcome> {
  const started = performance.now()
  const { state } = ctx
  const skip = (peer: string): boolean => peer === state.self || ctx.skip?.(peer) === true
  const path: LookupHop[] = []
  const progress: Progress = { path, hops: 0, messages: 0, started }
  /** Peers that answered in this lookup (alive), and those that failed. */
  const alive = new Set<string>([state.self])
  const dead = new Set<string>()
  const resolve = async (span: Span, hop: number): Promise<LookupOutcome | undefined> => {
    const window = await confirmHead(ctx, key, span, hop, progress, alive, dead, options.seeds == null, options)
    return window != null ? extend(ctx, window, count, progress, options) : undefined
  }

  if (options.seeds == null) {
    const own = [...state.successors, ...(state.wrapped ? [state.self] : [])]
    if (spans(state, state.self, own, key)) {
      const found = await resolve({ left: state.self, peers: own, complete: state.wrapped }, 0)
      if (found != null) return found
    }
  }

  const depth = new Map<string, number>()
  const queried = new Set<string>()
  let fallback: { window: RingWindow, hop: number } | undefined
  const seeds = options.seeds ?? state.closestPreceding(key, Number.MAX_SAFE_INTEGER, skip)
  for (const peer of seeds) if (!skip(peer)) depth.set(peer, 1)
  // seeds of a join may lie anywhere; afterwards only peers before the key are asked
  const seeded = new Set(options.seeds ?? [])

  while (progress.messages < MAX_LOOKUP_QUERIES) {
    options.signal?.throwIfAborted()
    const peer = nextCandidate(state, key, depth, queried, seeded)
    if (peer == null) break
    queried.add(peer)
    const hop = depth.get(peer) ?? 1
    progress.messages++
    let answer: FindSuccessorResult
    let successors: PeerInfo[]
    let closer: PeerInfo[]
    try {
      answer = (await ctx.rpc.request(peer, { find_successor: { key: fromPosition(key) } }, options)).find_successor!
      successors = decodePeers(answer.successors)
      closer = decodePeers(answer.closer)
    } catch (err) {
      if (options.signal?.aborted === true) throw err
      // dead, unreachable, too slow or broken: route around it
      path.push({ peerId: peer, hop, ms: performance.now() - started, ok: false })
      ctx.failed(peer, err)
      dead.add(peer)
      continue
    }
    alive.add(peer)
    path.push({ peerId: peer, hop, ms: performance.now() - started, ok: true })
    progress.hops = hop
    for (const p of [...successors, ...closer]) ctx.learn(p)
    const list = successors.map(p => p.id)
    if (answer.done && list.length > 0 && inHalfOpen(state.positionOf(peer), key, state.positionOf(list[0]))) {
      const window: RingWindow = { left: peer, peers: list, complete: answer.complete }
      if (answer.confirmed || options.confirmedOnly !== true) {
        const found = await resolve(window, hop)
        if (found != null) return found
      } else {
        fallback ??= { window, hop }
      }
    } else if (!answer.done && options.confirmedOnly !== true && spans(state, peer, list, key)) {
      // the peer's list reaches past the key: its successor is in it
      const found = await resolve({ left: peer, peers: list, complete: answer.complete }, hop)
      if (found != null) return found
    }
    for (const p of closer) {
      if (skip(p.id) || queried.has(p.id)) continue
      // only peers that get closer to the key than the one naming them
      if (!inOpen(state.positionOf(peer), state.positionOf(p.id), key)) continue
      depth.set(p.id, Math.min(depth.get(p.id) ?? Infinity, hop + 1))
    }
  }
  if (fallback != null) {
    progress.hops = fallback.hop
    return extend(ctx, fallback.window, count, progress, options)
  }
  throw new LookupFailedError(`no live peer on the way to ${key.toString(16).padStart(64, '0').slice(0, 16)}… answered (${progress.messages} queries)`)
}

/** A successor list as its owner (`left`) sent it: peers in ring order from `left`. */
type Span = RingWindow

/** The list (of `left`'s successors) reaches the key: the key lies in (left, last entry]. */
function spans (state: RingState, left: string, list: string[], key: bigint): boolean {
  return list.length > 0 && inHalfOpen(state.positionOf(left), key, state.positionOf(list[list.length - 1]))
}

/**
 * The window whose head is the key's successor, alive: the span's entries
 * at or after the key asked in turn (a dead one skipped), the first that
 * answers giving its own successor list. Undefined when none answers.
 * This peer, as a head, gives its own list (`ownState`) unless it is
 * joining (its list is not on the ring yet): then the span as sent.
 */
async function confirmHead (ctx: LookupContext, key: bigint, span: Span, hop: number, progress: Progress, alive: Set<string>, dead: Set<string>, ownState: boolean, options: AbortOptions): Promise<RingWindow | undefined> {
  const { state } = ctx
  const leftPosition = state.positionOf(span.left)
  let first = span.peers.findIndex(p => inHalfOpen(leftPosition, key, state.positionOf(p)))
  if (first < 0) return undefined
  // the window starts after the last entry before the key
  const left = first > 0 ? span.peers[first - 1] : span.left
  const heads = span.peers.slice(first)
  const tried = new Set<string>()
  /** What each head that answered a get_state sent: its successor list. */
  const states = new Map<string, { peers: string[], complete: boolean }>()
  while (heads.length > 0 && progress.messages < MAX_LOOKUP_QUERIES) {
    options.signal?.throwIfAborted()
    const head = heads.shift()!
    if (dead.has(head) || ctx.skip?.(head) === true) continue
    const known = states.get(head)
    if (known != null) return { left, ...known }
    if (tried.has(head)) continue
    tried.add(head)
    if (head === state.self && ownState) {
      return { left, peers: [state.self, ...state.successors], complete: state.wrapped }
    }
    if (alive.has(head) && span.peers.includes(head)) {
      // answered in this lookup: the span as sent, from it on
      return { left, peers: span.peers.slice(span.peers.indexOf(head)), complete: span.complete }
    }
    progress.messages++
    let predecessor: string | undefined
    let successors: PeerInfo[]
    let complete: boolean
    try {
      const response = await ctx.rpc.request(head, { get_state: { notify: false } }, options)
      const answer = response.state!
      predecessor = answer.predecessor != null ? decodePeer(answer.predecessor).id : undefined
      successors = decodePeers(answer.successors)
      complete = answer.complete
    } catch (err) {
      if (options.signal?.aborted === true) throw err
      progress.path.push({ peerId: head, hop: hop + 1, ms: performance.now() - progress.started, ok: false })
      ctx.failed(head, err)
      dead.add(head)
      continue
    }
    alive.add(head)
    progress.hops = hop + 1
    progress.path.push({ peerId: head, hop: hop + 1, ms: performance.now() - progress.started, ok: true })
    for (const p of successors) if (p.addrs.length > 0) ctx.learn(p)
    const list = successors.map(p => p.id)
    // a list that closes the ring ends with its owner: the head is first already
    states.set(head, { peers: [head, ...(complete && list[list.length - 1] === head ? list.slice(0, -1) : list)], complete })
    if (predecessor != null && !tried.has(predecessor) && !dead.has(predecessor) && predecessor !== head &&
      clockwise(key, state.positionOf(predecessor)) < clockwise(key, state.positionOf(head))) {
      // its predecessor lies at or after the key: a closer successor the span missed, asked first
      heads.unshift(predecessor, head)
      continue
    }
    return { left, ...states.get(head)! }
  }
  return undefined
}

/** The candidate not asked yet that lies closest before the key. */
function nextCandidate (state: RingState, key: bigint, depth: Map<string, number>, queried: Set<string>, seeded: Set<string>): string | undefined {
  let best: string | undefined
  let bestDistance = 0n
  for (const peer of depth.keys()) {
    if (queried.has(peer)) continue
    const position = state.positionOf(peer)
    if (!seeded.has(peer) && !inOpen(state.selfPosition, position, key)) continue
    // a seed at the key itself is asked last: it can only be the key's successor
    const distance = position === key ? RING_SIZE : clockwise(position, key)
    if (best == null || distance < bestDistance) {
      best = peer
      bestDistance = distance
    }
  }
  return best
}

interface Progress {
  path: LookupHop[]
  hops: number
  messages: number
  started: number
}

/**
 * A successor list shorter than `count` that does not close the ring is
 * continued from its last peer's own list (k above r).
 */
async function extend (ctx: LookupContext, window: RingWindow, count: number, progress: Progress, options: AbortOptions): Promise<LookupOutcome> {
  let { hops, messages } = progress
  const peers = [...window.peers]
  let complete = window.complete
  while (!complete && peers.length > 0 && peers.length < count && messages < MAX_LOOKUP_QUERIES) {
    const last = peers[peers.length - 1]
    let successors: PeerInfo[]
    if (last === ctx.state.self) {
      // this peer's own list, no question needed
      successors = [...ctx.state.successors, ...(ctx.state.wrapped ? [ctx.state.self] : [])].map(id => ({ id, addrs: [] }))
    } else {
      messages++
      hops++
      try {
        const response = await ctx.rpc.request(last, { get_state: { notify: false } }, options)
        successors = decodePeers(response.state!.successors)
        progress.path.push({ peerId: last, hop: hops, ms: performance.now() - progress.started, ok: true })
      } catch (err) {
        if (options.signal?.aborted === true) throw err
        progress.path.push({ peerId: last, hop: hops, ms: performance.now() - progress.started, ok: false })
        ctx.failed(last, err)
        break
      }
    }
    const before = peers.length
    let repeated = false
    for (const p of successors) {
      if (p.addrs.length > 0) ctx.learn(p)
      // back at the predecessor the window starts from: the ring is closed, every peer is in it
      if (p.id === window.left) { peers.push(p.id); complete = true; break }
      if (peers.includes(p.id)) { repeated = true; break }
      peers.push(p.id)
    }
    if (repeated || peers.length === before) break
  }
  return {
    window: { left: window.left, peers, complete },
    path: progress.path,
    hops,
    messages,
    ms: performance.now() - progress.started
  }
}
