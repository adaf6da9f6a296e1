/**
 * Placement: every block of a shared DAG goes to the k peers responsible for
 * its key (on Kademlia, the k closest by XOR), and the root is announced as
 * a provider record. The receiving side (StoreServer) runs here too.
 *
 * The responsible peers are planned for many blocks at once (the overlay's
 * planner: a handful of lookups, not one per block), as the blocks come
 * (place-stream.ts: a share places while it imports); one store stream per
 * target peer pushes that peer's blocks, each block read once for all its
 * targets.
 * Holders prove what they hold here too (/shoal/prove/1.0.0: repair asks
 * for proofs before it drops a copy).
 */
import type { ComponentLogger, Libp2p, Logger } from '@libp2p/interface'
import type { CID } from 'multiformats/cid'
import type { Overlay } from '../routing/index.ts'
import type { ContentStore } from '../store/content-store.ts'
import { mapConcurrent } from '../utils/wait.ts'
import { STORE_PROTOCOL, storeStatusName } from '../wire/store-messages.ts'
import type { PlacementMetrics } from './metrics.ts'
import { challengeHolder } from './prove-client.ts'
import { PROVE_PROTOCOL } from './prove-messages.ts'
import { MAX_INBOUND_PROVE_STREAMS, ProveServer } from './prove-server.ts'
import { PlaceStream, type BlockPlacement, type PlacedCopy } from './place-stream.ts'
import { isHeld, StoreSession } from './store-client.ts'
import { MAX_INBOUND_STORE_STREAMS, StoreServer } from './store-server.ts'
import { anySignal } from '../utils/signals.ts'

/** Target peers pushed to at once. */
export const PUSH_PEERS_AT_ONCE = 8
/** How long share waits for the provider record of the root. */
export const PROVIDE_TIMEOUT_MS = 30_000

export interface PlacementComponents {
  node: Pick<Libp2p, 'peerId' | 'handle' | 'unhandle' | 'dialProtocol'>
  overlay: Pick<Overlay, 'rank' | 'knownPeers' | 'planner' | 'provide'>
  content: ContentStore
  logger: ComponentLogger
}

export interface PlacementInit {
  metrics?: PlacementMetrics
  /** This peer's replica count (config `replicas`): the k it ranks itself against when a block is placed here. */
  replicas?: number
}

export type { BlockPlacement }

/** What `handOff` did: blocks this peer was among the k closest of, copies now on the next closest, copies refused or failed. */
export interface HandOffResult {
  blocks: number
  copies: number
  failed: number
}

/** Placement fed block by block (Placement.stream). */
export interface PlacementStream {
  /** A block now held here, with its size when known. */
  add: (cid: CID, size?: number) => void
  /** The blocks will never all come: what is under way stops. */
  abort: (reason: Error) => void
  /** After the last block: every block's answers, and the root announced. */
  finish: (root: CID) => Promise<PlaceResult>
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
  /** Blocks acknowledged so far, of `total` (block x peer) pushes, and the copy just answered. */
  onProgress?: (done: number, total: number, copy: PlacedCopy) => void
}

export class Placement {
  readonly server: StoreServer
  readonly proveServer: ProveServer
  private readonly components: PlacementComponents
  private readonly init: PlacementInit
  private readonly log: Logger
  private readonly selfId: string

  constructor (components: PlacementComponents, init: PlacementInit = {}) {
    this.components = components
    this.init = init
    this.log = components.logger.forComponent('shoal:placement')
    this.selfId = components.node.peerId.toString()
    this.server = new StoreServer({
      content: components.content,
      // among the peers the overlay believes alive, this peer itself included
      rankOf: key => components.overlay.rank(key, this.selfId, components.overlay.knownPeers()),
      log: this.log,
      replicas: init.replicas,
      onStored: bytes => init.metrics?.replicaStored(bytes),
      onRefused: status => init.metrics?.replicaRefused(storeStatusName(status))
    })
    this.proveServer = new ProveServer({ content: components.content, log: this.log })
  }

  async start (): Promise<void> {
    await this.components.node.handle(STORE_PROTOCOL, this.server.handle, {
      maxInboundStreams: MAX_INBOUND_STORE_STREAMS,
      maxOutboundStreams: 16
    })
    await this.components.node.handle(PROVE_PROTOCOL, this.proveServer.handle, {
      maxInboundStreams: MAX_INBOUND_PROVE_STREAMS,
      maxOutboundStreams: 16
    })
  }

  async stop (): Promise<void> {
    await this.components.node.unhandle(STORE_PROTOCOL)
    await this.components.node.unhandle(PROVE_PROTOCOL)
  }

  /**
   * Pushes each block to its k closest peers and announces the root. This
   * peer must hold every block. Never throws for a peer that refuses or
   * fails: the result says how many copies each block got.
   */
  async place (root: CID, cids: CID[], k: number, options: PlaceOptions = {}): Promise<PlaceResult> {
    const stream = this.stream(k, options)
    for (const cid of cids) stream.add(cid)
    return stream.finish(root)
  }

  /**
   * Placement while the blocks are still being produced (an import): `add`
   * each block once it is stored here, `finish(root)` after the last one;
   * `abort` if the blocks will never all come.
   */
  stream (k: number, options: PlaceOptions = {}): PlacementStream {
    const { signal } = options
    if (k === 0) {
      // k = 0: keep it here only and announce it (seeding, BitTorrent-style)
      return {
        add: () => {},
        abort: () => {},
        finish: async root => ({ target: 0, min: 0, complete: true, blocks: [], announced: await this.announce(root, signal), lookups: 0, planMs: 0, pushMs: 0, bytesPushed: 0, refused: {} })
      }
    }
    const pushes = new PlaceStream({
      node: this.components.node,
      planner: this.components.overlay.planner(),
      readBlock: async cid => this.components.content.readBlock(cid),
      selfId: this.selfId,
      log: this.log,
      metrics: this.init.metrics
    }, k, options)
    return {
      add: (cid, size) => { pushes.add(cid, size) },
      abort: reason => { pushes.abort(reason) },
      finish: async root => {
        const announcing = this.announce(root, signal)
        const totals = await pushes.finish()
        const announced = await announcing
        const min = totals.blocks.reduce((m, b) => Math.min(m, b.holders.length), Infinity)
        return { target: k, min: Number.isFinite(min) ? min : 0, complete: min >= k, announced, ...totals }
      }
    }
  }

  /**
   * Before this peer lets go of blocks: each one of them for which it is
   * among the k closest goes to the k closest without it (the next closest
   * takes its place), to those that do not hold it yet, so the swarm does
   * not drop to k-1 copies until a repair pass notices. Never throws for a
   * peer that refuses or fails: the result counts the copies handed on.
   */
  async handOff (cids: CID[], k: number, signal?: AbortSignal): Promise<HandOffResult> {
    const result: HandOffResult = { blocks: 0, copies: 0, failed: 0 }
    // nobody to hand them to (a planner with no candidate left would look forever)
    if (cids.length === 0 || k === 0 || this.components.overlay.knownPeers().length === 0) return result
    const planner = this.components.overlay.planner()
    const withSelf = await planner.plan(cids.map(c => c.multihash.bytes), k, { signal })
    const mine = cids.filter((_, i) => withSelf.responsible[i].includes(this.selfId))
    if (mine.length === 0) return result
    result.blocks = mine.length
    planner.exclude([this.selfId])
    const next = await planner.plan(mine.map(c => c.multihash.bytes), k, { signal })
    const { holders } = await this.whoHas(mine, next.responsible, signal)
    const byPeer = new Map<string, number[]>()
    next.responsible.forEach((peers, i) => {
      for (const peer of peers) {
        if (holders[i].includes(peer)) continue
        let list = byPeer.get(peer)
        if (list == null) byPeer.set(peer, list = [])
        list.push(i)
      }
    })
    await mapConcurrent([...byPeer], PUSH_PEERS_AT_ONCE, async ([peer, indexes]) => {
      let session: StoreSession | undefined
      try {
        session = await StoreSession.open(this.components.node, peer, signal)
        await session.putMany(indexes.map(i => ({ cid: mine[i], load: async () => this.components.content.readBlock(mine[i]) })), k, (_j, status, message, size) => {
          if (isHeld(status)) {
            result.copies++
            this.init.metrics?.placed(size)
          } else {
            result.failed++
            this.log('handing a block to %s: refused, %s %s', peer, storeStatusName(status), message)
          }
        }, signal)
        await session.close()
      } catch (err) {
        signal?.throwIfAborted()
        session?.abort(err as Error)
        result.failed += indexes.length
        this.log('handing blocks to %s failed: %s', peer, (err as Error).message)
      }
    })
    return result
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
        const held = await this.components.content.holdsBlocks(indexes.map(i => cids[i]))
        indexes.forEach((i, j) => { if (held[j]) holders[i].push(peer) })
        return
      }
      let session: StoreSession | undefined
      try {
        session = await StoreSession.open(this.components.node, peer, signal)
        const have = await session.has(indexes.map(i => cids[i]), signal)
        indexes.forEach((i, j) => { if (have[j]) holders[i].push(peer) })
        await session.close()
      } catch (err) {
        signal?.throwIfAborted()
        session?.abort(err as Error)
        unreachable.push(peer)
        this.log('asking %s what it holds failed: %s', peer, (err as Error).message)
      }
    })
    return { holders, unreachable }
  }

  /**
   * Of the peers that say they hold each block, the ones that prove it
   * (/shoal/prove/1.0.0, a fresh nonce per request, checked against this
   * peer's own copy). A peer that cannot be asked or answers out of
   * protocol proves nothing.
   */
  async proveHolders (cids: CID[], claimedPerBlock: string[][], signal?: AbortSignal): Promise<string[][]> {
    const proven: string[][] = cids.map(() => [])
    const byPeer = new Map<string, number[]>()
    claimedPerBlock.forEach((peers, i) => {
      for (const peer of peers) {
        if (peer === this.selfId) continue
        let list = byPeer.get(peer)
        if (list == null) byPeer.set(peer, list = [])
        list.push(i)
      }
    })
    const challenge = { node: this.components.node, readBlock: async (cid: CID) => this.components.content.readBlock(cid) }
    await mapConcurrent([...byPeer], PUSH_PEERS_AT_ONCE, async ([peer, indexes]) => {
      try {
        const ok = await challengeHolder(challenge, peer, indexes.map(i => cids[i]), signal)
        indexes.forEach((i, j) => {
          if (ok[j]) proven[i].push(peer)
          else this.init.metrics?.holderUnproven()
        })
      } catch (err) {
        signal?.throwIfAborted()
        indexes.forEach(() => this.init.metrics?.holderUnproven())
        this.log('asking %s to prove what it holds failed: %s', peer, (err as Error).message)
      }
    })
    return proven
  }

  /** Announces this peer as a provider of `root`; false if that failed. */
  private async announce (root: CID, signal?: AbortSignal): Promise<boolean> {
    const deadline = anySignal([signal], { timeoutMs: PROVIDE_TIMEOUT_MS, message: () => `announcing ${root} took over ${PROVIDE_TIMEOUT_MS / 1000} s` })
    try {
      await this.components.overlay.provide(root, { signal: deadline })
      return true
    } catch (err) {
      this.log('announcing %s failed: %s', root, (err as Error).message)
      return false
    } finally {
      deadline.clear()
    }
  }
}
