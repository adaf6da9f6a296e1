/**
 * Assembles the libp2p node a Shoal peer runs: TCP + Noise + Yamux, identify,
 * ping, and kad-dht configured for a private network that works on loopback
 * and LANs.
 */
import { noise } from '@chainsafe/libp2p-noise'
import { yamux } from '@chainsafe/libp2p-yamux'
import { identify } from '@libp2p/identify'
import { kadDHT, passthroughMapper, type KadDHT } from '@libp2p/kad-dht'
import { ping, type Ping } from '@libp2p/ping'
import { prometheusMetrics } from '@libp2p/prometheus-metrics'
import { tcp } from '@libp2p/tcp'
import { createLibp2p, type Libp2p } from 'libp2p'
import type { Identify } from '@libp2p/identify'
import type { AbortOptions, ComponentLogger, PeerId, PrivateKey } from '@libp2p/interface'
import type { Datastore } from 'interface-datastore'
import type { Registry } from 'prom-client'
import { PeerStoreCache } from './peer-store-cache.ts'
import { labTransport } from '../transport/link-delay.ts'
import { AGENT_VERSION, CONNECTION_PING_INTERVAL_MS, DHT_PROTOCOL, SHOAL_VERSION } from '../constants.ts'

export type ShoalServices = {
  identify: Identify
  ping: Ping
  dht: KadDHT
}

export type ShoalNode = Libp2p<ShoalServices>

export interface ShoalNodeInit {
  privateKey: PrivateKey
  datastore: Datastore
  listen: string[]
  announce?: string[]
  kBucketSize: number
  maxConnections: number
  allow: string[]
  /** Registry for libp2p's metrics; none = metrics off (cheaper in big test swarms). */
  metricsRegistry?: Registry
  /**
   * Also Node's process metrics (RSS, CPU, event-loop lag, GC) in that
   * registry (default true). Each registry that collects them runs its own
   * event-loop-delay monitor and GC observer: 50 peers of one swarm host
   * doing so cost ~20 CPU-s while a 100-peer swarm came up, for 50 copies of
   * the same numbers. A host gives them to its first peer only.
   */
  processMetrics?: boolean
  /**
   * The peer is one of a local swarm whose launcher tells it whom to connect
   * to (src/swarm/contact-plan.ts). Its routing table then takes only peers
   * it holds a connection to, and kad-dht's start-up random walk is skipped
   * (the plan already gave it contacts in every bucket). Default false.
   */
  plannedJoin?: boolean
  /** For libp2p and its services (default: @libp2p/logger's). */
  logger?: ComponentLogger
}

export async function createShoalNode (init: ShoalNodeInit): Promise<ShoalNode> {
  const node = await createLibp2p({
    privateKey: init.privateKey,
    logger: init.logger,
    // peer records in memory, written back to LevelDB in batches (see peer-store-cache.ts)
    datastore: new PeerStoreCache(init.datastore),
    nodeInfo: { name: 'shoal', version: SHOAL_VERSION, userAgent: AGENT_VERSION },
    // started by ShoalPeer once the repo is locked and stores are open
    start: false,
    addresses: {
      listen: init.listen,
      announce: init.announce ?? []
    },
    // a lab peer's link delay (docs/lab.md); plain TCP everywhere else
    transports: [labTransport(tcp())],
    connectionEncrypters: [noise()],
    streamMuxers: [yamux()],
    connectionManager: {
      maxConnections: init.maxConnections,
      // local swarms and LANs open many connections per second from one host
      allow: init.allow
    },
    connectionMonitor: {
      // libp2p pings every connection every 10 s by default: with 20-100
      // connections per peer that was most of an idle daemon's CPU, and on a
      // loaded machine a slow pong aborted healthy connections
      pingInterval: CONNECTION_PING_INTERVAL_MS,
      abortConnectionOnPingFailure: false
    },
    metrics: init.metricsRegistry == null
      ? undefined
      : prometheusMetrics({ registry: init.metricsRegistry, collectDefaultMetrics: init.processMetrics ?? true }),
    services: {
      identify: identify(),
      // kad-dht pings contacts from its routing table, new-contact and
      // query paths at once; the default of 1 outbound ping stream per
      // connection fails lookups with "too many outbound protocol streams"
      ping: ping({ maxOutboundStreams: 8, maxInboundStreams: 8 }),
      dht: kadDHT({
        protocol: DHT_PROTOCOL,
        // the default would stay a client until it saw a public address
        clientMode: false,
        // the default drops loopback and private addresses; local swarms need them
        peerInfoMapper: passthroughMapper,
        kBucketSize: init.kBucketSize,
        logPrefix: 'shoal:kad-dht',
        datastorePrefix: '/shoal/dht',
        metricsPrefix: 'shoal_kad_dht'
      })
    }
  })
  skipPingOfConnectedContacts(node)
  if (init.plannedJoin === true) {
    addOnlyConnectedContacts(node)
    skipStartupRandomWalk(node)
  }
  return node
}

/**
 * kad-dht pings every new routing-table contact before adding it, even a peer
 * that has just connected to us and finished identify over that very
 * connection. A live, identified connection already proves the peer is
 * there (and libp2p's connection monitor keeps pinging it), so only contacts
 * we hold no open connection to are pinged. Measured in a 50-peer swarm
 * joining: ~2,800 routing-table pings before, ~1,750 after (a ping stream
 * costs ~2 ms of CPU on loopback).
 */
function skipPingOfConnectedContacts (node: ShoalNode): void {
  const kb = (node.services.dht as unknown as { routingTable?: { kb?: KBucketVerify } }).routingTable?.kb
  if (kb?.verify == null) return
  const verify = kb.verify
  kb.verify = async (contact, options) => {
    if (node.getConnections(contact.peerId).some(c => c.status === 'open')) return true
    return verify(contact, options)
  }
}

interface KBucketVerify {
  verify?: (contact: { peerId: PeerId }, options?: AbortOptions) => Promise<boolean>
}


/**
 * kad-dht adds every peer named in any FIND_NODE reply to its routing table,
 * and first dials and pings it. While a swarm joins, that turned each peer's
 * ~20 contacts into ~35 connections. With this, a contact gets into the table
 * when it connects to us or we to it (identify shows it speaks the DHT
 * protocol) or when it answers one of our queries, as in go-libp2p-kad-dht;
 * a peer merely heard of is not dialled for it. Lookups are unchanged: they
 * still query the peers replies name.
 */
function addOnlyConnectedContacts (node: ShoalNode): void {
  const dht = node.services.dht as unknown as { onPeerConnect?: (peer: { id: PeerId }) => Promise<void> }
  const onPeerConnect = dht.onPeerConnect?.bind(dht)
  if (onPeerConnect == null) return
  dht.onPeerConnect = async (peer) => {
    if (!node.getConnections(peer.id).some(c => c.status === 'open')) return
    await onPeerConnect(peer)
  }
}

/**
 * kad-dht refreshes its routing table when it starts: a lookup of a random
 * key in the far half of the keyspace (then again every 5 minutes). A peer of
 * a planned swarm already holds contacts in every bucket, and that lookup
 * cost it ~20 connections to peers near a random key. This keeps the
 * periodic refreshes and skips only the one at start.
 */
function skipStartupRandomWalk (node: ShoalNode): void {
  const refresh = (node.services.dht as unknown as { routingTableRefresh?: RoutingTableRefresh }).routingTableRefresh
  const { refreshTable, refreshInterval } = refresh ?? {}
  if (refresh?.afterStart == null || refreshTable == null || refreshInterval == null) return
  refresh.afterStart = async () => {
    // what refreshTable() itself does once its lookups have finished
    refresh.refreshTimeoutId = setTimeout(refreshTable, refreshInterval)
    refresh.refreshTimeoutId.unref?.()
  }
}

interface RoutingTableRefresh {
  afterStart?: () => Promise<void>
  refreshTable?: () => void
  refreshInterval?: number
  refreshTimeoutId?: ReturnType<typeof setTimeout>
}
