/**
 * The overlay: how a peer finds the peers responsible for a key. Placement,
 * repair and fetch use only this interface, never one overlay's internals,
 * so a swarm runs on either implementation (config `overlay`):
 *
 * ```
 *              placement / repair / fetch / API (lookup, routing)
 *                                  |
 *                               Overlay
 *                 .----------------+-----------------.
 *          kademlia/ (kad-dht,                 chord/ (/shoal/chord/1.0.0,
 *          /shoal/kad/1.0.0, XOR)              ring order, successor lists)
 * ```
 *
 * Identifier space: 256 bits. A peer's position is sha2-256 of its peer
 * ID's multihash bytes, a key's is sha2-256 of the key bytes (for a block,
 * its CID's multihash bytes), on both overlays. What "responsible" means is
 * the overlay's: Kademlia's k responsible peers are the k closest by XOR;
 * Chord's are the key's successor (the first peer at or clockwise after the
 * key) and the k-1 peers after it on the ring.
 */
import type { AbortOptions } from '@libp2p/interface'
import type { CID } from 'multiformats/cid'

export const OVERLAY_NAMES = ['kademlia', 'chord'] as const
export type OverlayName = typeof OVERLAY_NAMES[number]

/** One query a lookup sent. */
export interface LookupHop {
  peerId: string
  /**
   * Its depth: 1 for a peer asked straight from this peer's own routing
   * state, d+1 for a peer first named in the answer of a depth-d peer.
   */
  hop: number
  /** Milliseconds from the lookup's start until this peer answered or failed. */
  ms: number
  /** False when the query failed or timed out (the lookup routed around it). */
  ok: boolean
}

export interface LookupResult {
  /**
   * The k responsible peers in responsibility order: closest first
   * (Kademlia), the key's successor first (Chord). This peer itself is
   * among them when it is responsible.
   */
  responsible: string[]
  /** Every query sent, in the order they were answered. */
  path: LookupHop[]
  /** Sequential round trips: the deepest hop among the peers that decided the answer. */
  hops: number
  /** Queries sent (messages out; each has one answer). */
  messages: number
  ms: number
}

/** The k responsible peers of many keys at once (placement, repair, fetch). */
export interface ResponsiblePlanner {
  /**
   * For each key (same order), its k responsible peers in responsibility
   * order, this peer included when it is one of them; with as few lookups
   * as the overlay can prove enough.
   */
  plan: (keys: Uint8Array[], k: number, options?: AbortOptions) => Promise<PlanResult>
  /** Leaves out peers found dead or unreachable: later plans pick the next ones. */
  exclude: (peerIds: Iterable<string>) => void
}

export interface PlanResult {
  responsible: string[][]
  lookups: number
  ms: number
}

export interface JoinOptions extends AbortOptions {
  /**
   * The peers are this peer's successors, in ring order, as a launcher that
   * knows the whole swarm hands them out (`swarm up`'s plan): Chord adopts
   * them as its successor list at once, with no lookup, and stabilization
   * then checks them as it checks any list; Kademlia connects to them as to
   * any contacts.
   */
  successors?: boolean
  /**
   * With `successors`: peers (`/p2p/<id>` multiaddrs) the launcher knows to
   * be this peer's fingers (the successor of self + 2^i, for every i past
   * the successor list): Chord takes them as its finger table, so neither
   * its first lookups nor fix-fingers walk the ring one successor list at a
   * time; fix-fingers then checks them as it checks any.
   */
  fingers?: string[]
}

/** Who this peer knows, as its overlay arranges them (`shoal routing`, the dashboard). */
export type RoutingSnapshot = KademliaRouting | ChordRouting

export interface KademliaRouting {
  overlay: 'kademlia'
  self: string
  /** k-buckets that hold peers: `prefix` = leading bits shared with this peer. */
  buckets: Array<{ prefix: number, peers: string[] }>
}

export interface ChordRouting {
  overlay: 'chord'
  self: string
  predecessor?: string
  /** The successor list, nearest first. */
  successors: string[]
  /** Finger i points at the successor of self + 2^i; only distinct entries are listed. */
  fingers: Array<{ index: number, peerId: string }>
}

/**
 * The peers in this peer's routing state changed: contacts added or gone
 * (Kademlia: the routing table; Chord: successor list, predecessor,
 * fingers). Repair takes it as a hint that responsibility for some keys
 * held here may have moved.
 */
export interface OverlayChange {
  added: string[]
  removed: string[]
}

export interface Overlay {
  readonly name: OverlayName
  /** The wire protocol that carries it (`/shoal/kad/1.0.0`, `/shoal/chord/1.0.0`). */
  readonly protocol: string

  /** 32-byte position of a peer (base58 or CID peer ID string) in the identifier space. */
  idOfPeer: (peerId: string) => Uint8Array
  /** 32-byte position of a key. */
  idOfKey: (key: Uint8Array) => Uint8Array
  /**
   * `peers` in responsibility order for `key` (the truth function: what a
   * lookup must return when it knows every peer in `peers`).
   */
  order: (key: Uint8Array, peers: Iterable<string>) => string[]
  /** How many of `among` come before `peerId` in responsibility order for `key`. */
  rank: (key: Uint8Array, peerId: string, among: Iterable<string>) => number

  /**
   * Peers in this peer's routing state that it believes alive (without
   * itself): what rank and planning count. Routing state that keeps a
   * departed peer for a while (kad-dht's table does, until the peer fails
   * a query) leaves out the peers known to have gone.
   */
  knownPeers: () => string[]
  routing: () => RoutingSnapshot

  /** Connects to these peers (`/p2p/<id>` multiaddrs) and joins the overlay through them. */
  join: (multiaddrs: string[], options?: JoinOptions) => Promise<{ connected: number, failed: number }>
  /** A lookup through the overlay, with its path. */
  lookup: (key: Uint8Array, k: number, options?: AbortOptions) => Promise<LookupResult>
  /** A planner for many keys (one per placement or repair pass: it caches what it learns). */
  planner: () => ResponsiblePlanner

  /**
   * Announces this peer as a holder of the whole DAG under `root`; rejects
   * when the announcement could not be made (NoPeersError: nobody to tell).
   */
  provide: (root: CID, options?: AbortOptions) => Promise<void>
  /** Peers that announced `root`, as they are found. */
  findProviders: (root: CID, options?: AbortOptions) => AsyncIterable<string>

  /**
   * Leaves the overlay gracefully before the peer stops: Chord hands its
   * keys on (its `onLeave` hook) and its provider records to its
   * successors, then tells its neighbours; Kademlia has no leave (kad-dht
   * peers notice a departure when a query fails), so it does nothing.
   * After it, the overlay answers no lookups.
   */
  leave: (options?: AbortOptions) => Promise<void>

  /**
   * Stops (true) or restarts (false) the overlay's periodic maintenance, an
   * experiment control (the Chord paper's failures without stabilization):
   * Chord's stabilize, fix-fingers, check-predecessor and reprovide;
   * kad-dht's routing-table refresh. Lookups still route around peers that
   * fail to answer.
   */
  pauseMaintenance: (paused: boolean) => void

  /** Calls `listener` on every change of the routing state; returns the unsubscribe. */
  onChange: (listener: (change: OverlayChange) => void) => () => void
}
