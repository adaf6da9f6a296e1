/** Answering "which of these do you hold?" for a list of CIDs as a peer sent them. */
import { CID } from 'multiformats/cid'

/**
 * One flag per CID in `cids`, in order: what `lookup` says of those that
 * decode; a CID that does not decode is simply not held.
 */
export async function whichHeld (cids: Uint8Array[], lookup: (cids: CID[]) => Promise<boolean[]>): Promise<boolean[]> {
  const decoded = cids.map(bytes => { try { return CID.decode(bytes) } catch { return undefined } })
  const valid = decoded.flatMap((cid, i) => cid != null ? [i] : [])
  const found = await lookup(valid.map(i => decoded[i]!))
  const held = new Array<boolean>(cids.length).fill(false)
  valid.forEach((i, j) => { held[i] = found[j] })
  return held
}
