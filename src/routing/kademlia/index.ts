/**
 * Kademlia, Shoal's default overlay: @libp2p/kad-dht under Shoal's own
 * protocol, and the Overlay over it (KademliaOverlay). A key's k
 * responsible peers are the k closest to it by XOR distance, measured
 * exactly as kad-dht measures it (kad-distance.ts).
 *
 * ```
 *   placement / repair / fetch / API
 *                 |  Overlay
 *          KademliaOverlay ---- ClosestPlanner (many keys, few lookups)
 *                 |        '--- kadLookup (one lookup, with its path)
 *          kad-dht service  (/shoal/kad/1.0.0; its private parts only
 *                            through kad-dht-internals.ts)
 * ```
 *
 * kad-dht is configured for a private network that works on loopback and
 * LANs: its own protocol, so it never mixes with the public IPFS DHT;
 * `clientMode: false`, since it would otherwise stay a client until it saw
 * a public address, which a loopback or LAN swarm never shows; and a
 * peer-info mapper that keeps private addresses only where the node uses
 * them (`privateAddresses`, see ../private-addresses.ts): kad-dht's default
 * drops the loopback and private addresses local swarms need.
 */
import { kadDHT, passthroughMapper, type KadDHT, type KadDHTComponents } from '@libp2p/kad-dht'
import type { PeerInfo } from '@libp2p/interface'
import { DHT_PROTOCOL } from '../../constants.ts'
import { isPrivateAddress } from '../private-addresses.ts'
import { KademliaOverlay, type KademliaOverlayComponents } from './kademlia-overlay.ts'

export { KademliaOverlay, type KademliaOverlayComponents, type KademliaOverlayInit } from './kademlia-overlay.ts'

export interface KademliaInit {
  /** kad-dht's k: peers per k-bucket, and per lookup result. */
  kBucketSize: number
  /**
   * The peer is one of a local swarm whose launcher tells it whom to connect
   * to (src/swarm/contact-plan.ts): its join skips the far-bucket refresh
   * (bucket-refresh.ts), since the plan already gave it contacts in every
   * bucket. Default false.
   */
  plannedJoin?: boolean
  /**
   * Peers' private addresses are used here (default true). False: left out
   * of the peer info this peer sends in replies, and a peer with no other
   * address is not admitted to the routing table.
   */
  privateAddresses?: boolean
}

function withoutPrivateAddresses (peer: PeerInfo): PeerInfo {
  return { ...peer, multiaddrs: peer.multiaddrs.filter(ma => !isPrivateAddress(ma)) }
}

export interface KademliaServices {
  dht: KadDHT
  overlay: KademliaOverlay
}

/**
 * How deep kad-dht's routing-table trie may split (its `prefixLength`,
 * default 6). A leaf at the deepest level takes no more than k peers: past
 * that a newcomer gets in only if an old contact fails a ping. At depth 6
 * (64 leaves) the leaf holding this peer's own prefix held more than k
 * peers in a 1,000-peer swarm often enough that peers were refused by
 * their own nearest neighbours, and lookups for keys beside them missed
 * them (docs/overlays.md). At 16, the leaf around this peer keeps
 * splitting as Kademlia's bucket around its own ID does, in networks of up
 * to about k x 2^16 peers; a table still holds only peers it connected to.
 */
export const ROUTING_TRIE_DEPTH = 16

/** The libp2p services of a Kademlia node, in the order libp2p must create them (`dht` first). */
export function kademlia (init: KademliaInit): {
  dht: (components: KadDHTComponents) => KadDHT
  overlay: (components: KademliaOverlayComponents) => KademliaOverlay
} {
  return {
    dht: kadDHT({
      protocol: DHT_PROTOCOL,
      clientMode: false,
      peerInfoMapper: init.privateAddresses === false ? withoutPrivateAddresses : passthroughMapper,
      kBucketSize: init.kBucketSize,
      prefixLength: ROUTING_TRIE_DEPTH,
      logPrefix: 'shoal:kad-dht',
      datastorePrefix: '/shoal/dht',
      metricsPrefix: 'shoal_kad_dht'
    }),
    overlay: components => new KademliaOverlay(components, { plannedJoin: init.plannedJoin, privateAddresses: init.privateAddresses })
  }
}
