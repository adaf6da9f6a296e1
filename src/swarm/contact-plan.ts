/**
 * Who dials whom when a local swarm joins.
 *
 * `shoal swarm up` knows every peer's ID and address before any of them
 * joins, so instead of letting 100 newcomers discover each other through
 * rounds of lookups (each of which dials every peer it hears of), it hands
 * every peer a short list of peers to connect to, chosen the way a settled
 * Kademlia routing table looks:
 *
 * - its `near` XOR-closest peers (the neighbourhood lookups converge on), and
 * - up to `perBucket` peers from each farther bucket (peers sharing exactly
 *   c leading bits with it, for every c), so a lookup for any key has a
 *   first hop into that key's half, quarter, ... of the keyspace;
 * - then, for any peer still short of `minContacts`, its next-closest peers.
 *
 * Every pair is connected once: each edge is dialled by one of its two ends
 * (the one with fewer dials so far). A plan is only who connects to whom:
 * kad-dht itself adds a peer to its routing table once the connection is up
 * and identify has shown that the other side speaks the DHT protocol.
 */
import { commonPrefixLength, compareDistance } from '../routing/kademlia/kad-distance.ts'

export interface ContactPlanInit {
  /** XOR-closest peers each peer is connected to (default 8). */
  near?: number
  /** Peers from each farther bucket (default 1: with 2, a 1,000-peer plan had 28% more connections than the 20 per peer a routable table needs, and each is a handshake on a CPU-bound start). */
  perBucket?: number
  /** Every peer ends with at least this many contacts (or all others). */
  minContacts: number
}

export const CONTACT_PLAN_NEAR = 8
export const CONTACT_PLAN_PER_BUCKET = 1

export interface ContactPlan {
  /** Indexes of the peers each peer dials. */
  dials: number[][]
  /** Each peer's contacts, whichever end dials (closest first). */
  contacts: number[][]
  /** Each peer's other peers, closest first. */
  byDistance: number[][]
}

/**
 * For peers with these kad IDs (sha2-256 of the peer ID, see
 * kad-distance.ts), plans who dials whom.
 */
export function planContacts (kadIds: Uint8Array[], init: ContactPlanInit): ContactPlan {
  const n = kadIds.length
  const near = init.near ?? CONTACT_PLAN_NEAR
  const perBucket = init.perBucket ?? CONTACT_PLAN_PER_BUCKET
  const minContacts = Math.min(init.minContacts, n - 1)
  const byDistance = kadIds.map((self, i) => Array.from({ length: n }, (_, j) => j)
    .filter(j => j !== i)
    .sort((a, b) => compareDistance(self, kadIds[a], kadIds[b])))
  const contacts = kadIds.map(() => new Set<number>())
  const connect = (a: number, b: number): void => { contacts[a].add(b); contacts[b].add(a) }

  for (let i = 0; i < n; i++) {
    const others = byDistance[i]
    others.slice(0, near).forEach(j => { connect(i, j) })
    const taken = new Map<number, number>()
    for (const j of others) {
      const cpl = commonPrefixLength(kadIds[i], kadIds[j])
      const count = taken.get(cpl) ?? 0
      if (count < perBucket) {
        taken.set(cpl, count + 1)
        connect(i, j)
      }
    }
  }
  // peers still short: connect them to their closest peers, first to those
  // short too (one connection then counts for both), then to any
  const short = (i: number): boolean => contacts[i].size < minContacts
  for (const pairWithShortOnly of [true, false]) {
    for (let i = 0; i < n; i++) {
      for (const j of byDistance[i]) {
        if (!short(i)) break
        if (!contacts[i].has(j) && (!pairWithShortOnly || short(j))) connect(i, j)
      }
    }
  }

  // each edge once, dialled by the end with fewer dials so far; edges taken
  // in turns (every peer's first edge, then every peer's second, ...) so no
  // peer is left with a long queue of dials while others wait
  const dials = kadIds.map((): number[] => [])
  const lists = contacts.map((set, i) => [...set].filter(j => j > i))
  for (let round = 0; lists.some(list => list.length > round); round++) {
    lists.forEach((list, i) => {
      const j = list[round]
      if (j == null) return
      if (dials[i].length <= dials[j].length) dials[i].push(j)
      else dials[j].push(i)
    })
  }
  return { dials, contacts: byDistance.map((others, i) => others.filter(j => contacts[i].has(j))), byDistance }
}
