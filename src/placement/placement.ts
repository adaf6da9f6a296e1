/**
 * Placement: every block of a shared DAG goes to the k peers closest to its
 * key (XOR, as kad-dht measures it), and the root is announced as a provider
 * record. The receiving side (StoreServer) runs here too.
 *
 * Finding the closest peers is planned for all blocks at once
 * (ClosestPlanner: a handful of DHT lookups, not one per block); then one
 * store stream per target peer pushes that peer's blocks, several peers at
 * a time.
 */
import { peerIdFromString } from '@libp2p/peer-id'
import type { Logger } from '@libp2p/interface'
import type { CID } from 'multiformats/cid'
import { compareDistance, kadIdOfKey, kadIdOfPeer } from '../peer/kad-distance.ts'
import type { ShoalNode } from '../peer/libp2p.ts'
import type { ContentStore } from '../store/content-store.ts'
import { mapConcurrent } from '../utils/wait.ts'
import { STORE_PROTOCOL, storeStatusName } from '../wire/store-messages.ts'
import { ClosestPlanner } from './closest-planner.ts'
import type { PlacementMetrics } from './metrics.ts'
import { isHeld, StoreSession } from './store-client.ts'
import { MAX_INBOUND_STORE_STREAMS, StoreServer } from './store-server.ts'

/** Target peers pushed to at once. */
export const PUSH_PEERS_AT_ONCE = 8
/** How long a disconnected peer is left out of this peer's own rank. */
const GONE_MEMORY_MS = 10 * 60_000
/** How long share waits for the provider record of the root. */
export const PROVIDE_TIMEOUT_MS = 30_000

export interface PlacementInit {
  node: ShoalNode
  content: ContentStore
  lookupSize: number
  routingTablePeers: () => string[]
  lookup: (key: Uint8Array, signal?: AbortSignal) => Promise<string[]>
  log: Logger
  metrics?: PlacementMetrics
}

export interface BlockPlacement {
  cid: string
  /** The k closest peers (this peer included when it is one of them). */
  closest: string[]
  /** Of those, the ones that hold the block now. */
  holders: string[]
}

export interface PlaceResult {
  target: number
  /** Fewest copies any block has on its k closest. */
  min: number
  complete: boolean
  blocks: BlockPlacement[]
  /** Whether the root's provider record was announced. */
  announced: boolean
  lookups: number
  /** Time spent finding closest peers, and moving bytes (ms). */
  planMs: number
  pushMs: number
  bytesPushed: number
  /** Refusals and failures by reason, e.g. { NOT_CLOSEST: 2 }. */
  refused: Record<string, number>
}

export interface PlaceOptions {
  signal?: AbortSignal
  /** Blocks acknowledged so far, of `total` (block x peer) pushes. */
  onProgress?: (done: number, total: number) => void
}

export class Placement {
  readonly server: StoreServer
  readonly node: ShoalNode
  private readonly init: PlacementInit
  private readonly selfId: string
  private readonly kadIds = new Map<string, Uint8Array>()

  constructor (init: PlacementInit) {
    this.init = init
    this.node = init.node
    this.selfId = init.node.peerId.toString()
    this.server = new StoreServer({
      content: init.content,
      rankOf: key => this.rankOf(key),
      log: init.log,
      onStored: bytes => init.metrics?.replicaStored(bytes),
      onRefused: status => init.metrics?.replicaRefused(storeStatusName(status))
    })
  }

  async start (): Promise<void> {
    this.init.node.addEventListener('peer:disconnect', this.onDisconnect)
    this.init.node.addEventListener('peer:connect', this.onConnect)
    await this.init.node.handle(STORE_PROTOCOL, this.server.handle, {
      maxInboundStreams: MAX_INBOUND_STORE_STREAMS,
      maxOutboundStreams: 16
    })
  }

  async stop (): Promise<void> {
    this.init.node.removeEventListener('peer:disconnect', this.onDisconnect)
    this.init.node.removeEventListener('peer:connect', this.onConnect)
    await this.init.node.unhandle(STORE_PROTOCOL)
  }

  /**
   * Peers that disconnected and have not come back, with when. Routing
   * tables keep a peer that left until it fails a query, and a receiver
   * that counted those as closer than itself would refuse the very blocks
   * repair needs to move to it.
   */
  private readonly gone = new Map<string, number>()

  private readonly onDisconnect = (evt: CustomEvent<{ toString: () => string }>): void => {
    const now = Date.now()
    this.gone.set(evt.detail.toString(), now)
    for (const [id, at] of this.gone) if (now - at > GONE_MEMORY_MS) this.gone.delete(id)
  }

  private readonly onConnect = (evt: CustomEvent<{ toString: () => string }>): void => {
    this.gone.delete(evt.detail.toString())
  }

  kadIdOf (peerId: string): Uint8Array {
    let id = this.kadIds.get(peerId)
    if (id == null) {
      id = kadIdOfPeer(peerIdFromString(peerId))
      this.kadIds.set(peerId, id)
    }
    return id
  }

  /** This peer's rank for a key among itself and its routing table (0 = closest). */
  rankOf (key: Uint8Array): number {
    const target = kadIdOfKey(key)
    const self = this.kadIdOf(this.selfId)
    let rank = 0
    for (const id of this.init.routingTablePeers()) {
      if (this.gone.has(id)) continue
      if (compareDistance(target, this.kadIdOf(id), self) < 0) rank++
    }
    return rank
  }

  planner (): ClosestPlanner {
    return new ClosestPlanner({
      selfId: this.selfId,
      routingTablePeers: () => this.init.routingTablePeers().filter(id => !this.gone.has(id)),
      lookup: this.init.lookup,
      lookupSize: this.init.lookupSize,
      kadIdOf: id => this.kadIdOf(id)
    })
  }

  /**
   * Pushes each block to its k closest peers and announces the root. This
   * peer must hold every block. Never throws for a peer that refuses or
   * fails: the result says how many copies each block got.
   */
  async place (root: CID, cids: CID[], k: number, options: PlaceOptions = {}): Promise<PlaceResult> {
    const { signal } = options
    const announcing = this.announce(root, signal)
    if (k === 0) {
      // k = 0: keep it here only and announce it (seeding, BitTorrent-style)
      return { target: 0, min: 0, complete: true, blocks: [], announced: await announcing, lookups: 0, planMs: 0, pushMs: 0, bytesPushed: 0, refused: {} }
    }
    const planStarted = performance.now()

    const planner = this.planner()
    let plan = await planner.plan(cids.map(c => c.multihash.bytes), k, signal)
    const planMs = performance.now() - planStarted
    const blocks: BlockPlacement[] = cids.map((cid, i) => ({
      cid: cid.toString(),
      closest: plan.closest[i],
      holders: plan.closest[i].includes(this.selfId) ? [this.selfId] : []
    }))
    let bytesPushed = 0
    let done = 0
    const refused: Record<string, number> = {}
    const pushStarted = performance.now()
    // Peers the routing table still lists may be gone: those that cannot be
    // reached are left out and the blocks they were to hold planned again.
    for (let round = 0; round < 3; round++) {
      const byPeer = new Map<string, number[]>()
      plan.closest.forEach((peers, i) => {
        for (const peer of peers) {
          if (peer === this.selfId || blocks[i].holders.includes(peer)) continue
          let list = byPeer.get(peer)
          if (list == null) byPeer.set(peer, list = [])
          list.push(i)
        }
      })
      const total = done + [...byPeer.values()].reduce((n, l) => n + l.length, 0)
      const unreachable: string[] = []
      await mapConcurrent([...byPeer], PUSH_PEERS_AT_ONCE, async ([peer, indexes]) => {
        let session: StoreSession | undefined
        try {
          session = await StoreSession.open(this.init.node, peer, signal)
        } catch (err) {
          signal?.throwIfAborted()
          unreachable.push(peer)
          this.init.log('placing on %s: unreachable (%s)', peer, (err as Error).message)
          return
        }
        try {
          await session.putMany(indexes.map(i => ({ cid: cids[i], load: async () => this.init.content.readBlock(cids[i], { verify: false }) })), k, (j, status, message, size) => {
            const i = indexes[j]
            if (isHeld(status)) {
              blocks[i].holders.push(peer)
              bytesPushed += size
              this.init.metrics?.placed(size)
            } else {
              const name = storeStatusName(status)
              refused[name] = (refused[name] ?? 0) + 1
              this.init.log('peer %s refused %s: %s %s', peer, cids[i], name, message)
            }
            options.onProgress?.(++done, total)
          }, signal)
          await session.close()
        } catch (err) {
          signal?.throwIfAborted()
          session.abort(err as Error)
          refused.FAILED = (refused.FAILED ?? 0) + 1
          this.init.log('placing on %s failed: %s', peer, (err as Error).message)
        }
      })
      if (unreachable.length === 0) break
      planner.exclude(unreachable)
      plan = await planner.plan(cids.map(c => c.multihash.bytes), k, signal)
      plan.closest.forEach((peers, i) => {
        blocks[i].closest = peers
        blocks[i].holders = blocks[i].holders.filter(h => peers.includes(h))
        if (peers.includes(this.selfId) && !blocks[i].holders.includes(this.selfId)) blocks[i].holders.push(this.selfId)
      })
      refused.UNREACHABLE = (refused.UNREACHABLE ?? 0) + unreachable.length
    }
    const pushMs = performance.now() - pushStarted
    const announced = await announcing
    const min = blocks.reduce((m, b) => Math.min(m, b.holders.length), Infinity)
    return {
      target: k,
      min: Number.isFinite(min) ? min : 0,
      complete: min >= k,
      blocks,
      announced,
      lookups: plan.lookups,
      planMs: Math.round(planMs),
      pushMs: Math.round(pushMs),
      bytesPushed,
      refused
    }
  }

  /**
   * Which of the given peers hold which blocks, by asking them; peers that
   * cannot be reached are listed apart.
   */
  async whoHas (cids: CID[], peersPerBlock: string[][], signal?: AbortSignal): Promise<{ holders: string[][], unreachable: string[] }> {
    const holders: string[][] = cids.map(() => [])
    const unreachable: string[] = []
    const byPeer = new Map<string, number[]>()
    peersPerBlock.forEach((peers, i) => {
      for (const peer of peers) {
        let list = byPeer.get(peer)
        if (list == null) byPeer.set(peer, list = [])
        list.push(i)
      }
    })
    await mapConcurrent([...byPeer], PUSH_PEERS_AT_ONCE, async ([peer, indexes]) => {
      if (peer === this.selfId) {
        // as other peers answer: blockstore copies only (not leaves kept in a user's fetched file)
        const held = await this.init.content.holdsBlocks(indexes.map(i => cids[i]))
        indexes.forEach((i, j) => { if (held[j]) holders[i].push(peer) })
        return
      }
      let session: StoreSession | undefined
      try {
        session = await StoreSession.open(this.init.node, peer, signal)
        const have = await session.has(indexes.map(i => cids[i]), signal)
        indexes.forEach((i, j) => { if (have[j]) holders[i].push(peer) })
        await session.close()
      } catch (err) {
        signal?.throwIfAborted()
        session?.abort(err as Error)
        unreachable.push(peer)
        this.init.log('asking %s what it holds failed: %s', peer, (err as Error).message)
      }
    })
    return { holders, unreachable }
  }

  /** Announces this peer as a provider of `root`; false if that failed. */
  private async announce (root: CID, signal?: AbortSignal): Promise<boolean> {
    // with no peer to tell, kad-dht's provide would wait for one
    if (this.init.routingTablePeers().length === 0) return false
    const timeout = AbortSignal.timeout(PROVIDE_TIMEOUT_MS)
    try {
      for await (const _ of this.init.node.services.dht.provide(root, { signal: signal != null ? AbortSignal.any([signal, timeout]) : timeout })) {}
      return true
    } catch (err) {
      this.init.log('announcing %s failed: %s', root, (err as Error).message)
      return false
    }
  }
}
