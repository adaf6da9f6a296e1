/** Messages of /shoal/xfer/1.0.0 (src/wire/xfer.proto). */
import { WireProtocolError } from './errors.ts'
import { MAX_LIST_MESSAGE_BYTES } from './limits.ts'
import { codecOf } from './proto.ts'
import { countFields } from './proto-scan.ts'

export const XFER_PROTOCOL = '/shoal/xfer/1.0.0'

/** Unanswered wants a holder keeps per stream. */
export const MAX_PENDING_WANTS = 256

/** Unanswered have lists a holder keeps per stream. */
export const MAX_PENDING_HAVES = 4

/** Most CIDs in one have list (~300 KiB of CIDs, under MAX_LIST_MESSAGE_BYTES). */
export const MAX_HAVE_CIDS = 8192

/** Most cancels in one Request (no more wants than that can be unanswered). */
export const MAX_CANCEL_CIDS = MAX_PENDING_WANTS

export const Presence = {
  UNKNOWN: 0,
  BLOCK: 1,
  HAVE_SET: 2,
  DONT_HAVE: 3
} as const

export interface XferRequest {
  want: Uint8Array[]
  have: Uint8Array[]
  cancel: Uint8Array[]
}

export interface XferResponse {
  cid: Uint8Array
  presence: number
  data: Uint8Array
  bits: Uint8Array
}

export const XferRequestCodec = codecOf<XferRequest>('xfer.proto', 'shoal.xfer.Request')
export const XferResponseCodec = codecOf<XferResponse>('xfer.proto', 'shoal.xfer.Response')

/**
 * A Request, checked before it is decoded: at most MAX_LIST_MESSAGE_BYTES,
 * MAX_PENDING_WANTS wants, MAX_HAVE_CIDS haves and MAX_CANCEL_CIDS cancels,
 * counted without building any list. Throws WireProtocolError otherwise.
 */
export function decodeXferRequest (body: Uint8Array): XferRequest {
  if (body.length > MAX_LIST_MESSAGE_BYTES) throw new WireProtocolError(`a request of ${body.length} bytes (most ${MAX_LIST_MESSAGE_BYTES})`)
  countFields(body, [1, 2, 3], [MAX_PENDING_WANTS, MAX_HAVE_CIDS, MAX_CANCEL_CIDS], ['wants', 'CIDs in a have list', 'cancels'])
  return XferRequestCodec.decode(body)
}

/** Packs booleans into `bits` (bit i of byte i >> 3, low bit first). */
export function packBits (flags: boolean[]): Uint8Array {
  const bits = new Uint8Array(Math.ceil(flags.length / 8))
  flags.forEach((flag, i) => { if (flag) bits[i >> 3] |= 1 << (i & 7) })
  return bits
}

/** Unpacks `count` booleans from `bits`; missing bytes read as false. */
export function unpackBits (bits: Uint8Array, count: number): boolean[] {
  const flags = new Array<boolean>(count)
  for (let i = 0; i < count; i++) flags[i] = ((bits[i >> 3] ?? 0) & (1 << (i & 7))) !== 0
  return flags
}
