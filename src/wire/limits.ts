/** Size limits of Shoal's wire protocols (docs/protocol.md). */

/** Largest block Shoal stores or sends: the largest chunk size. */
export const MAX_BLOCK_BYTES = 4 * 1024 * 1024

/** Largest message on any Shoal stream: one block plus its envelope. */
export const MAX_MESSAGE_BYTES = MAX_BLOCK_BYTES + 64 * 1024

/** Most CIDs in one Has query. */
export const MAX_CIDS_PER_QUERY = 1024

/** pbStream options for Shoal streams: the message limit, and room to buffer one whole message. */
export const STREAM_LIMITS = { maxDataLength: MAX_MESSAGE_BYTES, maxBufferSize: MAX_MESSAGE_BYTES + 16 }
