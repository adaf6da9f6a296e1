/**
 * CIDs as Shoal uses them: raw leaves and dag-pb nodes, CIDv1, sha2-256.
 * Hashing goes through node:crypto directly (the fastest sha2-256 here,
 * ~1.1-1.4 GiB/s on one core); the CID is assembled with multiformats.
 */
import { createHash } from 'node:crypto'
import { CID } from 'multiformats/cid'
import * as Digest from 'multiformats/hashes/digest'
import { InvalidInputError, ShoalError } from '../errors.ts'

// The multicodec table's numbers, written out rather than imported from the
// codecs: every CLI command parses CIDs, and loading @ipld/dag-pb and the
// hashers for three constants cost it start-up time (test/unit/cid.spec.ts
// checks them against the libraries).
/** `raw` (multiformats/codecs/raw). */
export const RAW_CODE = 0x55
/** `dag-pb` (@ipld/dag-pb). */
export const DAG_PB_CODE = 0x70
/** `sha2-256` (multiformats/hashes/sha2). */
export const SHA256_CODE = 0x12

/** The input could not be parsed as a CID. Exit 2. */
export class MalformedCidError extends InvalidInputError {
  static name = 'MalformedCidError'
}

/** A CID Shoal cannot store or verify (another hash or codec). */
export class UnsupportedCidError extends InvalidInputError {
  static name = 'UnsupportedCidError'
}

/** Bytes that do not hash to the CID they were stored or sent under. */
export class BlockMismatchError extends ShoalError {
  static name = 'BlockMismatchError'
}

export function sha256Digest (bytes: Uint8Array): Uint8Array {
  return createHash('sha256').update(bytes).digest()
}

export function cidOf (code: number, bytes: Uint8Array): CID {
  return CID.createV1(code, Digest.create(SHA256_CODE, sha256Digest(bytes)))
}

/** The raw-leaf CID for a sha2-256 digest. */
export function rawCid (digest: Uint8Array): CID {
  return CID.createV1(RAW_CODE, Digest.create(SHA256_CODE, digest))
}

/** Parses user input; one clear error for anything that is not a CID. */
export function parseCid (text: string): CID {
  const trimmed = text.trim()
  let cid: CID
  try {
    cid = CID.parse(trimmed)
  } catch {
    throw new MalformedCidError(`malformed CID "${text}"`)
  }
  checkSupported(cid)
  return cid
}

/** Only sha2-256 raw and dag-pb blocks are stored and verified by Shoal. */
export function checkSupported (cid: CID): void {
  if (cid.multihash.code !== SHA256_CODE) {
    throw new UnsupportedCidError(`unsupported CID ${cid}: hash 0x${cid.multihash.code.toString(16)} is not sha2-256`)
  }
  if (cid.code !== RAW_CODE && cid.code !== DAG_PB_CODE) {
    throw new UnsupportedCidError(`unsupported CID ${cid}: codec 0x${cid.code.toString(16)} is neither raw nor dag-pb`)
  }
}

/** True when `bytes` hash to `cid` (sha2-256 only). */
export function matchesCid (cid: CID, bytes: Uint8Array): boolean {
  if (cid.multihash.code !== SHA256_CODE) return false
  const digest = sha256Digest(bytes)
  const expected = cid.multihash.digest
  if (digest.length !== expected.length) return false
  for (let i = 0; i < digest.length; i++) if (digest[i] !== expected[i]) return false
  return true
}

export function verifyBlock (cid: CID, bytes: Uint8Array): void {
  if (!matchesCid(cid, bytes)) throw new BlockMismatchError(`block ${cid} does not match its bytes`)
}

/** Canonical text form for keys and output: CIDv1 base32. */
export function cidKey (cid: CID): string {
  return cid.toV1().toString()
}

/**
 * A binary CID as a map key, without parsing it: two byte strings get the
 * same key exactly when they are equal. For wire code that matches answers
 * and cancels to wants by the bytes a peer sent.
 */
export function cidBytesKey (bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('latin1')
}
