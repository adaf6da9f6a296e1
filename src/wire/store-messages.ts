/** Messages of /shoal/store/1.0.0 (src/wire/store.proto). */
import { codecOf } from './proto.ts'

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
  FAILED: 10
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
}

export const StoreRequestCodec = codecOf<StoreRequest>('store.proto', 'shoal.store.StoreRequest')
export const StoreResponseCodec = codecOf<StoreResponse>('store.proto', 'shoal.store.StoreResponse')
