/**
 * Ring positions of peers and keys in the identifier space both overlays
 * share (../key-space.ts): sha2-256 of a peer ID's multihash bytes, and of
 * a key's bytes. Peer positions are cached by peer ID string, since every
 * comparison on the ring needs them.
 */
import { peerIdFromString } from '@libp2p/peer-id'
import { idOfKey, idOfPeer } from '../key-space.ts'
import { MAX_REMEMBERED_PEERS } from './constants.ts'
import { clockwise, clockwiseFrom, toPosition } from './ring.ts'

export class Positions {
  private readonly cache = new Map<string, bigint>()

  /** 32-byte identifier of a peer. */
  idOfPeer (peerId: string): Uint8Array {
    return idOfPeer(peerIdFromString(peerId))
  }

  /** 32-byte identifier of a key. */
  idOfKey (key: Uint8Array): Uint8Array {
    return idOfKey(key)
  }

  ofPeer (peerId: string): bigint {
    let position = this.cache.get(peerId)
    if (position == null) {
      position = toPosition(this.idOfPeer(peerId))
      // hashing again is cheap: a full cache is simply started over
      if (this.cache.size >= 4 * MAX_REMEMBERED_PEERS) this.cache.clear()
      this.cache.set(peerId, position)
    }
    return position
  }

  ofKey (key: Uint8Array): bigint {
    return toPosition(this.idOfKey(key))
  }

  /** `peers` clockwise from the key: its successor first. */
  order (key: Uint8Array, peers: Iterable<string>): string[] {
    return clockwiseFrom(this.ofKey(key), new Set(peers), peer => this.ofPeer(peer))
  }

  /** How many of `among` lie clockwise from the key before `peerId`. */
  rank (key: Uint8Array, peerId: string, among: Iterable<string>): number {
    const origin = this.ofKey(key)
    const own = clockwise(origin, this.ofPeer(peerId))
    let before = 0
    for (const peer of new Set(among)) {
      if (peer !== peerId && clockwise(origin, this.ofPeer(peer)) < own) before++
    }
    return before
  }
}
