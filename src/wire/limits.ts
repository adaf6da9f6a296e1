/**
 * Limits shared by Shoal's wire protocols (docs/protocol.md lists every
 * limit with its value). Each protocol's own limits live beside its server:
 * src/placement/store-server.ts, src/exchange/xfer-server.ts,
 * src/wire/xfer-messages.ts.
 */

const KiB = 1024
const MiB = 1024 * KiB

/** Largest block Shoal stores or sends: the largest chunk size. */
export const MAX_BLOCK_BYTES = 4 * MiB

/** Largest message on any Shoal stream: one block plus its envelope. */
export const MAX_MESSAGE_BYTES = MAX_BLOCK_BYTES + 64 * KiB

/**
 * Largest message that carries only lists of CIDs (a store `has`, every
 * xfer Request): 8192 CIDs of ~38 bytes each fit with room to spare. Checked
 * before the list is decoded, so a list costs at most this much memory.
 */
export const MAX_LIST_MESSAGE_BYTES = 512 * KiB

/** Most CIDs in one Has query. */
export const MAX_CIDS_PER_QUERY = 1024

/**
 * The most a sender may still send to a stream after the receiver paused it:
 * the largest receive window yamux grants (its default, which Shoal keeps).
 */
export const MUXER_MAX_WINDOW_BYTES = 16 * MiB

/**
 * Bytes a served stream keeps beyond what its reader asked for before it is
 * paused (the sender is then held up by yamux's flow control).
 */
export const UNREAD_HIGH_WATER_BYTES = 256 * KiB

/**
 * The slow-read floor: a peer that, over this much time spent waiting for it
 * to take answers, takes fewer than SLOW_READ_MIN_BYTES has its stream
 * reset. The window counts only time spent waiting on the reader, across
 * answers and parts, so a trickle cannot restart it.
 */
export const SLOW_READ_WINDOW_MS = 20_000
/** See SLOW_READ_WINDOW_MS: a floor of 12.8 KiB/s. */
export const SLOW_READ_MIN_BYTES = 256 * KiB

/**
 * Longest a session waits for its stream to open (a dial, or a new stream
 * on a connection that a partition or a vanished peer left stalled, which
 * would otherwise wait for TCP to give up).
 */
export const STREAM_OPEN_TIMEOUT_MS = 10_000

/** A stream that waits this long for room in a shared budget is reset. */
export const RESERVE_TIMEOUT_MS = 30_000

/**
 * Request/answer protocols (Chord, Kademlia's find) carry one request after
 * another on a stream (kept-streams.ts). The asking side closes one unused
 * for KEPT_STREAM_IDLE_MS; the answering side resets one that brings no
 * whole request for twice as long (the deadline of each inbound read), so
 * it is normally the asker who closes, and a silent asker is cut off.
 */
export const KEPT_STREAM_IDLE_MS = 30_000
export const SERVED_STREAM_IDLE_MS = 2 * KEPT_STREAM_IDLE_MS
/** Unused streams the asking side keeps per peer for its next requests. */
export const MAX_KEPT_STREAMS_PER_PEER = 2

/** pbStream options for speaking a Shoal protocol by hand (tests, scripts): the message limit, and room to buffer one whole message. */
export const STREAM_LIMITS = { maxDataLength: MAX_MESSAGE_BYTES, maxBufferSize: MAX_MESSAGE_BYTES + 16 }
