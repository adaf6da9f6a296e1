/**
 * The Overlay over kad-dht: responsibility is XOR closeness, the planner is
 * the ClosestPlanner, lookups are Shoal's iterative lookup over kad-dht's
 * routing table (closest-peers.ts) with its own query protocol,
 * /shoal/kad/find/1.0.0 (find-client.ts, find-server.ts: kept streams,
 * answers straight from the routing table and the KadAddressBook); a peer
 * that does not speak it is asked over kad-dht's FIND_NODE. Provider
 * records are kad-dht's. It runs as a libp2p service beside the `dht`
 * service, which it reads from its components.
 */
import { peerIdFromString } from '@libp2p/peer-id'
import { multiaddr } from '@multiformats/multiaddr'
import { equals as uint8ArrayEquals } from 'uint8arrays/equals'
import type { KadDHT } from '@libp2p/kad-dht'
import type {
  AbortOptions, ComponentLogger, Connection, IdentifyResult, Libp2pEvents, Logger, PeerId, PeerStore, Startable, TypedEventTarget
} from '@libp2p/interface'
import type { ConnectionManager, Registrar } from '@libp2p/interface-internal'
import type { Multiaddr } from '@multiformats/multiaddr'
import type { CID } from 'multiformats/cid'
import { BOOTSTRAP_DIAL_TIMEOUT_MS, DHT_PROTOCOL } from '../../constants.ts'
import { NoPeersError } from '../../errors.ts'
import { mapConcurrent } from '../../utils/wait.ts'
import type {
  KademliaRouting, LookupResult, Overlay, OverlayChange, ResponsiblePlanner
} from '../index.ts'
import { BucketRefresh } from './bucket-refresh.ts'
import { ClosestPlanner } from './closest-planner.ts'
import { kadLookup, type KadLookup, type KadLookupOptions } from './closest-peers.ts'
import {
  addOnlyConnectedContacts, findNode, pauseTableRefresh, routingTableContacts, skipPingOfConnectedContacts, skipStartupRandomWalk, watchRoutingTable
} from './kad-dht-internals.ts'
import { commonPrefixLength, compareDistance, kadIdOfKey, kadIdOfPeer } from './kad-distance.ts'
import { anySignal } from '../../utils/signals.ts'
import { isPrivateAddress } from '../private-addresses.ts'
import { KadAddressBook } from './address-book.ts'
import { KAD_FIND_PROTOCOL, MAX_CLOSER_PEERS, MAX_INBOUND_FIND_STREAMS, MAX_OUTBOUND_FIND_STREAMS, MIN_CLOSER_PEERS } from './constants.ts'
import { FindUnsupportedError } from './errors.ts'
import { FindClient } from './find-client.ts'
import { FindServer } from './find-server.ts'

/** Dials one join runs at once (a swarm joins all its peers together). */
export const JOIN_DIAL_CONCURRENCY = 2
/** Queries a join's self-lookup keeps in flight (kad-dht's own walk ran k/2 paths of 3). */
export const SELF_LOOKUP_PARALLELISM = 10
/** How long a disconnected peer is left out of knownPeers() (unless it comes back). */
export const GONE_MEMORY_MS = 10 * 60_000

export interface KademliaOverlayComponents {
  peerId: PeerId
  /** The kad-dht service (registered before this one). */
  dht: KadDHT
  /** libp2p's connection manager (the two methods used here). */
  connectionManager: {
    openConnection: (peer: Multiaddr, options?: AbortOptions & { priority?: number }) => Promise<unknown>
    getConnections: (peerId?: PeerId) => Connection[]
  } & Pick<ConnectionManager, 'openStream'>
  /** Registers /shoal/kad/find/1.0.0. */
  registrar: Pick<Registrar, 'handle' | 'unhandle'>
  /**
   * Addresses of peers a lookup learns of go in before kad-dht's FIND_NODE
   * dials them; answers read a peer's addresses from it once when identify
   * has not told them.
   */
  peerStore: Pick<PeerStore, 'merge' | 'get'>
  events: TypedEventTarget<Libp2pEvents>
  logger: ComponentLogger
}

export interface KademliaOverlayInit {
  /** See KademliaInit.plannedJoin. */
  plannedJoin?: boolean
  /** See KademliaInit.privateAddresses (default true). */
  privateAddresses?: boolean
  joinDialTimeoutMs?: number
}

export class KademliaOverlay implements Overlay, Startable {
  readonly name = 'kademlia'
  readonly protocol = DHT_PROTOCOL
  private readonly components: KademliaOverlayComponents
  private readonly init: KademliaOverlayInit
  private readonly log: Logger
  private readonly selfId: string
  private readonly ids = new Map<string, Uint8Array>()
  /**
   * Peers that disconnected and have not come back, with when. kad-dht's
   * table keeps a peer that left until it fails a query; counting such a
   * peer as responsible would make a receiver refuse the very blocks repair
   * needs to move to it, and plans would target it.
   */
  private readonly gone = new Map<string, number>()
  private readonly addresses: KadAddressBook
  private readonly server: FindServer
  private readonly client: FindClient
  /** The far buckets a bootstrap join refreshes after its self-lookup (a planned join's contacts fill them). */
  private readonly buckets: BucketRefresh
  private lifetime = new AbortController()
  private started = false

  constructor (components: KademliaOverlayComponents, init: KademliaOverlayInit = {}) {
    this.components = components
    this.init = init
    this.log = components.logger.forComponent('shoal:kademlia')
    this.selfId = components.peerId.toString()
    // before kad-dht starts: these replace what its start would set in
    // motion. The table takes the peers this one connects to (as
    // go-libp2p-kad-dht's does), not every peer a reply names: a join's
    // self-lookup and bucket refresh (bucket-refresh.ts) connect to the
    // peers that fill it, which also puts this peer in their tables
    // (kad-dht dialling and pinging every named peer instead made a swarm
    // joining through seeds much slower to become routable: docs/overlays.md)
    const isConnected = (peerId: PeerId): boolean => components.connectionManager.getConnections(peerId).some(c => c.status === 'open')
    skipPingOfConnectedContacts(components.dht, isConnected)
    addOnlyConnectedContacts(components.dht, isConnected)
    skipStartupRandomWalk(components.dht)
    this.addresses = new KadAddressBook(components.peerStore)
    this.server = new FindServer({
      closestPeers: (kadId, count, asker) => this.closestInTable(kadId, count, asker),
      addresses: this.addresses,
      shareable: init.privateAddresses === false ? addrs => addrs.filter(ma => !isPrivateAddress(ma)) : addrs => addrs,
      log: this.log
    })
    this.client = new FindClient({ connectionManager: components.connectionManager, lifetime: () => this.lifetime.signal, log: this.log })
    this.buckets = new BucketRefresh({
      selfKadId: this.idOfPeer(this.selfId),
      knownKadIds: () => this.knownPeers().map(id => this.idOfPeer(id)),
      lookup: async (key, count, options) => this.closest(key, count, options)
    })
  }

  async start (): Promise<void> {
    if (this.started) return
    this.started = true
    this.lifetime = new AbortController()
    this.components.events.addEventListener('peer:disconnect', this.onDisconnect)
    this.components.events.addEventListener('peer:connect', this.onConnect)
    this.components.events.addEventListener('peer:identify', this.onIdentify)
    await this.components.registrar.handle(KAD_FIND_PROTOCOL, this.server.handle, {
      maxInboundStreams: MAX_INBOUND_FIND_STREAMS,
      maxOutboundStreams: MAX_OUTBOUND_FIND_STREAMS
    })
  }

  async stop (): Promise<void> {
    if (!this.started) return
    this.started = false
    this.lifetime.abort(new Error('the Kademlia overlay stopped'))
    this.components.events.removeEventListener('peer:disconnect', this.onDisconnect)
    this.components.events.removeEventListener('peer:connect', this.onConnect)
    this.components.events.removeEventListener('peer:identify', this.onIdentify)
    await this.components.registrar.unhandle(KAD_FIND_PROTOCOL)
    this.client.closeAll()
    this.gone.clear()
    this.addresses.clear()
    this.buckets.clear()
  }

  /** Queries this peer sent and answered over /shoal/kad/find/1.0.0 since it started. */
  findQueries (): { sent: number, answered: number } {
    return { sent: this.client.sent, answered: this.server.answered }
  }

  private readonly onIdentify = (evt: CustomEvent<IdentifyResult>): void => {
    this.addresses.announced(evt.detail.peerId.toString(), evt.detail.listenAddrs)
  }

  private readonly onDisconnect = (evt: CustomEvent<PeerId>): void => {
    const now = Date.now()
    this.gone.set(evt.detail.toString(), now)
    for (const [id, at] of this.gone) if (now - at > GONE_MEMORY_MS) this.gone.delete(id)
  }

  private readonly onConnect = (evt: CustomEvent<PeerId>): void => {
    this.gone.delete(evt.detail.toString())
  }

  idOfPeer (peerId: string): Uint8Array {
    let id = this.ids.get(peerId)
    if (id == null) {
      id = kadIdOfPeer(peerIdFromString(peerId))
      this.ids.set(peerId, id)
    }
    return id
  }

  idOfKey (key: Uint8Array): Uint8Array {
    return kadIdOfKey(key)
  }

  order (key: Uint8Array, peers: Iterable<string>): string[] {
    const target = kadIdOfKey(key)
    return [...new Set(peers)].sort((a, b) => compareDistance(target, this.idOfPeer(a), this.idOfPeer(b)))
  }

  rank (key: Uint8Array, peerId: string, among: Iterable<string>): number {
    const target = kadIdOfKey(key)
    const own = this.idOfPeer(peerId)
    let rank = 0
    for (const id of among) {
      if (id !== peerId && compareDistance(target, this.idOfPeer(id), own) < 0) rank++
    }
    return rank
  }

  /** Routing-table peers, without those that disconnected and have not come back. */
  knownPeers (): string[] {
    return this.tablePeers().filter(id => !this.gone.has(id))
  }

  /** Every routing-table peer (without this peer), departed or not. */
  private tablePeers (): string[] {
    return routingTableContacts(this.components.dht).map(c => c.peerId.toString()).filter(id => id !== this.selfId)
  }

  /** The routing table as k-buckets: peers grouped by the leading bits they share with this peer. */
  routing (): KademliaRouting {
    const self = this.idOfPeer(this.selfId)
    const buckets = new Map<number, string[]>()
    for (const contact of routingTableContacts(this.components.dht)) {
      const id = contact.peerId.toString()
      if (id === this.selfId) continue
      const prefix = commonPrefixLength(self, contact.kadId)
      let peers = buckets.get(prefix)
      if (peers == null) buckets.set(prefix, peers = [])
      peers.push(id)
    }
    return {
      overlay: 'kademlia',
      self: this.selfId,
      buckets: [...buckets].sort((a, b) => a[0] - b[0]).map(([prefix, peers]) => ({ prefix, peers }))
    }
  }

  /**
   * Dials each peer; kad-dht adds it to the routing table once identify
   * shows it speaks the DHT protocol (a self-lookup then fills the table:
   * see the Bootstrapper).
   */
  async join (multiaddrs: string[], options: AbortOptions = {}): Promise<{ connected: number, failed: number }> {
    let connected = 0
    const { signal } = options
    const aborted = (): boolean => signal?.aborted === true
    await mapConcurrent(multiaddrs, JOIN_DIAL_CONCURRENCY, async ma => {
      if (aborted()) return
      const deadline = anySignal([signal], { timeoutMs: this.init.joinDialTimeoutMs ?? BOOTSTRAP_DIAL_TIMEOUT_MS })
      try {
        // the priority libp2p gives dials a user asks for (node.dial)
        await this.components.connectionManager.openConnection(multiaddr(ma), { priority: 75, signal: deadline })
        connected++
      } catch (err) {
        if (!aborted()) this.log('join dial to %s failed - %e', ma, err)
      } finally {
        deadline.clear()
      }
    })
    return { connected, failed: multiaddrs.length - connected }
  }

  /**
   * Shoal's iterative lookup for the k closest peers (closest-peers.ts);
   * this peer is among them when it is close enough. With an empty routing
   * table it waits for a peer to ask, until `options.signal` gives up.
   */
  async lookup (key: Uint8Array, k: number, options: AbortOptions = {}): Promise<LookupResult> {
    // a lookup of this peer's own key is a join's self-lookup (the
    // Bootstrapper): it asks for kad-dht's k closest, so that they and this
    // peer learn of each other and fill each other's tables; then the
    // buckets farther out are refreshed (bucket-refresh.ts)
    const own = uint8ArrayEquals(key, this.components.peerId.toMultihash().bytes)
    const found = await this.closest(key, own ? Math.max(k, this.components.dht.k + 1) : k, own ? { ...options, parallelism: SELF_LOOKUP_PARALLELISM } : options)
    if (own && this.init.plannedJoin !== true) {
      const refreshed = await this.buckets.run(options)
      this.log('self-lookup: %d peers in the table, buckets %o refreshed', this.tablePeers().length, refreshed)
    }
    const responsible = found.peers.slice(0, k)
    const hops = responsible.reduce((max, id) => Math.max(max, found.depthOf(id)), 0)
    return { responsible, path: found.path, hops, messages: found.messages, ms: found.ms }
  }

  /** The `count` peers closest to `key` (this peer included when close enough), by an iterative lookup. */
  private async closest (key: Uint8Array, count: number, options: KadLookupOptions): Promise<KadLookup> {
    const { dht, connectionManager, peerStore } = this.components
    await this.untilTableHasPeers(options.signal)
    return kadLookup({
      selfId: this.selfId,
      selfKadId: this.idOfPeer(this.selfId),
      knownPeers: () => routingTableContacts(dht).map(c => c.peerId).filter(p => !p.equals(this.components.peerId) && !this.gone.has(p.toString())),
      idOfPeer: peerId => this.idOfPeer(peerId.toString()),
      findNode: async (to, rawKey, target, wanted, opts) => {
        const connected = connectionManager.getConnections(to.id).some(c => c.status === 'open')
        if (!this.client.isLegacy(to.id.toString())) {
          try {
            const closer = await this.client.find(connected ? { id: to.id, multiaddrs: [] } : to, target, Math.min(MAX_CLOSER_PEERS, Math.max(wanted, MIN_CLOSER_PEERS)), opts)
            for (const peer of closer) this.addresses.heard(peer.id.toString(), peer.multiaddrs)
            return closer
          } catch (err) {
            if (!(err instanceof FindUnsupportedError)) throw err
          }
        }
        // an older peer: kad-dht's FIND_NODE, which dials through the peer store
        if (!connected && to.multiaddrs.length > 0) await peerStore.merge(to.id, { multiaddrs: to.multiaddrs })
        return findNode(dht, to.id, rawKey, opts)
      }
    }, key, kadIdOfKey(key), count, options)
  }

  /** Routing-table peers closest to `kadId` believed alive, closest first: neither this peer nor `asker`. */
  private closestInTable (kadId: Uint8Array, count: number, asker: PeerId): PeerId[] {
    const askerId = asker.toString()
    return routingTableContacts(this.components.dht)
      // a disconnected contact is not a dead one (connections close for many
      // reasons): the answer names it, as kad-dht's FIND_NODE does, and the
      // asker finds out; leaving it out hid whole regions of the keyspace
      // from lookups through peers with many closed connections
      .filter(c => { const id = c.peerId.toString(); return id !== this.selfId && id !== askerId })
      .sort((a, b) => compareDistance(kadId, a.kadId, b.kadId))
      .slice(0, count)
      .map(c => c.peerId)
  }

  /**
   * Resolves once the routing table holds a peer (at once when it does): a
   * peer that has just dialled its bootstrap peers gets them in its table a
   * moment later, after identify. Rejects when `signal` aborts.
   */
  private async untilTableHasPeers (signal?: AbortSignal): Promise<void> {
    if (this.tablePeers().length > 0) return
    signal?.throwIfAborted()
    await new Promise<void>((resolve, reject) => {
      const done = (err?: unknown): void => {
        unwatch()
        signal?.removeEventListener('abort', onAbort)
        if (err == null) resolve()
        else reject(err)
      }
      const onAbort = (): void => { done(signal?.reason ?? new Error('aborted')) }
      const unwatch = watchRoutingTable(this.components.dht, peerId => { if (!peerId.equals(this.components.peerId)) done() }, () => {})
      signal?.addEventListener('abort', onAbort, { once: true })
    })
  }

  /**
   * Stops or restarts kad-dht's periodic routing-table refresh, the only
   * periodic maintenance the table has (lookups still route around peers
   * that fail to answer, and peers whose connection closed stay out of
   * knownPeers and of lookups).
   */
  pauseMaintenance (paused: boolean): void {
    if (!pauseTableRefresh(this.components.dht, paused)) this.log('kad-dht has no routing-table refresh to pause')
  }

  /** kad-dht has no leave: peers find a departed one out when it fails a query. */
  async leave (): Promise<void> {}

  planner (): ResponsiblePlanner {
    const dht = this.components.dht
    return new ClosestPlanner({
      selfId: this.selfId,
      knownPeers: () => this.knownPeers(),
      // the planner's coverage proof needs a lookup's answer to be exactly
      // the closest peers up to its radius: the count asked, not this peer;
      // with an empty routing table this peer is all the network it knows
      lookup: async (key, count, options) => this.tablePeers().length === 0
        ? []
        : (await this.closest(key, count + 1, options ?? {})).peers.filter(id => id !== this.selfId).slice(0, count),
      lookupSize: dht.k,
      idOfPeer: id => this.idOfPeer(id)
    })
  }

  async provide (root: CID, options: AbortOptions = {}): Promise<void> {
    // with no peer to tell, kad-dht's provide would wait for one
    if (this.tablePeers().length === 0) throw new NoPeersError(`no peer in the routing table to announce ${root} to`)
    for await (const _ of this.components.dht.provide(root, { signal: options.signal })) {
      // draining the query is what stores the record on the closest peers
    }
  }

  async * findProviders (root: CID, options: AbortOptions = {}): AsyncGenerator<string> {
    const seen = new Set<string>()
    for await (const event of this.components.dht.findProviders(root, { signal: options.signal })) {
      if (event.name !== 'PROVIDER') continue
      for (const provider of event.providers) {
        const id = provider.id.toString()
        if (seen.has(id)) continue
        seen.add(id)
        yield id
      }
    }
  }

  onChange (listener: (change: OverlayChange) => void): () => void {
    return watchRoutingTable(this.components.dht,
      peerId => { if (!peerId.equals(this.components.peerId)) listener({ added: [peerId.toString()], removed: [] }) },
      peerId => { if (!peerId.equals(this.components.peerId)) listener({ added: [], removed: [peerId.toString()] }) })
  }
}
