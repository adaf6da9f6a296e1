/**
 * Messages of /shoal/kad/find/1.0.0 (find.proto beside this file), and the
 * checks every decoded message goes through before the server or a lookup
 * sees it: sizes, counts, peer IDs and multiaddrs that parse. A message
 * failing them is a MalformedFindMessageError.
 */
import { peerIdFromMultihash, peerIdFromString } from '@libp2p/peer-id'
import { multiaddr, type Multiaddr } from '@multiformats/multiaddr'
import * as Digest from 'multiformats/hashes/digest'
import type { PeerId, PeerInfo } from '@libp2p/interface'
import { codecOf } from '../../wire/proto.ts'
import { KAD_ID_BYTES, MAX_ADDR_BYTES, MAX_ADDRS_PER_PEER, MAX_CLOSER_PEERS, MAX_PEER_ID_BYTES } from './constants.ts'
import { MalformedFindMessageError } from './errors.ts'

export interface FindRequest {
  key: Uint8Array
  count: number
}

export interface FindPeerMessage {
  id: Uint8Array
  addrs: Uint8Array[]
}

export interface FindResponse {
  closer: FindPeerMessage[]
}

const PROTO = new URL('find.proto', import.meta.url)
export const FindRequestCodec = codecOf<FindRequest>(PROTO, 'shoal.kad.Request')
export const FindResponseCodec = codecOf<FindResponse>(PROTO, 'shoal.kad.Response')

/** A request's key and count, checked. */
export function checkRequest (request: FindRequest): FindRequest {
  if (request.key.length !== KAD_ID_BYTES) throw new MalformedFindMessageError(`a key of ${request.key.length} bytes (want ${KAD_ID_BYTES})`)
  if (request.count < 1 || request.count > MAX_CLOSER_PEERS) throw new MalformedFindMessageError(`a count of ${request.count} (1 to ${MAX_CLOSER_PEERS})`)
  return request
}

/**
 * The same peers come back in answer after answer: their decoded IDs and
 * addresses are kept (decoding peer IDs and multiaddrs is what an answer
 * costs most). Past the limit the caches start over.
 */
const decodedIds = new Map<string, PeerId>()
const decodedAddrs = new Map<string, Multiaddr>()
const encodedIds = new Map<string, Uint8Array>()
const DECODE_CACHE_ENTRIES = 8_192

function bytesKey (bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('latin1')
}

function decodePeer (message: FindPeerMessage): PeerInfo {
  if (message.id.length === 0 || message.id.length > MAX_PEER_ID_BYTES) throw new MalformedFindMessageError(`a peer ID of ${message.id.length} bytes`)
  if (message.addrs.length > MAX_ADDRS_PER_PEER) throw new MalformedFindMessageError(`a peer with ${message.addrs.length} addresses (at most ${MAX_ADDRS_PER_PEER})`)
  const idKey = bytesKey(message.id)
  let id = decodedIds.get(idKey)
  if (id == null) {
    try {
      id = peerIdFromMultihash(Digest.decode(message.id))
    } catch (err) {
      throw new MalformedFindMessageError(`a peer ID that does not decode: ${(err as Error).message}`)
    }
    if (decodedIds.size >= DECODE_CACHE_ENTRIES) decodedIds.clear()
    decodedIds.set(idKey, id)
  }
  const idString = id.toString()
  const multiaddrs = message.addrs.map(bytes => {
    if (bytes.length > MAX_ADDR_BYTES) throw new MalformedFindMessageError(`an address of ${bytes.length} bytes`)
    const addrKey = `${idKey}/${bytesKey(bytes)}`
    let addr = decodedAddrs.get(addrKey)
    if (addr == null) {
      try {
        addr = withPeerId(multiaddr(bytes), idString)
      } catch (err) {
        if (err instanceof MalformedFindMessageError) throw err
        throw new MalformedFindMessageError(`an address that does not decode: ${(err as Error).message}`)
      }
      if (decodedAddrs.size >= DECODE_CACHE_ENTRIES) decodedAddrs.clear()
      decodedAddrs.set(addrKey, addr)
    }
    return addr
  })
  return { id, multiaddrs }
}

/** An answer's closer peers, checked: at most `asked`, and never the peer that answered. */
export function decodeResponse (response: FindResponse, asked: number, from: string): PeerInfo[] {
  if (response.closer.length > asked) throw new MalformedFindMessageError(`${from} named ${response.closer.length} peers (${asked} asked for)`)
  const peers = response.closer.map(decodePeer)
  if (peers.some(p => p.id.toString() === from)) throw new MalformedFindMessageError(`${from} named itself as closer`)
  return peers
}

/** A peer as an answer carries it. */
export function encodePeer (peer: PeerInfo): FindPeerMessage {
  const id = peer.id.toString()
  let bytes = encodedIds.get(id)
  if (bytes == null) {
    bytes = peerIdFromString(id).toMultihash().bytes
    if (encodedIds.size >= DECODE_CACHE_ENTRIES) encodedIds.clear()
    encodedIds.set(id, bytes)
  }
  return { id: bytes, addrs: peer.multiaddrs.slice(0, MAX_ADDRS_PER_PEER).map(ma => ma.bytes) }
}

/** `addr` ending in /p2p/<id>, so a dial to it checks whom it reached and reuses an open connection. */
export function withPeerId (addr: Multiaddr, id: string): Multiaddr {
  const own = addr.getComponents().findLast(c => c.name === 'p2p')?.value
  if (own === id) return addr
  if (own != null) throw new MalformedFindMessageError(`an address of ${own} given for ${id}`)
  return addr.encapsulate(`/p2p/${id}`)
}
