/**
 * The identifier space both overlays share: 256 bits. A peer's identifier
 * is sha2-256 of its peer ID's multihash bytes, a key's is sha2-256 of the
 * key bytes (for a block, its CID's multihash bytes). This is exactly how
 * kad-dht places peers and keys; Chord reads the same 32 bytes as a ring
 * position (chord/ring.ts), so a swarm's peers sit at the same identifiers
 * whichever overlay it runs.
 */
import { createHash } from 'node:crypto'
import type { PeerId } from '@libp2p/interface'

/** Bytes of an identifier. */
export const ID_BYTES = 32

/** A key's 32-byte identifier. */
export function idOfKey (key: Uint8Array): Uint8Array {
  return createHash('sha256').update(key).digest()
}

/** A peer's 32-byte identifier. */
export function idOfPeer (peerId: PeerId): Uint8Array {
  return idOfKey(peerId.toMultihash().bytes)
}
