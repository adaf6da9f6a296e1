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
 */
import type { AbortOptions } from '@libp2p/interface'
import type { LookupHop } from '../index.ts'
import { MAX_LOOKUP_QUERIES } from './constants.ts'
import { LookupFailedError } from './errors.ts'
import { decodePeers, type PeerInfo } from './messages.ts'
import { RING_SIZE, clockwise, fromPosition, inHalfOpen, inOpen } from './ring.ts'
import type { RingState, RingWindow } from './ring-state.ts'
import type { ChordRpc } from './rpc.ts'

export interface LookupContext {
  state: RingState
  rpc: ChordRpc
  /** A peer named in an answer: remember where to reach it. */
  learn: (peer: PeerInfo) => void
  /** A query to this peer failed: it is dropped from the fingers. */
  failed: (peer: string) => void
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
  if (options.seeds == null && state.precedesKey(key)) {
    const window: RingWindow = {
      left: state.self,
      peers: [...state.successors, ...(state.wrapped ? [state.self] : [])],
      complete: state.wrapped
    }
    return extend(ctx, window, count, { path: [], hops: 0, messages: 0, started }, options)
  }

  const depth = new Map<string, number>()
  const queried = new Set<string>()
  let fallback: { window: RingWindow, hop: number } | undefined
  const path: LookupHop[] = []
  let messages = 0
  const seeds = options.seeds ?? state.closestPreceding(key, Number.MAX_SAFE_INTEGER, skip)
  for (const peer of seeds) if (!skip(peer)) depth.set(peer, 1)
  // seeds of a join may lie anywhere; afterwards only peers before the key are asked
  const seeded = new Set(options.seeds ?? [])

  while (messages < MAX_LOOKUP_QUERIES) {
    options.signal?.throwIfAborted()
    const peer = nextCandidate(state, key, depth, queried, seeded)
    if (peer == null) break
    queried.add(peer)
    const hop = depth.get(peer) ?? 1
    messages++
    let answered = false
    try {
      const response = await ctx.rpc.request(peer, { find_successor: { key: fromPosition(key) } }, options)
      const answer = response.find_successor!
      const successors = decodePeers(answer.successors)
      const closer = decodePeers(answer.closer)
      answered = true
      path.push({ peerId: peer, hop, ms: performance.now() - started, ok: true })
      for (const p of [...successors, ...closer]) ctx.learn(p)
      if (answer.done && successors.length > 0 && inHalfOpen(state.positionOf(peer), key, state.positionOf(successors[0].id))) {
        const window: RingWindow = { left: peer, peers: successors.map(p => p.id), complete: answer.complete }
        if (answer.confirmed || options.confirmedOnly !== true) {
          return await extend(ctx, window, count, { path, hops: hop, messages, started }, options)
        }
        fallback ??= { window, hop }
      }
      for (const p of closer) {
        if (skip(p.id) || queried.has(p.id)) continue
        // only peers that get closer to the key than the one naming them
        if (!inOpen(state.positionOf(peer), state.positionOf(p.id), key)) continue
        depth.set(p.id, Math.min(depth.get(p.id) ?? Infinity, hop + 1))
      }
    } catch (err) {
      if (options.signal?.aborted === true) throw err
      if (!answered) {
        // dead, unreachable, too slow or broken: route around it
        path.push({ peerId: peer, hop, ms: performance.now() - started, ok: false })
        ctx.failed(peer)
      }
    }
  }
  if (fallback != null) return extend(ctx, fallback.window, count, { path, hops: fallback.hop, messages, started }, options)
  throw new LookupFailedError(`no live peer on the way to ${key.toString(16).padStart(64, '0').slice(0, 16)}… answered (${messages} queries)`)
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
        ctx.failed(last)
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
