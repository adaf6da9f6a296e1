/**
 * The one place that reaches past kad-dht's public interface: its routing
 * table (contacts, add/remove events) and the three behaviours Shoal changes
 * (below). kad-dht exports none of these, so each access checks the shape it
 * expects: if a kad-dht upgrade moves something, the table reads as empty
 * or the change is not applied (kad-dht's own behaviour comes back), and
 * test/integration/kademlia-overlay.spec.ts and the swarm tests fail loudly.
 */
import { MessageType, type KadDHT, type QueryEvent } from '@libp2p/kad-dht'
import type { AbortOptions, PeerId, PeerInfo } from '@libp2p/interface'
import { ShoalError } from '../../errors.ts'

export interface RoutingTableContact {
  peerId: PeerId
  /** sha2-256 of the peer's multihash: its position in the keyspace. */
  kadId: Uint8Array
}

interface KBucketInternals {
  toIterable?: () => Iterable<RoutingTableContact>
  get?: (kadId: Uint8Array) => RoutingTableContact | undefined
  verify?: (contact: { peerId: PeerId }, options?: AbortOptions) => Promise<boolean>
}

interface RoutingTableInternals extends EventTarget {
  kb?: KBucketInternals
}

interface KadDHTInternals {
  routingTable?: RoutingTableInternals
  onPeerConnect?: (peer: { id: PeerId }) => Promise<void>
  routingTableRefresh?: {
    afterStart?: () => Promise<void>
    refreshTable?: () => void
    refreshInterval?: number
    refreshTimeoutId?: ReturnType<typeof setTimeout>
  }
}

const internals = (dht: KadDHT): KadDHTInternals => dht as unknown as KadDHTInternals

/** Every contact in kad-dht's routing table (kad-dht may list this peer itself too). */
export function routingTableContacts (dht: KadDHT): RoutingTableContact[] {
  const kb = internals(dht).routingTable?.kb
  return kb?.toIterable == null ? [] : [...kb.toIterable()]
}

/** Calls `onAdd`/`onRemove` as peers enter and leave the routing table; returns the unsubscribe. */
export function watchRoutingTable (dht: KadDHT, onAdd: (peerId: PeerId) => void, onRemove: (peerId: PeerId) => void): () => void {
  const table = internals(dht).routingTable
  if (typeof table?.addEventListener !== 'function') return () => {}
  const added = (evt: Event): void => { onAdd((evt as CustomEvent<PeerId>).detail) }
  const removed = (evt: Event): void => { onRemove((evt as CustomEvent<PeerId>).detail) }
  table.addEventListener('peer:add', added)
  table.addEventListener('peer:remove', removed)
  return () => {
    table.removeEventListener('peer:add', added)
    table.removeEventListener('peer:remove', removed)
  }
}

/**
 * kad-dht pings every new routing-table contact before adding it, even a peer
 * that has just connected to us and finished identify over that very
 * connection. A live, identified connection already proves the peer is
 * there (and libp2p's connection monitor keeps pinging it), so only contacts
 * we hold no open connection to are pinged (docs/benchmarks.md has the
 * count of pings saved).
 */
export function skipPingOfConnectedContacts (dht: KadDHT, isConnected: (peerId: PeerId) => boolean): void {
  const kb = internals(dht).routingTable?.kb
  if (kb?.verify == null) return
  const verify = kb.verify
  kb.verify = async (contact, options) => {
    if (isConnected(contact.peerId)) return true
    return verify(contact, options)
  }
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
export function addOnlyConnectedContacts (dht: KadDHT, isConnected: (peerId: PeerId) => boolean): void {
  const target = internals(dht)
  const onPeerConnect = target.onPeerConnect?.bind(dht)
  if (onPeerConnect == null) return
  target.onPeerConnect = async (peer) => {
    if (!isConnected(peer.id)) return
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
export function skipStartupRandomWalk (dht: KadDHT): void {
  const refresh = internals(dht).routingTableRefresh
  const { refreshTable, refreshInterval } = refresh ?? {}
  if (refresh?.afterStart == null || refreshTable == null || refreshInterval == null) return
  refresh.afterStart = async () => {
    // what refreshTable() itself does once its lookups have finished
    refresh.refreshTimeoutId = setTimeout(refreshTable, refreshInterval)
    refresh.refreshTimeoutId.unref?.()
  }
}

interface NetworkInternals extends Partial<EventTarget> {
  sendRequest?: (to: PeerId, msg: { type: MessageType, key: Uint8Array }, options?: AbortOptions) => AsyncIterable<QueryEvent>
}

/** kad-dht's FIND_NODE RPC could not be reached (kad-dht moved its network layer). */
export class FindNodeUnavailableError extends ShoalError {
  static name = 'FindNodeUnavailableError'
}

/** Whether this kad-dht exposes the FIND_NODE RPC findNode() uses. */
export function hasFindNode (dht: KadDHT): boolean {
  return typeof (internals(dht) as { network?: NetworkInternals }).network?.sendRequest === 'function'
}

/**
 * One FIND_NODE request to one peer over kad-dht's own network layer (its
 * protocol, timeouts and message codec): the peers the remote's routing
 * table holds closest to `key` (at most kad-dht's k; never the remote or
 * us). Throws when the peer does not answer.
 */
export async function findNode (dht: KadDHT, to: PeerId, key: Uint8Array, options: AbortOptions = {}): Promise<PeerInfo[]> {
  const network = (internals(dht) as { network?: NetworkInternals }).network
  if (network?.sendRequest == null) throw new FindNodeUnavailableError('kad-dht has no network.sendRequest')
  for await (const event of network.sendRequest.call(network, to, { type: MessageType.FIND_NODE, key }, options)) {
    if (event.name === 'PEER_RESPONSE') return event.closer
    if (event.name === 'QUERY_ERROR') throw event.error
  }
  options.signal?.throwIfAborted()
  throw new FindNodeUnavailableError('kad-dht is not running')
}

const refreshPaused = new WeakMap<object, { paused: boolean }>()

/**
 * Stops (`paused` true) or restarts kad-dht's periodic routing-table
 * refresh, its one maintenance timer (an experiment control: a swarm whose
 * tables must not repair themselves after failures). A refresh already
 * under way finishes but does not arm the next. Returns false when this
 * kad-dht has no refresh where expected.
 */
export function pauseTableRefresh (dht: KadDHT, paused: boolean): boolean {
  const refresh = internals(dht).routingTableRefresh
  const { refreshTable, refreshInterval } = refresh ?? {}
  if (refresh == null || refreshTable == null || refreshInterval == null) return false
  let state = refreshPaused.get(refresh)
  if (state == null) {
    const s = state = { paused: false }
    refreshPaused.set(refresh, s)
    // kad-dht re-arms its timer with whatever refreshTable is then
    refresh.refreshTable = () => { if (!s.paused) refreshTable() }
  }
  const wrapped = refresh.refreshTable ?? refreshTable
  if (state.paused === paused) return true
  state.paused = paused
  clearTimeout(refresh.refreshTimeoutId)
  refresh.refreshTimeoutId = undefined
  if (!paused) {
    refresh.refreshTimeoutId = setTimeout(wrapped, refreshInterval)
    refresh.refreshTimeoutId.unref?.()
  }
  return true
}
