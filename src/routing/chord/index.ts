/**
 * Chord (`/shoal/chord/1.0.0`): the second overlay behind the `Overlay`
 * interface, as a libp2p service.
 *
 *   const node = await createLibp2p({ ..., services: { identify: identify(), chord: chord({ successorListLength: 16 }) } })
 *   await node.services.chord.join(['/ip4/127.0.0.1/tcp/4101/p2p/12D3Koo...'])
 *   const { responsible, path, hops } = await node.services.chord.lookup(key, 3)
 *
 * Peers sit on a ring of 2^256 positions (sha2-256 of the peer ID's
 * multihash, as Kademlia places them). A key's k responsible peers are its
 * successor (the first peer at or clockwise after the key) and the k-1 after
 * it. Each peer keeps a successor list of r peers, a predecessor, and a
 * finger table (finger i = successor of self + 2^i), and repairs them with
 * Zave's corrected operations (maintenance.ts):
 *
 * ```
 *        join(bootstrap)                      timers, each jittered 0.5-1.5x
 *             |                        .-----------+-------------+------------------.
 *   lookup(own position) via seeds     v           v             v                  v
 *             |                   stabilize    fix-fingers   check-predecessor   reprovide
 *   successor s answers GetState:  GetState(s,   lookup of     ping(pred):         provide() of
 *   list := s + s.list            notify) ->     self + 2^i    dead -> flush       each root again
 *             |                   reconcile /       |
 *             v                   adopt a newer     v
 *      on the ring  <-------------  successor     fingers
 *             |
 *   lookup(key, k): ask the closest peer before the key -> closer peers -> ... ->
 *                   the key's predecessor: "done", its successor list = the k responsible
 *   leave(): onLeave hook (the owner hands its keys on) -> provider records to the
 *            successors -> Leave to predecessor and successor -> off the ring
 * ```
 *
 * Inbound: one request per stream (FindSuccessor, GetState, Leave, Ping,
 * AddProviders, GetProviders), each under a deadline; malformed or oversized
 * messages reset the stream. Peers whose identify shows no Chord (a peer of
 * another overlay) are refused: logged once, never added to the ring.
 */
import type { AbortOptions, ComponentLogger, Libp2p, PeerId, PeerStore, Startable } from '@libp2p/interface'
import type { AddressManager, ConnectionManager, Registrar } from '@libp2p/interface-internal'
import type { Datastore } from 'interface-datastore'
import type { Overlay } from '../index.ts'
import { ChordOverlayService } from './chord-overlay.ts'

export { CHORD_PROTOCOL } from './constants.ts'

/** What a leaving peer hands its owner just before it leaves (the peers to give its keys to). */
export interface ChordLeave {
  /** Its successor list, nearest first: the peers that take over its keys. */
  successors: string[]
  predecessor?: string
}

export interface ChordInit {
  /** r, the successor list's length (default 16). */
  successorListLength?: number
  /** Stabilize round (ms, jittered 0.5-1.5x; default 2,000). */
  stabilizeIntervalMs?: number
  /** One finger fixed per round (ms, jittered; default 4,000). */
  fixFingersIntervalMs?: number
  /** Predecessor pinged once per round (ms, jittered; default 6,000). */
  checkPredecessorIntervalMs?: number
  /**
   * How far an idle ring stretches those intervals: each doubles after a
   * round that changed nothing, up to this many times its base (default 8;
   * 1 keeps them fixed). Any change, failure or lost neighbour brings them back.
   */
  maintenanceBackoff?: number
  /** One query to one peer, dial included (ms; default 5,000); past it the peer counts as dead. */
  queryTimeoutMs?: number
  /** A whole lookup when the caller gives no signal (ms; default 30,000). */
  lookupTimeoutMs?: number
  /** Peers a provider record is placed on: the root key's successor and the next ones (default 3). */
  providerReplicas?: number
  /** How long a provider record is kept without being announced again (ms; default 24 h). */
  providerTtlMs?: number
  /** How often this peer announces its roots again (ms; default 12 h). */
  reprovideIntervalMs?: number
  /** Leave gracefully when libp2p stops (default true); false stops as if the peer crashed. */
  leaveOnStop?: boolean
  /**
   * Called first when this peer leaves, while the ring still holds it: the
   * owner hands the keys it holds to its successors (placement does).
   */
  onLeave?: (leave: ChordLeave, options: AbortOptions) => Promise<void>
  /** A peer was refused for not speaking Chord (called once per peer). */
  onPeerRefused?: (peerId: string, reason: string) => void
  /** Logger component name (default 'shoal:chord'). */
  logPrefix?: string
}

/** The libp2p components Chord uses. */
export interface ChordComponents {
  peerId: PeerId
  registrar: Pick<Registrar, 'handle' | 'unhandle'>
  connectionManager: Pick<ConnectionManager, 'openConnection' | 'openStream'>
  addressManager: Pick<AddressManager, 'getAddresses'>
  /** Addresses of the peers Chord finds go in, so Shoal's other protocols can dial them by ID. */
  peerStore: Pick<PeerStore, 'merge'>
  events: Pick<Libp2p, 'addEventListener' | 'removeEventListener'>
  logger: ComponentLogger
  /** Where the routing contacts are kept across restarts (contacts.ts); none: not kept. */
  datastore?: Pick<Datastore, 'get' | 'put' | 'has'>
}

export interface ChordStats {
  /** Requests this peer sent (lookups and maintenance), each one stream and one answer. */
  sent: number
  /** Requests it answered. */
  answered: number
}

export interface ChordOverlay extends Overlay, Startable {
  readonly name: 'chord'
  /** r, the successor list's length. */
  readonly successorListLength: number
  /**
   * Leaves the ring gracefully: the onLeave hook, provider records handed
   * to the successors, then Leave to the predecessor and the successor.
   * Timers stop; the peer answers no more Chord requests but the service
   * stays started until stop(). A second call does nothing.
   */
  leave: (options?: AbortOptions) => Promise<void>
  stats: () => ChordStats
  /**
   * Paused, no periodic maintenance runs (stabilize, notify, fix-fingers,
   * check-predecessor, reprovide): the routing state stays as it is, dead
   * peers included, while lookups and answers go on (the Chord paper's
   * failure experiment). Unpaused, the timers start again at their base
   * intervals.
   */
  pauseMaintenance: (paused: boolean) => void
}

export function chord (init: ChordInit = {}): (components: ChordComponents) => ChordOverlay {
  return (components) => new ChordOverlayService(components, init)
}
