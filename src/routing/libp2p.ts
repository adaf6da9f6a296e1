/**
 * Assembles the libp2p node a Shoal peer runs: TCP + Noise + Yamux, identify,
 * ping, and the services of its overlay (`ShoalNodeInit.overlay`), whose
 * Overlay is `node.services.overlay`.
 */
import { noise } from '@chainsafe/libp2p-noise'
import { identify } from '@libp2p/identify'
import type { KadDHT } from '@libp2p/kad-dht'
import { ping, type Ping } from '@libp2p/ping'
import { prometheusMetrics } from '@libp2p/prometheus-metrics'
import { tcp } from '@libp2p/tcp'
import { peerIdFromString } from '@libp2p/peer-id'
import { createLibp2p, type Libp2p } from 'libp2p'
import type { Identify } from '@libp2p/identify'
import type { AbortOptions, ComponentLogger, PrivateKey } from '@libp2p/interface'
import type { Datastore } from 'interface-datastore'
import type { Registry } from 'prom-client'
import {
  AGENT_VERSION, INBOUND_CONNECTIONS_PER_HOST_PER_SECOND,
  INBOUND_UPGRADE_TIMEOUT_MS, MAX_INCOMING_PENDING_CONNECTIONS, SHOAL_VERSION
} from '../constants.ts'
import { ShoalError } from '../errors.ts'
import type { Overlay, OverlayName } from './index.ts'
import { chord, type ChordLeave } from './chord/index.ts'
import { kademlia } from './kademlia/index.ts'
import { connectionTrimmer, type ConnectionTrimmer } from './connection-trimmer.ts'
import { guardOverlay } from './overlay-guard.ts'
import { PeerStoreCache } from './peer-store-cache.ts'
import { labTransport } from '../transport/link-delay.ts'
import { isPrivateAddress, privateAddressesAllowed, type PrivateAddressesSetting } from './private-addresses.ts'
import { shoalYamux } from '../transport/yamux-window.ts'

export type ShoalServices = {
  identify: Identify
  /** Closes idle connections once too many are open (connection-trimmer.ts). */
  connectionTrimmer: ConnectionTrimmer
  ping: Ping
  /** The overlay placement, repair and fetch route through. */
  overlay: Overlay
  /** kad-dht itself: part of a Kademlia node only (the Overlay is what the rest of Shoal uses). */
  dht?: KadDHT
}

export type ShoalNode = Libp2p<ShoalServices>

export interface ShoalNodeInit {
  /** Which overlay's services the node runs (default 'kademlia'). */
  overlay?: OverlayName
  privateKey: PrivateKey
  datastore: Datastore
  listen: string[]
  announce?: string[]
  kBucketSize: number
  maxConnections: number
  /** Address ranges exempt from the inbound connection limits (config `connections.allow`). */
  allow: string[]
  /** Idle connections are closed once more than `highWater` are open, down to `lowWater`, none younger than the grace period (config `connections`). */
  trim: { lowWater: number, highWater: number, gracePeriodMs: number }
  /**
   * Keep and dial other peers' private addresses (config
   * `connections.privateAddresses`, see private-addresses.ts); default 'auto'.
   */
  privateAddresses?: PrivateAddressesSetting
  /** Registry for libp2p's metrics; none = metrics off (cheaper in big test swarms). */
  metricsRegistry?: Registry
  /**
   * Also Node's process metrics (RSS, CPU, event-loop lag, GC) in that
   * registry (default true). Each registry that collects them runs its own
   * event-loop-delay monitor and GC observer: every peer of a swarm host
   * doing so costs the host CPU for copies of the same numbers. A host gives
   * them to its first peer only.
   */
  processMetrics?: boolean
  /**
   * The peer is one of a local swarm whose launcher tells it whom to connect
   * to (src/swarm/contact-plan.ts); see KademliaInit.plannedJoin. Default false.
   */
  plannedJoin?: boolean
  /** Chord only: r, the successor list's length (config `chord.successorListLength`). */
  successorListLength?: number
  /**
   * Chord only: called first when the peer leaves the ring, while the ring
   * still holds it, to hand the keys it holds to the peers that take over.
   */
  onLeave?: (leave: ChordLeave, options: AbortOptions) => Promise<void>
  /** For libp2p and its services (default: @libp2p/logger's). */
  logger?: ComponentLogger
}

const peerStoreCaches = new WeakMap<ShoalNode, PeerStoreCache>()

/** The peer-store cache in front of a node's datastore (tests check its bound). */
export function peerStoreCacheOf (node: ShoalNode): PeerStoreCache | undefined {
  return peerStoreCaches.get(node)
}

export async function createShoalNode (init: ShoalNodeInit): Promise<ShoalNode> {
  const privateAddresses = privateAddressesAllowed(init.privateAddresses ?? 'auto', init.listen, init.announce)
  const peerStoreCache = new PeerStoreCache(init.datastore)
  const node: ShoalNode = await createLibp2p({
    privateKey: init.privateKey,
    logger: init.logger,
    // peer records in memory, written back to LevelDB in batches (see peer-store-cache.ts)
    datastore: peerStoreCache,
    // a peer on the public network neither stores nor dials the private
    // addresses remote peers name (see private-addresses.ts)
    peerStore: privateAddresses ? undefined : { addressFilter: (_peer, ma) => !isPrivateAddress(ma) },
    connectionGater: privateAddresses ? undefined : { denyDialMultiaddr: ma => isPrivateAddress(ma) },
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
    streamMuxers: [shoalYamux()],
    connectionManager: {
      maxConnections: init.maxConnections,
      // exempt from all of the limits below: only what the config lists
      // (a local swarm's own addresses open many connections per second)
      allow: init.allow,
      // one host may hold at most rate x (timeout + 1 s) pending handshakes,
      // well under the cap, so a slow host cannot lock the others out
      inboundConnectionThreshold: INBOUND_CONNECTIONS_PER_HOST_PER_SECOND,
      inboundUpgradeTimeout: INBOUND_UPGRADE_TIMEOUT_MS,
      maxIncomingPendingConnections: MAX_INCOMING_PENDING_CONNECTIONS
    },
    // libp2p's connection monitor opens a ping stream on every connection
    // of a peer at once, every interval, only to record a round-trip time
    // nothing here reads (Shoal never let it abort a connection: on a loaded
    // machine late pongs tore down healthy ones). At 1,000 peers on one
    // machine its synchronised waves were most of the swarm's CPU. Dead
    // connections show as failed requests; yamux's keepalive keeps idle
    // ones alive through NATs.
    connectionMonitor: { enabled: false },
    metrics: init.metricsRegistry == null
      ? undefined
      : prometheusMetrics({ registry: init.metricsRegistry, collectDefaultMetrics: init.processMetrics ?? true }),
    services: {
      identify: identify(),
      // libp2p prunes only past maxConnections and never an allow-listed
      // address: without this a swarm's lookups pile connections up until
      // its hosts run out of open files
      connectionTrimmer: connectionTrimmer({ ...init.trim, protect: (): string[] => neighbours(node.services.overlay) }),
      // kad-dht pings contacts from its routing table, new-contact and
      // query paths at once; the default of 1 outbound ping stream per
      // connection fails lookups with "too many outbound protocol streams"
      ping: ping({ maxOutboundStreams: 8, maxInboundStreams: 8 }),
      ...overlayServices(init, privateAddresses, peer => hangUp(peer))
    }
  })
  const hangUp = (peer: string): void => {
    void node.hangUp(peerIdFromString(peer)).catch(() => {})
  }
  guardOverlay(node, init.overlay ?? 'kademlia', hangUp)
  peerStoreCaches.set(node, peerStoreCache)
  return node
}

/**
 * Peers whose connections the trimmer keeps: Chord's successors,
 * predecessor and fingers (stabilize, check-predecessor and fix-fingers
 * talk to them in turn; closing them made each round dial again).
 * Kademlia's closest peers carry kad-dht's keep-alive tag instead.
 */
function neighbours (overlay: Overlay): string[] {
  const routing = overlay.routing()
  if (routing.overlay !== 'chord') return []
  return [...routing.successors, ...(routing.predecessor != null ? [routing.predecessor] : []), ...routing.fingers.map(f => f.peerId)]
}

/** libp2p service factories: the overlay, and kad-dht under a Kademlia one. */
interface OverlayServiceFactories {
  // each factory declares the components it needs; libp2p hands every service all of them
  overlay: (components: any) => Overlay
  dht?: (components: any) => KadDHT
}

/**
 * The overlay's libp2p services: an `overlay` service implementing Overlay,
 * and whatever it runs on (kad-dht for Kademlia). A Chord node's `overlay`
 * is its `chord(init)` service, with no kad-dht; it refuses (logs once, then
 * `refused` hangs up) every peer whose identify shows no Chord.
 */
function overlayServices (init: ShoalNodeInit, privateAddresses: boolean, refused: (peer: string) => void): OverlayServiceFactories {
  const name = init.overlay ?? 'kademlia'
  if (name === 'kademlia') return kademlia({ kBucketSize: init.kBucketSize, plannedJoin: init.plannedJoin, privateAddresses })
  if (name === 'chord') {
    return {
      overlay: chord({
        successorListLength: init.successorListLength,
        // the peer leaves the ring itself, before placement stops (ShoalPeer.stop)
        leaveOnStop: false,
        onLeave: init.onLeave,
        onPeerRefused: refused
      })
    }
  }
  throw new ShoalError(`the ${name as string} overlay is not built into this peer`)
}
