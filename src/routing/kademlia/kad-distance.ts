/**
 * XOR distance exactly as kad-dht measures it: both a peer ID and a key are
 * mapped into the identifier space (../key-space.ts: sha2-256 of the peer's
 * multihash bytes, and of the raw key bytes), then compared by XOR, most
 * significant byte first. The Kademlia overlay uses this to decide who the
 * k closest peers to a block are.
 */
import type { PeerId } from '@libp2p/interface'
import { idOfKey, idOfPeer } from '../key-space.ts'

/** A key's identifier, as kad-dht computes it (the shared key space's). */
export const kadIdOfKey = idOfKey
/** A peer's identifier, as kad-dht computes it (the shared key space's). */
export const kadIdOfPeer = idOfPeer

/** Negative when a is closer to target than b, positive when farther. */
export function compareDistance (target: Uint8Array, a: Uint8Array, b: Uint8Array): number {
  for (let i = 0; i < target.length; i++) {
    const da = a[i] ^ target[i]
    const db = b[i] ^ target[i]
    if (da !== db) return da - db
  }
  return 0
}

/** The `count` peers closest to `key` among `peers`, closest first. */
export function closestByXor (key: Uint8Array, peers: PeerId[], count: number): PeerId[] {
  const target = kadIdOfKey(key)
  return peers
    .map(peer => ({ peer, id: kadIdOfPeer(peer) }))
    .sort((a, b) => compareDistance(target, a.id, b.id))
    .slice(0, count)
    .map(entry => entry.peer)
}

/** Leading bits two keyspace IDs share (all of them when equal): the k-bucket a peer falls in, seen from the other. */
export function commonPrefixLength (a: Uint8Array, b: Uint8Array): number {
  for (let i = 0; i < a.length; i++) {
    const x = a[i] ^ b[i]
    if (x !== 0) return i * 8 + Math.clz32(x) - 24
  }
  return a.length * 8
}
