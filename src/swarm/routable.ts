/**
 * When is a swarm "routable"? It depends on the overlay:
 *
 * - Kademlia: when every peer's routing table holds at least min(N-1, k)
 *   peers: then a lookup from any peer can start from a full bucket's worth
 *   of contacts, and in a swarm of up to k+1 peers every peer knows every
 *   other.
 * - Chord: when the ring is correct at every peer: its successor list is the
 *   next min(N-1, r) peers clockwise and its predecessor the peer before it
 *   (the swarm knows every peer ID, so it knows the true ring). Lookups are
 *   then exact from any peer, whatever the fingers hold yet.
 */
import { peerIdFromString } from '@libp2p/peer-id'
import { DEFAULT_SUCCESSOR_LIST_LENGTH, RING_BITS } from '../routing/chord/constants.ts'
import { clockwiseFrom, RING_SIZE, toPosition } from '../routing/chord/ring.ts'
import type { OverlayName, RoutingSnapshot } from '../routing/index.ts'
import { idOfPeer } from '../routing/key-space.ts'

export function routableThreshold (peerCount: number, kBucketSize: number): number {
  return Math.max(0, Math.min(peerCount - 1, kBucketSize))
}

export interface RoutableOptions {
  overlay: OverlayName
  /** Kademlia's k. */
  kBucketSize: number
  /** Chord's r (default 16). */
  successorListLength?: number
}

/** A swarm's peers in ring order, with what each Chord peer must hold to be routable. */
export class SwarmRing {
  /** The peers in ring order, from position 0 clockwise. */
  readonly order: string[]
  private readonly next = new Map<string, string[]>()
  private readonly previous = new Map<string, string>()

  /** Each peer's ring position, in `order`. */
  private readonly positions: bigint[]

  constructor (peers: string[], successorListLength = DEFAULT_SUCCESSOR_LIST_LENGTH) {
    const position = new Map(peers.map(peer => [peer, toPosition(idOfPeer(peerIdFromString(peer)))]))
    const ring = clockwiseFrom(0n, new Set(peers), peer => position.get(peer)!)
    this.order = ring
    this.positions = ring.map(peer => position.get(peer)!)
    const length = Math.min(ring.length - 1, successorListLength)
    ring.forEach((peer, i) => {
      this.next.set(peer, Array.from({ length }, (_, j) => ring[(i + 1 + j) % ring.length]))
      if (ring.length > 1) this.previous.set(peer, ring[(i - 1 + ring.length) % ring.length])
    })
  }

  /** The successor list a peer must hold. */
  successorsOf (peer: string): string[] {
    return this.next.get(peer) ?? []
  }

  predecessorOf (peer: string): string | undefined {
    return this.previous.get(peer)
  }

  /** A peer's distinct fingers: the successor of its position + 2^i, for every i (itself left out). */
  fingersOf (peer: string): string[] {
    const at = this.order.indexOf(peer)
    if (at < 0) return []
    const out = new Set<string>()
    for (let i = 0; i < RING_BITS; i++) out.add(this.successorOf((this.positions[at] + (1n << BigInt(i))) % RING_SIZE))
    out.delete(peer)
    return [...out]
  }

  /** The first peer at or clockwise after a position. */
  private successorOf (position: bigint): string {
    let [lo, hi] = [0, this.positions.length]
    while (lo < hi) {
      const mid = (lo + hi) >> 1
      if (this.positions[mid] < position) lo = mid + 1
      else hi = mid
    }
    return this.order[lo % this.order.length]
  }
}

/** A Chord peer whose successor list is right but whose predecessor is not (the next notify sets it). */
export const PREDECESSOR_SHORTFALL = 'its predecessor is not the peer before it'

/**
 * Why this peer is not routable yet in a swarm of `peers` (every running
 * peer, itself included), or undefined when it is. `ring`: the swarm's
 * SwarmRing on Chord (made once per swarm, it hashes every peer ID).
 */
export function routingShortfall (routing: RoutingSnapshot, peers: string[], options: RoutableOptions, ring?: SwarmRing): string | undefined {
  if (routing.overlay === 'kademlia') {
    const need = routableThreshold(peers.length, options.kBucketSize)
    const have = new Set(routing.buckets.flatMap(b => b.peers)).size
    return have >= need ? undefined : `knows ${have} of the ${need} peers it needs`
  }
  const truth = ring ?? new SwarmRing(peers, options.successorListLength)
  const want = truth.successorsOf(routing.self)
  const have = routing.successors.slice(0, want.length)
  if (have.length < want.length || have.some((peer, i) => peer !== want[i])) {
    const right = have.findIndex((peer, i) => peer !== want[i])
    return `${right === -1 ? have.length : right} of its ${want.length} successors right`
  }
  const predecessor = truth.predecessorOf(routing.self)
  if (predecessor != null && routing.predecessor !== predecessor) return PREDECESSOR_SHORTFALL
  return undefined
}
