/**
 * How `swarm up` joins its peers once they are all running, besides the
 * contact plan (contact-plan.ts): a Chord ring one peer at a time in ring
 * order, a deployment-like join through seed peers, and the waits until
 * the Chord ring is correct at every peer and every Kademlia routing
 * table is full.
 */
import type { ApiClient } from '../api/client.ts'
import { DHT_K_BUCKET_SIZE } from '../constants.ts'
import { mapConcurrent, waitFor } from '../utils/wait.ts'
import { PREDECESSOR_SHORTFALL, routingShortfall, SwarmRing } from './routable.ts'
import type { SwarmPeerInfo } from './swarm-file.ts'

/** Peers joining through the seeds at once (each join dials and looks itself up). */
const BOOTSTRAP_JOIN_CONCURRENCY = 8
/**
 * On Chord: a join is one lookup and one state query, and joiners that land
 * in the same gap are sorted out by stabilize; more at once fill the ring
 * sooner.
 */
const CHORD_BOOTSTRAP_JOIN_CONCURRENCY = 32
/** Status polls cost the daemons CPU too: once a second is plenty. */
export const SWARM_POLL_INTERVAL_MS = 1_000

export interface SwarmJoinOptions {
  signal?: AbortSignal
  /** Chord's successor list length the swarm runs with (config `chord.successorListLength`). */
  successorListLength?: number
  onProgress?: (event: { name: 'swarm:routing', routable: number, total: number }) => void
}

/**
 * Puts a swarm's peers on one Chord ring. Peers that all join at once while
 * each is still a ring of its own can form several rings, or one that
 * loops around twice, and no stabilization undoes that (Chord's correctness
 * needs one ring that newcomers join). So the launcher, which knows the true
 * ring, lets them join one at a time against ring order, each through the
 * peer after it: that peer is on the ring and is the newcomer's true
 * successor, whose successor list (of peers that joined before) is already
 * right, so the newcomer's list is right from the start. Stabilization then
 * fixes predecessors and the lists that wrap around past the last joiner.
 */
export async function joinRing (clients: ApiClient[], peers: SwarmPeerInfo[], deadline: number, options: SwarmJoinOptions): Promise<void> {
  const order = new SwarmRing(peers.map(p => p.peerId)).order.map(id => peers.findIndex(p => p.peerId === id))
  for (let j = order.length - 2; j >= 0; j--) {
    const [after, index] = [order[j + 1], order[j]]
    await clients[index].join(peers[after].multiaddrs, { signal: options.signal, timeoutMs: Math.max(1, deadline - Date.now()) })
  }
}

/**
 * Puts a swarm's peers on one Chord ring at once, when every successor
 * list is shorter than the ring: the launcher knows the true ring, so it
 * hands each peer its successor list and its fingers (JoinOptions), `concurrency`
 * peers at a time in `order`; each adopts it, reaches its successor and
 * notifies it, and stabilization checks every list as it checks any. No
 * peer looks anything up through peers that have not joined yet, so no
 * side ring can form; joining them one at a time (joinRing) took a
 * sequential API round trip per peer.
 *
 * A seed fails when the successor does not answer in time (at 1,000
 * peers on 2 cores, the start's connection storm delays some answers
 * past Chord's query timeout): such a peer would stay alone until
 * waitRing found it, while the peers around it dropped it from their
 * lists. Failed seeds are handed out again at once, up to SEED_ATTEMPTS.
 */
export async function seedRing (clients: ApiClient[], peers: SwarmPeerInfo[], order: number[], concurrency: number, deadline: number, options: SwarmJoinOptions): Promise<RingSeeder> {
  const seeder = new RingSeeder(clients, peers, deadline, options)
  let left = order
  for (let attempt = 0; attempt < SEED_ATTEMPTS && left.length > 0; attempt++) {
    const failed: number[] = []
    await mapConcurrent(left, concurrency, async i => { if (!await seeder.seed(i)) failed.push(i) })
    left = failed
  }
  return seeder
}

/** Times a peer's seed is handed out before waitRing takes over. */
const SEED_ATTEMPTS = 3

/** Hands one peer its place on the true ring (seedRing). */
export class RingSeeder {
  private readonly clients: ApiClient[]
  private readonly peers: SwarmPeerInfo[]
  private readonly ring: SwarmRing
  private readonly index: Map<string, number>
  private readonly deadline: number
  private readonly options: SwarmJoinOptions

  constructor (clients: ApiClient[], peers: SwarmPeerInfo[], deadline: number, options: SwarmJoinOptions) {
    this.clients = clients
    this.peers = peers
    this.ring = new SwarmRing(peers.map(p => p.peerId), options.successorListLength)
    this.index = new Map(peers.map((p, i) => [p.peerId, i]))
    this.deadline = deadline
    this.options = options
  }

  /** Hands peer `i` its successor list and fingers; resolves whether it reached its successor. */
  async seed (i: number): Promise<boolean> {
    const addrs = (ids: string[]): string[] => ids.flatMap(id => this.peers[this.index.get(id)!].multiaddrs)
    const successors = this.ring.successorsOf(this.peers[i].peerId)
    const fingers = this.ring.fingersOf(this.peers[i].peerId).filter(id => !successors.includes(id))
    const { connected } = await this.clients[i].join(addrs(successors), { successors: true, fingers: addrs(fingers), signal: this.options.signal, timeoutMs: Math.max(1, this.deadline - Date.now()) })
    return connected > 0
  }
}

/**
 * A swarm joined as a deployment would: the seeds (the first peers started)
 * join each other one at a time, then every other peer joins through the
 * seeds alone (`seedsOf`), BOOTSTRAP_JOIN_CONCURRENCY at once
 * (CHORD_BOOTSTRAP_JOIN_CONCURRENCY on Chord), and finds the
 * rest of the swarm through the overlay: Kademlia by looking itself up,
 * Chord by finding its successor and stabilizing.
 */
export async function joinThroughSeeds (clients: ApiClient[], seeds: number[], addrs: (list: number[]) => string[], lookUpSelf: boolean, deadline: number, options: SwarmJoinOptions): Promise<void> {
  const timeoutMs = (): number => Math.max(1, deadline - Date.now())
  const join = async (i: number, through: number[]): Promise<void> => {
    await clients[i].join(addrs(through), { signal: options.signal, timeoutMs: timeoutMs() })
    // Kademlia: the peer looks itself up through them, which fills its table
    if (lookUpSelf) await clients[i].refreshRouting({ signal: options.signal, timeoutMs: timeoutMs() })
  }
  // each seed through the seeds before it (seed 0 starts the network)
  for (let i = 1; i < seeds.length; i++) await join(seeds[i], seeds.slice(0, i))
  const rest = clients.map((_, i) => i).filter(i => !seeds.includes(i))
  await mapConcurrent(rest, lookUpSelf ? BOOTSTRAP_JOIN_CONCURRENCY : CHORD_BOOTSTRAP_JOIN_CONCURRENCY, async i => { await join(i, seeds) })
}

/** Polls a planned Chord peer handed its list again is left to stabilize before it is handed it once more. */
const RESEED_POLLS = 10

/** Peers polled at once while a swarm's routing state settles (each poll holds a file in its peer's host). */
const POLL_CONCURRENCY = 64

/**
 * Waits until the Chord ring is correct at every peer (routable.ts). A peer
 * on no ring (its join failed) joins again through `rejoin(i)` (default:
 * the peer after it in the true ring). A planned swarm passes its seeder:
 * a peer whose successor list is still wrong at its next poll is handed
 * its place again. Under a start's load a successor that answers late is
 * dropped as dead, and at 1,000 peers some peers ended up holding each
 * other's lists (a crossed pair, a cycle of five): each list agrees with
 * the predecessor its first successor names, so no stabilize repairs it.
 */
export async function waitRing (clients: ApiClient[], peers: SwarmPeerInfo[], deadline: number, options: SwarmJoinOptions, rejoin?: (i: number) => string[], seeder?: Pick<RingSeeder, 'seed'>): Promise<void> {
  const ids = peers.map(p => p.peerId)
  const ring = new SwarmRing(ids, options.successorListLength)
  const routable = { overlay: 'chord' as const, kBucketSize: DHT_K_BUCKET_SIZE, successorListLength: options.successorListLength }
  const short = new Map<number, string>(ids.map((_, i) => [i, 'not asked yet']))
  /** Peers whose list was wrong at the last poll. */
  let wrongList = new Set<number>()
  /** The poll at which a peer was last handed its list again. */
  const reseeded = new Map<number, number>()
  let polls = 0
  await waitFor(async () => {
    polls++
    const wrongNow = new Set<number>()
    // a bounded number of API requests at once: each holds a file in its peer's host
    await mapConcurrent([...short.keys()], POLL_CONCURRENCY, async i => {
      const routing = await clients[i].routing({ signal: options.signal })
      const why = routingShortfall(routing, ids, routable, ring)
      if (why == null) {
        short.delete(i)
        return
      }
      short.set(i, why)
      const after = ring.successorsOf(ids[i])[0]
      if (seeder != null && why !== PREDECESSOR_SHORTFALL) {
        // wrong twice in a row: stabilize is not getting there; a peer
        // handed its list is left to stabilize for RESEED_POLLS polls
        // (every seed is a dial and a stabilize more on a loaded machine)
        const seededAt = reseeded.get(i)
        if (wrongList.has(i) && (seededAt == null || polls - seededAt >= RESEED_POLLS)) {
          reseeded.set(i, polls)
          await seeder.seed(i)
        } else wrongNow.add(i)
        return
      }
      if (routing.overlay === 'chord' && routing.successors.length === 0 && after != null) {
        const through = rejoin?.(i) ?? peers[ids.indexOf(after)].multiaddrs
        await clients[i].join(through, { signal: options.signal, timeoutMs: Math.max(1, deadline - Date.now()) })
      }
    })
    wrongList = wrongNow
    options.onProgress?.({ name: 'swarm:routing', routable: ids.length - short.size, total: ids.length })
    return short.size === 0
  }, {
    timeoutMs: Math.max(0, deadline - Date.now()),
    intervalMs: SWARM_POLL_INTERVAL_MS,
    signal: options.signal,
    message: () => `Chord ring not correct in time at ${short.size} of ${ids.length} peers (${[...short].slice(0, 5).map(([i, why]) => `peer-${i}: ${why}`).join(', ')})`
  })
}


/**
 * What a Kademlia peer whose table stopped growing does: a planned swarm's
 * peer dials its contacts again, with `extra` more of its closest peers
 * (one more each time it is still short); a bootstrap swarm's joins
 * through the seeds again and looks itself up.
 */
export type TableRetry =
  | { contacts: (i: number, extra: number) => string[] }
  | { seeds: (i: number) => string[] }

/**
 * Waits until every Kademlia routing table holds `need` peers (routable.ts's
 * threshold); in a bootstrap swarm, also until each peer's join is over
 * (its self-lookups and bucket refresh, which fill the far buckets lookups
 * need, have finished).
 */
export async function waitTables (clients: ApiClient[], need: number, retry: TableRetry, deadline: number, options: SwarmJoinOptions): Promise<void> {
  const count = clients.length
  const sizes = new Array<number>(count).fill(0)
  const joining = new Array<boolean>(count).fill(true)
  const retries = new Array<number>(count).fill(0)
  const waitsForJoin = 'seeds' in retry
  const routable = (i: number): boolean => sizes[i] >= need && !(waitsForJoin && joining[i])
  await waitFor(async () => {
    await mapConcurrent(clients, POLL_CONCURRENCY, async (client, i) => {
      if (routable(i)) return
      const before = sizes[i]
      const { dht } = await client.status({ signal: options.signal })
      sizes[i] = dht.routingTableSize
      joining[i] = dht.refreshing
      // still growing (contacts that dialled it are being identified), or
      // still joining: no new dials yet
      if (sizes[i] >= need || sizes[i] > before || (waitsForJoin && joining[i])) return
      // stalled: a dial failed (or a connection dropped): this peer dials all its
      // contacts itself (libp2p reuses the connections it has), then one
      // more of its closest peers each time it is still short
      // (a bootstrap swarm: it looks itself up again, through its seeds
      // in case it lost every connection)
      if ('seeds' in retry) {
        await client.join(retry.seeds(i), { signal: options.signal, timeoutMs: Math.max(1, deadline - Date.now()) })
        const refreshed = await client.refreshRouting({ signal: options.signal, timeoutMs: Math.max(1, deadline - Date.now()) })
        sizes[i] = refreshed.routingTableSize
        joining[i] = refreshed.refreshing
        return
      }
      sizes[i] = (await client.join(retry.contacts(i, retries[i]++), { signal: options.signal, timeoutMs: Math.max(1, deadline - Date.now()) })).routingTableSize
    })
    options.onProgress?.({ name: 'swarm:routing', routable: sizes.filter((_, i) => routable(i)).length, total: count })
    return sizes.every((_, i) => routable(i))
  }, {
    timeoutMs: Math.max(0, deadline - Date.now()),
    intervalMs: SWARM_POLL_INTERVAL_MS,
    signal: options.signal,
    message: () => {
      const short = sizes.map((s, i) => [i, s]).filter(([i]) => !routable(i))
      return `swarm not routable in time: ${short.length} of ${count} peers know fewer than ${need} peers or are still joining (${short.slice(0, 5).map(([i, s]) => `peer-${i}: ${s}${joining[i] ? ', joining' : ''}`).join(', ')})`
    }
  })
}
