/**
 * Shoal's own iterative Kademlia lookup for the `count` peers closest to a
 * key, over kad-dht's routing table and a FIND query (the overlay's
 * /shoal/kad/find/1.0.0, find-client.ts), with the path it took: every query sent, its depth, and when it was answered.
 *
 * Classic Kademlia termination for `count` (Shoal's k, not kad-dht's
 * routing k): up to ALPHA queries in flight (more when asked: a join's
 * self-lookup), each to the closest peer not
 * yet asked among the `count` closest seen (a peer whose query fails twice
 * is left out); the
 * lookup ends once the `count` closest seen have all answered, so no closer
 * peer is still pending. This peer itself counts as answered (its own
 * routing table started the lookup). kad-dht's getClosestPeers instead
 * queries until its 20 closest have answered, which in a swarm of a few
 * hundred peers asks a large share of them.
 *
 * Depth: a peer asked straight from our routing table is at depth 1; a peer
 * first named in the reply of a depth-d peer is at depth d+1.
 */
import type { AbortOptions, PeerId, PeerInfo } from '@libp2p/interface'
import type { LookupHop } from '../index.ts'
import { compareDistance } from './kad-distance.ts'

/** Queries one lookup keeps in flight at once. */
export const ALPHA = 3

export interface KadLookupComponents {
  selfId: string
  /** This peer's keyspace ID. */
  selfKadId: Uint8Array
  /** Peers in this peer's routing table believed alive (never this peer). */
  knownPeers: () => PeerId[]
  /** Keyspace ID of a peer. */
  idOfPeer: (peerId: PeerId) => Uint8Array
  /**
   * One query: the peers `to` knows closest to the key (`target` is its
   * keyspace ID), at least `count` when it knows them; throws when it does
   * not answer. `to` carries the addresses the reply that named it gave
   * (none for routing-table peers).
   */
  findNode: (to: PeerInfo, key: Uint8Array, target: Uint8Array, count: number, options?: AbortOptions) => Promise<PeerInfo[]>
}

export interface KadLookup {
  /** The `count` closest peers that answered, closest first (this peer among them when it is close enough). */
  peers: string[]
  /** Every query sent, in the order they were answered; those never answered last. */
  path: LookupHop[]
  /** Queries sent. */
  messages: number
  ms: number
  /** The depth of a peer seen in this lookup (0 for this peer, 1 when it was never named by another). */
  depthOf: (peerId: string) => number
}

type State = 'new' | 'asking' | 'answered' | 'failed'

interface Candidate {
  id: string
  /** null for this peer. */
  peer: PeerInfo | null
  kadId: Uint8Array
  depth: number
  state: State
  /** Its query failed once already: a second failure leaves it out. */
  retried?: boolean
}

export interface KadLookupOptions extends AbortOptions {
  /** Queries in flight at once (default ALPHA). */
  parallelism?: number
}

export async function kadLookup (components: KadLookupComponents, key: Uint8Array, target: Uint8Array, count: number, options: KadLookupOptions = {}): Promise<KadLookup> {
  const parallelism = options.parallelism ?? ALPHA
  const started = performance.now()
  const { signal } = options
  const seen = new Map<string, Candidate>()
  const path: LookupHop[] = []
  let messages = 0
  // sorted closest first; rebuilt when peers are added (lookups see tens of peers)
  let order: Candidate[] = []
  const add = (peer: PeerInfo, depth: number): void => {
    const id = peer.id.toString()
    const known = seen.get(id)
    if (known != null) {
      if (known.state === 'new' && depth < known.depth) known.depth = depth
      return
    }
    const candidate: Candidate = { id, peer, kadId: components.idOfPeer(peer.id), depth, state: 'new' }
    seen.set(id, candidate)
    order.push(candidate)
  }
  const sort = (): void => { order = order.sort((a, b) => compareDistance(target, a.kadId, b.kadId)) }
  // this peer is a candidate too, already answered: its own table seeds the lookup
  const self: Candidate = { id: components.selfId, peer: null, kadId: components.selfKadId, depth: 0, state: 'answered' }
  seen.set(self.id, self)
  order.push(self)
  for (const peer of components.knownPeers()) add({ id: peer, multiaddrs: [] }, 1)
  sort()
  // queries still out once the answer is known are abandoned
  const abandon = new AbortController()
  const querySignal = signal == null ? abandon.signal : AbortSignal.any([signal, abandon.signal])
  let done = false

  let inFlight = 0
  let wake: () => void = () => {}
  const ask = (candidate: Candidate, peer: PeerInfo): void => {
    candidate.state = 'asking'
    messages++
    const hop: LookupHop = { peerId: candidate.id, hop: candidate.depth, ms: 0, ok: false }
    inFlight++
    void (async () => {
      try {
        const closer = await components.findNode(peer, key, target, count, { signal: querySignal })
        if (done) return
        candidate.state = 'answered'
        hop.ok = true
        for (const p of closer) if (p.id.toString() !== components.selfId) add(p, candidate.depth + 1)
        sort()
      } catch {
        if (done) return
        // one failure may be a busy peer (a query timed out on a loaded
        // host): asked once more before it is left out, since leaving out a
        // live peer among the closest makes the answer wrong
        if (candidate.retried === true) {
          candidate.state = 'failed'
        } else {
          candidate.retried = true
          candidate.state = 'new'
        }
      }
      hop.ms = performance.now() - started
      path.push(hop)
    })().finally(() => {
      inFlight--
      wake()
    })
  }

  for (;;) {
    signal?.throwIfAborted()
    // the `count` closest peers that have not failed
    const closest: Candidate[] = []
    for (const c of order) {
      if (c.state === 'failed') continue
      closest.push(c)
      if (closest.length === count) break
    }
    if (closest.every(c => c.state === 'answered')) break
    for (const c of closest) {
      if (inFlight >= parallelism) break
      if (c.state === 'new' && c.peer != null) ask(c, c.peer)
    }
    if (inFlight === 0) break
    await new Promise<void>(resolve => { wake = resolve })
  }
  done = true
  abandon.abort()
  const ms = performance.now() - started
  // queries still out when the lookup had its answer count as sent, not as answered
  const unanswered = [...seen.values()].filter(c => c.state === 'asking')
  for (const c of unanswered) path.push({ peerId: c.id, hop: c.depth, ms, ok: false })
  const peers = order.filter(c => c.state === 'answered').slice(0, count).map(c => c.id)
  return { peers, path, messages, ms, depthOf: id => seen.get(id)?.depth ?? 1 }
}
