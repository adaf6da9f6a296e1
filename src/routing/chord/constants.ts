/** Chord's defaults and limits, with units in their names (docs/overlays.md). */

export const CHORD_PROTOCOL = '/shoal/chord/1.0.0'

/** Bits of the identifier space: sha2-256. */
export const RING_BITS = 256

/**
 * r, the successor list's length. A peer stays on the ring as long as one
 * of its r successors lives; 16 survives the loss of half the peers at once
 * with high odds ((1/2)^16 per peer), at the cost of 16 entries per peer.
 */
export const DEFAULT_SUCCESSOR_LIST_LENGTH = 16
/** The longest successor list a peer may ask for or send. */
export const MAX_SUCCESSOR_LIST_LENGTH = 64

/**
 * Maintenance timers, each jittered to 0.5-1.5x so a swarm started at once
 * does not stabilize in lockstep. Sized for a local swarm of tens to a few
 * hundred peers sharing a machine: a stabilize round is one or two streams
 * per peer.
 */
export const DEFAULT_STABILIZE_INTERVAL_MS = 2_000
export const DEFAULT_FIX_FINGERS_INTERVAL_MS = 4_000
export const DEFAULT_CHECK_PREDECESSOR_INTERVAL_MS = 6_000
/**
 * Each of those intervals doubles after every round that changed nothing,
 * up to this many times itself (a settled ring idles cheaply), and is back
 * at its base on any change, join, leave, failed query or lost connection
 * to a peer in the routing state.
 */
export const DEFAULT_MAINTENANCE_BACKOFF = 8

/** One query to one peer (dial + request + answer); past it the query failed (suspects.ts). */
export const DEFAULT_QUERY_TIMEOUT_MS = 5_000
/** Queries in a row a peer may fail (unless its dial is refused) before it counts as dead (suspects.ts). */
export const SUSPECT_LIMIT = 3
/** Suspects remembered at once (the oldest go first). */
export const MAX_SUSPECTS = 4_096
/** A whole lookup, when the caller gives no signal of its own. */
export const DEFAULT_LOOKUP_TIMEOUT_MS = 30_000
/** Queries one lookup may send before it gives up (hostile answers cannot make it walk forever). */
export const MAX_LOOKUP_QUERIES = 128
/** Peers a responder names that precede a key, closest first: the querier's fallbacks when one is dead. */
export const CLOSER_PEERS_PER_ANSWER = 6

/** Deadline for writing an answer (and for closing a stream). */
export const INBOUND_TIMEOUT_MS = 10_000
/* How long streams are kept between requests, on both sides: src/wire/limits.ts (KEPT_STREAM_IDLE_MS). */
/** Chord streams per connection at once. */
export const MAX_INBOUND_STREAMS = 32
export const MAX_OUTBOUND_STREAMS = 64

/** Largest Chord message: a provider hand-off batch fits with room to spare. */
export const MAX_MESSAGE_BYTES = 256 * 1024
/** Peers in one message (a successor list, closer peers, providers of one root). */
export const MAX_PEERS_PER_MESSAGE = 64
/** Addresses sent per peer, and the largest one accepted. */
export const MAX_ADDRS_PER_PEER = 8
export const MAX_ADDR_BYTES = 256
/** Largest peer ID (multihash bytes): an inlined Ed25519/secp256k1 key or a sha2-256 of an RSA one. */
export const MAX_PEER_ID_BYTES = 128
/** Largest provider key (a CID's multihash bytes). */
export const MAX_KEY_BYTES = 128
/** Provider records in one hand-off message. */
export const MAX_RECORDS_PER_MESSAGE = 64

/** k for provider records: a root's record lives on its key's successor and the next k-1. */
export const DEFAULT_PROVIDER_REPLICAS = 3
/** A provider record is dropped this long after it was last announced. */
export const DEFAULT_PROVIDER_TTL_MS = 24 * 60 * 60 * 1000
/** Roots this peer provides are announced again this often (and records kept here expire between). */
export const DEFAULT_REPROVIDE_INTERVAL_MS = 12 * 60 * 60 * 1000
/** Provider records this peer keeps for others (distinct roots), and providers per root. */
export const MAX_PROVIDER_KEYS = 100_000
export const MAX_PROVIDERS_PER_KEY = 32

/**
 * A peer that refused a Chord request is reported once identify shows what
 * it runs (another overlay, or no overlay), or after this long without.
 */
export const REFUSAL_EXPLAIN_MS = 2_000

/** How long a graceful leave may take (hook, hand-off, goodbyes) when stop() runs it. */
export const LEAVE_TIMEOUT_MS = 10_000

/**
 * The provider records' hand-off and the goodbyes after the leave hook have
 * a deadline of their own: a hook (placement's hand-over) that used up the
 * leave's deadline must not also cost the neighbours their notice.
 */
export const GOODBYE_TIMEOUT_MS = 3_000

/** This peer's own addresses, as sent in every request, are read again at most this often. */
export const SELF_ADDRESSES_MS = 10_000
/** Peers whose addresses and ring positions are remembered beyond the routing state (least recently used go first). */
export const MAX_REMEMBERED_PEERS = 4_096
/** Peers that said goodbye, remembered so an answer from before their leave cannot put them back. */
export const MAX_DEPARTED_PEERS = 1_024
/** Peers refused for not speaking Chord, remembered so each is logged once. */
export const MAX_REFUSED_PEERS = 4_096
