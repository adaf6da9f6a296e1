/**
 * Ring positions of peers and keys in the identifier space both overlays
 * share (../key-space.ts): sha2-256 of a peer ID's multihash bytes, and of
 * a key's bytes. Peer positions are cached by peer ID string, since every
 * comparison on the ring needs them.
 */
import { peerIdFromString } from '@libp2p/peer-id'
import { idOfKey, idOfPeer } from '../key-space.ts'
import { MAX_REMEMBERED_PEERS } from './constants.ts'
import { toPosition } from './ring.ts'

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
}
