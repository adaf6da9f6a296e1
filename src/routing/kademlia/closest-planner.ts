/**
 * Finds the k peers closest to each of many keys without a DHT walk per key:
 * Kademlia's ResponsiblePlanner.
 *
 * A lookup for a key X returns the DHT's closest peers S to X (kad-dht's k,
 * 20 by default), so every peer outside S is farther from X than the
 * farthest of S (the lookup's radius r). For another key T, XOR distance
 * obeys d(p,T) >= d(p,X) - d(X,T), so every peer outside S is farther from T
 * than r - d(X,T). If the k-th closest candidate c_k we know for T has
 * d(c_k,T) <= r - d(X,T), no unknown peer can beat it: T's k closest are
 * known exactly, and T needs no lookup of its own. A lookup that returns
 * fewer peers than the DHT's k has seen the whole network and covers every
 * key. Keys are sorted by their keyspace position and looked up (one, then four at a
 * time) until every key is covered: in a 20-peer swarm one lookup covers a
 * whole file; in a large one, one lookup per region of the keyspace.
 * Candidates are every peer seen: the routing table, all lookup results,
 * and this peer itself.
 *
 * How wide each lookup is: a lookup for the DHT's k (20) must hear from
 * about 20 peers, one for the k asked here (3) from a handful. The wide one
 * pays off only when many keys share each region it proves: with fewer keys
 * than the network has regions of 20 peers (a repair pass over a peer's few
 * replicas, a stat of a small file in a large swarm), each key is looked up
 * for its own k instead, which is what the proof needs at the key itself.
 * The network's size is estimated from the routing table (how close this
 * peer's nearest known neighbours are); a table that underestimates it
 * only makes the planner choose the wide lookups.
 */
import type { AbortOptions } from '@libp2p/interface'
import type { PlanResult, ResponsiblePlanner } from '../index.ts'
import { kadIdOfKey } from './kad-distance.ts'

export interface ClosestPlannerComponents {
  /** This peer's ID (a candidate like any other). */
  selfId: string
  /** Peer IDs in the routing table that are believed alive. */
  knownPeers: () => string[]
  /** A DHT lookup: the `count` peer IDs closest to the key, closest first (not self). */
  lookup: (key: Uint8Array, count: number, options?: AbortOptions) => Promise<string[]>
  /** kad-dht's k: the most peers a lookup returns. */
  lookupSize: number
  /** Keyspace ID of a peer (sha2-256 of its multihash). */
  idOfPeer: (peerId: string) => Uint8Array
}

interface Lookup {
  target: bigint
  /** Distance to the farthest returned peer; Infinity-like when complete. */
  radius: bigint
  complete: boolean
}

const LOOKUPS_AT_ONCE = 4
/** Nearest known peers the network's size is estimated from. */
const NEIGHBOURS = 8

export class ClosestPlanner implements ResponsiblePlanner {
  private readonly components: ClosestPlannerComponents
  private readonly kadIds = new Map<string, bigint>()
  private readonly candidates = new Set<string>()
  private readonly excluded = new Set<string>()
  private readonly lookups: Lookup[] = []
  private lookupCount = 0

  constructor (components: ClosestPlannerComponents) {
    this.components = components
    this.addCandidate(components.selfId)
    for (const id of components.knownPeers()) this.addCandidate(id)
  }

  /** The k closest peers to each key (keys: e.g. a CID's multihash bytes), closest first. */
  async plan (keys: Uint8Array[], k: number, options: AbortOptions = {}): Promise<PlanResult> {
    const { signal } = options
    const started = performance.now()
    // a lookup never returns more than lookupSize peers, so no radius could
    // ever prove a larger k: plan at most that many
    k = Math.min(k, this.components.lookupSize)
    const targets = keys.map(key => toBigInt(kadIdOfKey(key)))
    const responsible: string[][] = new Array(keys.length)
    // keyspace order, so one lookup's neighbourhood serves the keys next to it
    let pending = targets.map((_, i) => i).sort((a, b) => (targets[a] < targets[b] ? -1 : targets[a] > targets[b] ? 1 : 0))
    const { lookupSize } = this.components
    // each key its own lookup for its k (and the excluded peers it may name), unless keys share regions
    const width = keys.length < this.estimatedRegions() ? Math.min(lookupSize, k + this.excluded.size) : lookupSize
    /** Keys looked up themselves, and how wide. */
    const lookedWith = new Map<number, number>()
    while (pending.length > 0) {
      signal?.throwIfAborted()
      const uncovered: number[] = []
      for (const i of pending) {
        const best = this.closestKnown(targets[i], k)
        // a key looked up at full width and still unproven (more of its
        // closest excluded than the lookup could return past them): the
        // best known is all a lookup can give
        if (this.isCovered(targets[i], best) || lookedWith.get(i) === lookupSize) responsible[i] = best
        else uncovered.push(i)
      }
      if (uncovered.length === 0) break
      // spread this round's lookups over the uncovered keys; the very first
      // lookup runs alone, since in a small swarm it covers everything
      const perRound = Math.min(this.lookupCount === 0 ? 1 : LOOKUPS_AT_ONCE, uncovered.length)
      const picks = new Set<number>()
      const step = uncovered.length / perRound
      for (let j = 0; j < perRound; j++) picks.add(uncovered[Math.floor(j * step)])
      await Promise.all([...picks].map(async i => {
        // a key its own narrow lookup did not prove is looked up at full width
        const count = lookedWith.has(i) ? lookupSize : width
        lookedWith.set(i, count)
        await this.lookup(keys[i], targets[i], count, signal)
      }))
      pending = uncovered
    }
    return { responsible, lookups: this.lookupCount, ms: performance.now() - started }
  }

  private async lookup (key: Uint8Array, target: bigint, count: number, signal?: AbortSignal): Promise<void> {
    const found = await this.components.lookup(key, count, { signal })
    this.lookupCount++
    for (const id of found) this.addCandidate(id)
    const complete = found.length < count
    const radius = found.length === 0 ? 0n : this.kadId(found[found.length - 1]) ^ target
    this.lookups.push({ target, radius, complete })
    if (found.length === 0 && !complete) this.lookups.pop()
  }

  private isCovered (target: bigint, best: string[]): boolean {
    // nobody to plan with (this peer excluded, no other known): once a
    // lookup came back complete and empty, there is nobody to find either
    if (best.length === 0) return this.lookups.some(l => l.complete)
    const kth = this.kadId(best[best.length - 1]) ^ target
    for (const l of this.lookups) {
      if (l.complete) return true
      const offset = l.target ^ target
      if (l.radius >= offset && kth <= l.radius - offset) return true
    }
    return false
  }

  /**
   * About how many regions of lookupSize peers the network has: its size
   * estimated from how close the NEIGHBOURS known peers nearest this one are
   * (m peers within distance d of a point: about m x 2^256 / d peers in
   * all). A table smaller than lookupSize says the network may be no bigger:
   * one region.
   */
  private estimatedRegions (): number {
    const self = this.kadId(this.components.selfId)
    const distances = [...this.candidates]
      .filter(id => id !== this.components.selfId)
      .map(id => this.kadId(id) ^ self)
      .sort((a, b) => (a < b ? -1 : a > b ? 1 : 0))
    if (distances.length < this.components.lookupSize) return 1
    const nearest = distances[NEIGHBOURS - 1]
    if (nearest === 0n) return 1
    const peers = Number((BigInt(NEIGHBOURS) << 256n) / nearest)
    return peers / this.components.lookupSize
  }

  private closestKnown (target: bigint, k: number): string[] {
    return [...this.candidates]
      .map(id => ({ id, d: this.kadId(id) ^ target }))
      .sort((a, b) => (a.d < b.d ? -1 : a.d > b.d ? 1 : 0))
      .slice(0, k)
      .map(e => e.id)
  }

  /** Leaves out peers found dead or unreachable; later plans pick the next closest. */
  exclude (ids: Iterable<string>): void {
    for (const id of ids) {
      this.excluded.add(id)
      this.candidates.delete(id)
    }
  }

  private addCandidate (id: string): void {
    if (!this.excluded.has(id)) this.candidates.add(id)
  }

  private kadId (id: string): bigint {
    let v = this.kadIds.get(id)
    if (v == null) {
      v = toBigInt(this.components.idOfPeer(id))
      this.kadIds.set(id, v)
    }
    return v
  }
}

function toBigInt (bytes: Uint8Array): bigint {
  return BigInt('0x' + Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('hex'))
}
