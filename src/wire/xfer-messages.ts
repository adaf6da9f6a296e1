/** Messages of /shoal/xfer/1.0.0 (src/wire/xfer.proto). */
import { codecOf } from './proto.ts'

export const XFER_PROTOCOL = '/shoal/xfer/1.0.0'

/** Unanswered CIDs (wants and haves) a holder keeps per stream. */
export const MAX_PENDING_PER_STREAM = 256

export const Presence = {
  UNKNOWN: 0,
  BLOCK: 1,
  HAVE: 2,
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
}

export const XferRequestCodec = codecOf<XferRequest>('xfer.proto', 'shoal.xfer.Request')
export const XferResponseCodec = codecOf<XferResponse>('xfer.proto', 'shoal.xfer.Response')
