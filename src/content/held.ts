/** Answering "which of these do you hold?" for a list of CIDs as a peer sent them. */
import { CID } from 'multiformats/cid'
import { DAG_PB_CODE, RAW_CODE, SHA256_CODE } from './cid.ts'

/**
 * One flag per CID in `cids`, in order: what `lookup` says of those that
 * could name a block Shoal stores; anything else is simply not held. A
 * list of junk is cheap to answer: only bytes shaped like a sha2-256 CID
 * (v1 raw or dag-pb, or v0) are decoded, as a failed decode costs an
 * exception each.
 */
export async function whichHeld (cids: Uint8Array[], lookup: (cids: CID[]) => Promise<boolean[]>): Promise<boolean[]> {
  const decoded = cids.map(bytes => {
    if (!couldBeHeld(bytes)) return undefined
    try { return CID.decode(bytes) } catch { return undefined }
  })
  const valid = decoded.flatMap((cid, i) => cid != null ? [i] : [])
  const found = valid.length === 0 ? [] : await lookup(valid.map(i => decoded[i]!))
  const held = new Array<boolean>(cids.length).fill(false)
  valid.forEach((i, j) => { held[i] = found[j] })
  return held
}

/** A CIDv1 raw or dag-pb with a 32-byte sha2-256 digest, or a CIDv0 (a bare sha2-256 multihash). */
function couldBeHeld (bytes: Uint8Array): boolean {
  if (bytes.length === 36) return bytes[0] === 0x01 && (bytes[1] === RAW_CODE || bytes[1] === DAG_PB_CODE) && bytes[2] === SHA256_CODE && bytes[3] === 0x20
  return bytes.length === 34 && bytes[0] === SHA256_CODE && bytes[1] === 0x20
}
