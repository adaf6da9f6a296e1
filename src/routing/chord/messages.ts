/**
 * Messages of /shoal/chord/1.0.0 (chord.proto beside this file), and the
 * checks every decoded message goes through before a handler or a lookup
 * sees it: sizes, counts, peer IDs and multiaddrs that parse. A message
 * failing them is a MalformedMessageError, and the stream is reset.
 */
import { peerIdFromMultihash, peerIdFromString } from '@libp2p/peer-id'
import { multiaddr, type Multiaddr } from '@multiformats/multiaddr'
import * as Digest from 'multiformats/hashes/digest'
import { codecOf } from '../../wire/proto.ts'
import {
  MAX_ADDR_BYTES, MAX_ADDRS_PER_PEER, MAX_KEY_BYTES, MAX_PEER_ID_BYTES, MAX_PEERS_PER_MESSAGE,
  MAX_RECORDS_PER_MESSAGE, RING_BITS
} from './constants.ts'
import { MalformedMessageError } from './errors.ts'

export interface PeerMessage {
  id: Uint8Array
  addrs: Uint8Array[]
}

export interface ProviderRecordMessage {
  key: Uint8Array
  providers: PeerMessage[]
}

export interface ChordRequest {
  from?: PeerMessage | null
  find_successor?: { key: Uint8Array } | null
  get_state?: { notify: boolean } | null
  leave?: { predecessor?: PeerMessage | null, successors: PeerMessage[] } | null
  ping?: Record<string, never> | null
  add_providers?: { records: ProviderRecordMessage[], replicas: number } | null
  get_providers?: { key: Uint8Array } | null
}

export interface FindSuccessorResult {
  done: boolean
  successors: PeerMessage[]
  complete: boolean
  closer: PeerMessage[]
  confirmed: boolean
}

export interface StateResult {
  predecessor?: PeerMessage | null
  successors: PeerMessage[]
  complete: boolean
}

export interface ChordResponse {
  find_successor?: FindSuccessorResult | null
  state?: StateResult | null
  ack?: Record<string, never> | null
  add_providers?: { accepted: number } | null
  get_providers?: { providers: PeerMessage[] } | null
}

const PROTO = new URL('chord.proto', import.meta.url)
export const ChordRequestCodec = codecOf<ChordRequest>(PROTO, 'shoal.chord.Request')
export const ChordResponseCodec = codecOf<ChordResponse>(PROTO, 'shoal.chord.Response')

/** The request's operation: exactly one must be set. */
export type Operation = 'find_successor' | 'get_state' | 'leave' | 'ping' | 'add_providers' | 'get_providers'
const OPERATIONS: Operation[] = ['find_successor', 'get_state', 'leave', 'ping', 'add_providers', 'get_providers']

export function operationOf (request: ChordRequest): Operation {
  const set = OPERATIONS.filter(op => request[op] != null)
  if (set.length !== 1) throw new MalformedMessageError(`a request must carry exactly one operation, it carries ${set.length}`)
  return set[0]
}

/** A peer as Chord handles it: the peer ID string and its addresses (each ending in /p2p/<id>). */
export interface PeerInfo {
  id: string
  addrs: Multiaddr[]
}

/**
 * The same few peers come back in every stabilize answer: their decoded IDs
 * and addresses are kept (peer IDs in base58 and multiaddrs are costly to
 * decode each time). Past the limit the caches start over.
 */
const decodedIds = new Map<string, string>()
const decodedAddrs = new Map<string, Multiaddr>()
const DECODE_CACHE_ENTRIES = 8_192

export function decodePeer (message: PeerMessage | null | undefined): PeerInfo {
  if (message == null) throw new MalformedMessageError('a peer is missing')
  if (message.id.length === 0 || message.id.length > MAX_PEER_ID_BYTES) throw new MalformedMessageError(`a peer ID of ${message.id.length} bytes`)
  if (message.addrs.length > MAX_ADDRS_PER_PEER) throw new MalformedMessageError(`a peer with ${message.addrs.length} addresses (at most ${MAX_ADDRS_PER_PEER})`)
  const idKey = bytesKey(message.id)
  let id = decodedIds.get(idKey)
  if (id == null) {
    try {
      id = peerIdFromMultihash(Digest.decode(message.id)).toString()
    } catch (err) {
      throw new MalformedMessageError(`a peer ID that does not decode: ${(err as Error).message}`)
    }
    if (decodedIds.size >= DECODE_CACHE_ENTRIES) decodedIds.clear()
    decodedIds.set(idKey, id)
  }
  const addrs = message.addrs.map(bytes => {
    if (bytes.length > MAX_ADDR_BYTES) throw new MalformedMessageError(`an address of ${bytes.length} bytes`)
    const addrKey = `${idKey}/${bytesKey(bytes)}`
    let addr = decodedAddrs.get(addrKey)
    if (addr == null) {
      try {
        addr = withPeerId(multiaddr(bytes), id)
      } catch (err) {
        throw new MalformedMessageError(`an address that does not decode: ${(err as Error).message}`)
      }
      if (decodedAddrs.size >= DECODE_CACHE_ENTRIES) decodedAddrs.clear()
      decodedAddrs.set(addrKey, addr)
    }
    return addr
  })
  return { id, addrs }
}

function bytesKey (bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('latin1')
}

export function decodePeers (messages: PeerMessage[], limit = MAX_PEERS_PER_MESSAGE): PeerInfo[] {
  if (messages.length > limit) throw new MalformedMessageError(`${messages.length} peers in one list (at most ${limit})`)
  return messages.map(decodePeer)
}

/** A 32-byte ring position. */
export function checkRingKey (key: Uint8Array): Uint8Array {
  if (key.length !== RING_BITS / 8) throw new MalformedMessageError(`a ring key of ${key.length} bytes (want ${RING_BITS / 8})`)
  return key
}

/** A provider key (a CID's multihash bytes). */
export function checkProviderKey (key: Uint8Array): Uint8Array {
  if (key.length === 0 || key.length > MAX_KEY_BYTES) throw new MalformedMessageError(`a provider key of ${key.length} bytes`)
  return key
}

export function checkRecords (records: ProviderRecordMessage[]): ProviderRecordMessage[] {
  if (records.length > MAX_RECORDS_PER_MESSAGE) throw new MalformedMessageError(`${records.length} provider records in one message (at most ${MAX_RECORDS_PER_MESSAGE})`)
  return records
}

const idBytes = new Map<string, Uint8Array>()

/** A peer ID string's multihash bytes (as a Peer message carries them). */
export function peerIdBytes (id: string): Uint8Array {
  let bytes = idBytes.get(id)
  if (bytes == null) {
    bytes = peerIdFromString(id).toMultihash().bytes
    if (idBytes.size >= DECODE_CACHE_ENTRIES) idBytes.clear()
    idBytes.set(id, bytes)
  }
  return bytes
}

/** `addr` ending in /p2p/<id>, so a dial to it checks whom it reached and reuses an open connection. */
export function withPeerId (addr: Multiaddr, id: string): Multiaddr {
  const own = addr.getComponents().findLast(c => c.name === 'p2p')?.value
  if (own === id) return addr
  if (own != null) throw new MalformedMessageError(`an address of ${own} given for ${id}`)
  return addr.encapsulate(`/p2p/${id}`)
}
