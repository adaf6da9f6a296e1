/** Messages and limits of /shoal/prove/1.0.0 (src/wire/prove.proto). */
import { createHash } from 'node:crypto'
import { codecOf } from '../wire/proto.ts'

export const PROVE_PROTOCOL = '/shoal/prove/1.0.0'

/** A fresh nonce per request: a proof cannot be computed before the request or reused. */
export const PROVE_NONCE_BYTES = 32
/** Most CIDs in one request: each costs the prover a block read and hash. */
export const MAX_PROVE_CIDS = 64
/** Largest request: 64 CIDs of at most 40 bytes each, the nonce and framing, with room. */
export const MAX_PROVE_REQUEST_BYTES = 8 * 1024
/** Largest response: 64 proofs of 32 bytes and framing, with room. */
export const MAX_PROVE_RESPONSE_BYTES = 8 * 1024
/** How long a prover has to answer, and a server to read a request. */
export const PROVE_TIMEOUT_MS = 30_000

export interface ProveRequest {
  nonce: Uint8Array
  cids: Uint8Array[]
}

export interface ProveResponse {
  proofs: Uint8Array[]
}

export const ProveRequestCodec = codecOf<ProveRequest>('./prove.proto', 'shoal.prove.ProveRequest')
export const ProveResponseCodec = codecOf<ProveResponse>('./prove.proto', 'shoal.prove.ProveResponse')

/** sha2-256(nonce || block): what a holder answers, and what the asker expects. */
export function proofOf (nonce: Uint8Array, block: Uint8Array): Uint8Array {
  return createHash('sha256').update(nonce).update(block).digest()
}
