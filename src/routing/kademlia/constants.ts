/** Limits and timers of /shoal/kad/find/1.0.0, with units in their names (docs/overlays.md). */

export const KAD_FIND_PROTOCOL = '/shoal/kad/find/1.0.0'

/** A keyspace ID: sha2-256, 32 bytes. */
export const KAD_ID_BYTES = 32
/** The most closer peers one request may ask for (and one answer may carry). */
export const MAX_CLOSER_PEERS = 32
/**
 * Closer peers a lookup asks each peer for, at the least (more when it
 * looks for more): a few past Shoal's k, so one dead peer among a reply's
 * closest still leaves the lookup candidates to go on with.
 */
export const MIN_CLOSER_PEERS = 6
/** Addresses sent per peer, and the largest one accepted. */
export const MAX_ADDRS_PER_PEER = 8
export const MAX_ADDR_BYTES = 256
/** Largest peer ID (multihash bytes): an inlined Ed25519/secp256k1 key or a sha2-256 of an RSA one. */
export const MAX_PEER_ID_BYTES = 128
/** Largest message: a full answer (32 peers of 8 addresses of 256 bytes) fits with room. */
export const MAX_FIND_MESSAGE_BYTES = 96 * 1024

/** One query (stream open, request, answer); past it the peer counts as not answering. */
export const FIND_QUERY_TIMEOUT_MS = 5_000
/** Deadline for writing an answer (and for closing a stream). */
export const FIND_INBOUND_TIMEOUT_MS = 10_000
/* How long streams are kept between requests, on both sides: src/wire/limits.ts (KEPT_STREAM_IDLE_MS). */
/** find streams per connection at once. */
export const MAX_INBOUND_FIND_STREAMS = 32
export const MAX_OUTBOUND_FIND_STREAMS = 64

/** Peers whose addresses are remembered (least recently used go first). */
export const MAX_REMEMBERED_ADDRESSES = 4_096
/** Peers found not to speak the find protocol (asked over kad-dht's FIND_NODE instead). */
export const MAX_LEGACY_PEERS = 4_096
