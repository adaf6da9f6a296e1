/**
 * Minimal libp2p nodes running the Chord overlay alone (TCP on 127.0.0.1 +
 * Noise + Yamux + identify + chord), in this process, plain ones that do
 * not speak Chord (a test plays the other side by hand), and a ring of them
 * with its truth: every live peer's position, sorted, so tests can say what
 * each peer's successor list and each key's responsible peers must be.
 */
import { noise } from '@chainsafe/libp2p-noise'
import { yamux } from '@chainsafe/libp2p-yamux'
import { identify, type Identify } from '@libp2p/identify'
import { tcp } from '@libp2p/tcp'
import type { PrivateKey } from '@libp2p/interface'
import type { Datastore } from 'interface-datastore'
import { createLibp2p, type Libp2p } from 'libp2p'
import { LOCAL_SWARM_ALLOW } from '../../src/constants.ts'
import { chord, type ChordInit, type ChordOverlay } from '../../src/routing/chord/index.ts'
import { RING_BITS } from '../../src/routing/chord/constants.ts'
import { clockwise, fingerStart } from '../../src/routing/chord/ring.ts'
import { toPosition } from '../../src/routing/chord/ring.ts'
import { mapConcurrent, waitFor } from '../../src/utils/wait.ts'
import { idOfPeer } from '../../src/routing/key-space.ts'

export type ChordNode = Libp2p<{ identify: Identify, chord: ChordOverlay }>

/**
 * Maintenance fast enough for tests, slow enough for 64 peers in one
 * process on a loaded 2-core machine. Killed peers refuse connections at
 * once, so the query timeout only guards against a starved event loop
 * taking a live peer for dead.
 */
export const FAST_TIMERS: ChordInit = {
  stabilizeIntervalMs: 500,
  fixFingersIntervalMs: 4_000,
  checkPredecessorIntervalMs: 4_000,
  queryTimeoutMs: 10_000
}

/** What a peer keeps across a restart: its key and its datastore (a fresh in-memory one each by default). */
export interface ChordNodeIdentity {
  privateKey?: PrivateKey
  datastore?: Datastore
}

export async function createChordNode (init: ChordInit = {}, identity: ChordNodeIdentity = {}): Promise<ChordNode> {
  return createLibp2p({
    ...identity,
    addresses: { listen: ['/ip4/127.0.0.1/tcp/0'] },
    transports: [tcp()],
    connectionEncrypters: [noise()],
    streamMuxers: [yamux()],
    connectionManager: { allow: [LOCAL_SWARM_ALLOW], maxConnections: 400 },
    connectionMonitor: { enabled: false },
    services: {
      identify: identify(),
      chord: chord({ ...FAST_TIMERS, ...init })
    }
  })
}

/** The same node without Chord: for a peer of another overlay, or a test that answers Chord by hand. */
export async function createPlainNode (): Promise<Libp2p> {
  return createLibp2p({
    addresses: { listen: ['/ip4/127.0.0.1/tcp/0'] },
    transports: [tcp()],
    connectionEncrypters: [noise()],
    streamMuxers: [yamux()],
    connectionManager: { allow: [LOCAL_SWARM_ALLOW] },
    connectionMonitor: { enabled: false },
    services: { identify: identify() }
  })
}

export class ChordTestRing {
  readonly nodes: ChordNode[] = []
  private readonly dead = new Set<ChordNode>()
  private readonly init: ChordInit

  constructor (init: ChordInit = {}) {
    this.init = init
  }

  /** `count` peers: the first alone, the others joining through it, `concurrency` at a time. */
  static async create (count: number, init: ChordInit = {}, concurrency = 8): Promise<ChordTestRing> {
    const ring = new ChordTestRing(init)
    try {
      await ring.add(1)
      await ring.add(count - 1, concurrency)
    } catch (err) {
      await ring.destroy()
      throw err
    }
    return ring
  }

  /**
   * `count` peers started alone, then each handed its next `r` peers as its
   * successor list (JoinOptions.successors, as `swarm up`'s plan does),
   * all at once; with `fingers`, its true fingers past that list too
   * (JoinOptions.fingers).
   */
  static async seeded (count: number, r: number, init: ChordInit = {}, seed: { fingers?: boolean } = {}): Promise<ChordTestRing> {
    const ring = new ChordTestRing({ ...init, successorListLength: r })
    try {
      const nodes = await mapConcurrent(Array.from({ length: count }), 8, async () => {
        const node = await createChordNode(ring.init)
        ring.nodes.push(node)
        return node
      })
      const sorted = ring.sorted()
      await Promise.all(nodes.map(async node => {
        const at = sorted.indexOf(node)
        const next = Array.from({ length: r }, (_, j) => sorted[(at + 1 + j) % sorted.length])
        const fingers = seed.fingers === true ? ring.handedFingers(node, next.map(n => n.peerId.toString())) : undefined
        const addr = (peer: ChordNode): string => peer.getMultiaddrs()[0].toString()
        const result = await node.services.chord.join(next.map(addr), { successors: true, fingers: fingers?.map(addr), signal: AbortSignal.timeout(60_000) })
        if (result.connected !== 1) throw new Error(`a peer could not reach its successor: ${JSON.stringify(result)}`)
      }))
    } catch (err) {
      await ring.destroy()
      throw err
    }
    return ring
  }

  /** Starts `count` more peers, each joining through the first live peer. */
  async add (count: number, concurrency = 8): Promise<ChordNode[]> {
    const bootstrap = this.live()[0]
    const added = await mapConcurrent(Array.from({ length: count }), concurrency, async () => {
      const node = await createChordNode(this.init)
      this.nodes.push(node)
      if (bootstrap != null) {
        const result = await node.services.chord.join([bootstrap.getMultiaddrs()[0].toString()], { signal: AbortSignal.timeout(60_000) })
        if (result.connected !== 1) throw new Error(`a peer could not join: ${JSON.stringify(result)}`)
      }
      return node
    })
    return added
  }

  live (): ChordNode[] {
    return this.nodes.filter(node => !this.dead.has(node))
  }

  /** Live peers in ring order. */
  sorted (): ChordNode[] {
    return [...this.live()].sort((a, b) => (positionOf(a) < positionOf(b) ? -1 : positionOf(a) > positionOf(b) ? 1 : 0))
  }

  /** Each live peer's place in ring order, computed once per check. */
  private order (): { sorted: ChordNode[], at: Map<ChordNode, number> } {
    const sorted = this.sorted()
    return { sorted, at: new Map(sorted.map((node, i) => [node, i])) }
  }

  /** What `node`'s successor list must be: the next r live peers clockwise (fewer in a smaller ring). */
  expectedSuccessors (node: ChordNode, r: number, order = this.order()): string[] {
    const { sorted, at } = order
    const list: string[] = []
    for (let i = 1; i < sorted.length && list.length < r; i++) list.push(sorted[(at.get(node)! + i) % sorted.length].peerId.toString())
    return list
  }

  expectedPredecessor (node: ChordNode, order = this.order()): string | undefined {
    const { sorted, at } = order
    if (sorted.length < 2) return undefined
    return sorted[(at.get(node)! - 1 + sorted.length) % sorted.length].peerId.toString()
  }

  /** The true k responsible peers of a key position: its successor and the next k-1 among live peers. */
  responsible (key: bigint, k: number): string[] {
    return this.live()
      .sort((a, b) => {
        const da = clockwise(key, positionOf(a))
        const db = clockwise(key, positionOf(b))
        return da < db ? -1 : da > db ? 1 : 0
      })
      .slice(0, k)
      .map(node => node.peerId.toString())
  }

  /** Peers whose successor list or predecessor is not yet what the live ring says. */
  unstable (r: number): string[] {
    const order = this.order()
    const wrong: string[] = []
    for (const node of this.live()) {
      const routing = node.services.chord.routing()
      if (routing.overlay !== 'chord') throw new Error('not a chord routing table')
      const want = this.expectedSuccessors(node, r, order)
      if (routing.successors.join() !== want.join() || routing.predecessor !== this.expectedPredecessor(node, order)) wrong.push(node.peerId.toString())
    }
    return wrong
  }

  /** Finger i of `node` as the live ring says: the successor of self + 2^i, for i = 0..255. */
  trueFingers (node: ChordNode): string[] {
    return Array.from({ length: RING_BITS }, (_, i) => this.responsible(fingerStart(positionOf(node), i), 1)[0])
  }

  /** What a launcher hands `node` as its fingers: its distinct true fingers, less itself and its successor list. */
  handedFingers (node: ChordNode, successors: string[]): ChordNode[] {
    const skip = new Set([node.peerId.toString(), ...successors])
    const ids = [...new Set(this.trueFingers(node))].filter(id => !skip.has(id))
    return ids.map(id => this.live().find(n => n.peerId.toString() === id)!)
  }

  /** Waits until every live peer's successor list is the next r live peers and its predecessor the previous one. */
  async waitStable (r: number, timeoutMs = 90_000): Promise<void> {
    await waitFor(() => this.unstable(r).length === 0, {
      timeoutMs,
      intervalMs: 100,
      message: () => `ring of ${this.live().length} not stable after ${timeoutMs} ms: ${this.unstable(r).length} peers off`
    })
  }

  /** Stops peers at once without a leave: their connections close, nothing is said. */
  async kill (nodes: ChordNode[]): Promise<void> {
    if (this.init.leaveOnStop !== false) throw new Error('a ring whose peers leave on stop cannot be killed: create it with leaveOnStop: false')
    for (const node of nodes) this.dead.add(node)
    await Promise.all(nodes.map(async node => { await node.stop() }))
  }

  /** Stops a peer whose stop() leaves the ring (leaveOnStop, the default). */
  async stop (node: ChordNode): Promise<void> {
    this.dead.add(node)
    await node.stop()
  }

  /** Graceful leave, then stop. */
  async leave (node: ChordNode): Promise<void> {
    this.dead.add(node)
    await node.services.chord.leave({ signal: AbortSignal.timeout(10_000) })
    await node.stop()
  }

  async destroy (): Promise<void> {
    await Promise.all(this.nodes.map(async node => {
      this.dead.add(node)
      try { await node.stop() } catch {}
    }))
  }
}

const positions = new WeakMap<ChordNode, bigint>()

export function positionOf (node: ChordNode): bigint {
  let position = positions.get(node)
  if (position == null) {
    position = toPosition(idOfPeer(node.peerId))
    positions.set(node, position)
  }
  return position
}
