/** Messages of /shoal/store/1.0.0 (src/wire/store.proto). */
import { WireProtocolError } from './errors.ts'
import { pushVarint } from './length-prefix.ts'
import { MAX_CIDS_PER_QUERY, MAX_LIST_MESSAGE_BYTES } from './limits.ts'
import { codecOf } from './proto.ts'
import { countFields, LENGTH_DELIMITED, scanFields } from './proto-scan.ts'

export const STORE_PROTOCOL = '/shoal/store/1.0.0'

export const StoreStatus = {
  UNKNOWN: 0,
  STORED: 1,
  ALREADY_HELD: 2,
  TOO_LARGE: 3,
  NOT_CLOSEST: 4,
  OVER_QUOTA: 5,
  BAD_BLOCK: 6,
  UNSUPPORTED: 7,
  HAVE: 8,
  DONT_HAVE: 9,
  FAILED: 10,
  BUSY: 11
} as const
export type StoreStatus = typeof StoreStatus[keyof typeof StoreStatus]

export function storeStatusName (status: number): string {
  return Object.entries(StoreStatus).find(([, v]) => v === status)?.[0] ?? `STATUS_${status}`
}

export interface PutMessage {
  cid: Uint8Array
  data: Uint8Array
  replicas: number
}

export interface HasMessage {
  cids: Uint8Array[]
}

export interface StoreRequest {
  put?: PutMessage | null
  has?: HasMessage | null
}

export interface StoreResponse {
  statuses: number[]
  message: string
  /** BUSY: when the sender may offer again. */
  retry_after_ms?: number
}

export const StoreRequestCodec = codecOf<StoreRequest>('store.proto', 'shoal.store.StoreRequest')
export const StoreResponseCodec = codecOf<StoreResponse>('store.proto', 'shoal.store.StoreResponse')

/**
 * A StoreRequest, checked before it is decoded: exactly one of put / has,
 * and a has list within MAX_LIST_MESSAGE_BYTES and MAX_CIDS_PER_QUERY, so
 * decoding allocates no more than those limits allow. Throws
 * WireProtocolError otherwise.
 */
export function decodeStoreRequest (body: Uint8Array): StoreRequest {
  let kind: 'put' | 'has' | undefined
  let has: Uint8Array | undefined
  scanFields(body, (field, wireType, start, end) => {
    if (field !== 1 && field !== 2) return // a field from a later version
    if (wireType !== LENGTH_DELIMITED || kind != null) throw new WireProtocolError('a store request must carry exactly one of put / has')
    kind = field === 1 ? 'put' : 'has'
    if (kind === 'has') has = body.subarray(start, end)
  })
  if (kind == null) throw new WireProtocolError('a store request must carry exactly one of put / has')
  if (has != null) {
    if (has.length > MAX_LIST_MESSAGE_BYTES) throw new WireProtocolError(`a has query of ${has.length} bytes (most ${MAX_LIST_MESSAGE_BYTES})`)
    countFields(has, [1], [MAX_CIDS_PER_QUERY], ['CIDs in a has query'])
  }
  return StoreRequestCodec.decode(body)
}

/**
 * A put request, length prefix included, as two buffers to send in order:
 * a small header, then the block itself, never copied into an encoder's
 * buffer. Protobuf as store.proto says (Put's fields cid, replicas, then
 * data, last so the block can trail the header).
 */
export function encodePut (cid: Uint8Array, data: Uint8Array, replicas: number): [Uint8Array, Uint8Array] {
  const put: number[] = [0x0a]
  pushVarint(put, cid.length)
  for (const b of cid) put.push(b)
  if (replicas !== 0) { put.push(0x18); pushVarint(put, replicas) }
  put.push(0x12)
  pushVarint(put, data.length)
  const putLength = put.length + data.length
  const head: number[] = [0x0a]
  pushVarint(head, putLength)
  const out: number[] = []
  pushVarint(out, head.length + putLength)
  return [Uint8Array.from([...out, ...head, ...put]), data]
}
