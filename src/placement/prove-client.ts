/**
 * The asking side of /shoal/prove/1.0.0: challenges a peer that says it
 * holds blocks to prove it, with a fresh nonce per request, and checks each
 * answer against the hash of this peer's own copy.
 */
import { randomBytes } from 'node:crypto'
import { peerIdFromString } from '@libp2p/peer-id'
import { pbStream } from '@libp2p/utils'
import type { Libp2p } from '@libp2p/interface'
import type { CID } from 'multiformats/cid'
import { anySignal } from '../utils/signals.ts'
import {
  MAX_PROVE_CIDS, MAX_PROVE_RESPONSE_BYTES, PROVE_NONCE_BYTES, PROVE_PROTOCOL, PROVE_TIMEOUT_MS,
  ProveRequestCodec, ProveResponseCodec, proofOf
} from './prove-messages.ts'

export interface ProveChallenge {
  node: Pick<Libp2p, 'dialProtocol'>
  /** This peer's own copy of a block (a proof is checked against it). */
  readBlock: (cid: CID) => Promise<Uint8Array>
}

/**
 * Which of `cids` the peer proves it holds (same order). A block this peer
 * cannot read itself counts as not proven. Rejects when the peer cannot be
 * asked or answers out of protocol.
 */
export async function challengeHolder (challenge: ProveChallenge, peerId: string, cids: CID[], signal?: AbortSignal): Promise<boolean[]> {
  const out: boolean[] = []
  for (let start = 0; start < cids.length; start += MAX_PROVE_CIDS) {
    const batch = cids.slice(start, start + MAX_PROVE_CIDS)
    const nonce = randomBytes(PROVE_NONCE_BYTES)
    const combined = anySignal([signal], { timeoutMs: PROVE_TIMEOUT_MS, message: () => `proving ${batch.length} blocks to ${peerId} took over ${PROVE_TIMEOUT_MS / 1000} s` })
    try {
      await proveBatch(challenge, peerId, batch, nonce, combined, out)
    } finally {
      combined.clear()
    }
  }
  return out
}

/** One challenge of at most MAX_PROVE_CIDS blocks on one stream; appends a verdict per CID to `out`. */
async function proveBatch (challenge: ProveChallenge, peerId: string, batch: CID[], nonce: Uint8Array, combined: AbortSignal, out: boolean[]): Promise<void> {
  const stream = await challenge.node.dialProtocol(peerIdFromString(peerId), PROVE_PROTOCOL, { signal: combined })
  try {
    const pb = pbStream(stream, { maxDataLength: MAX_PROVE_RESPONSE_BYTES, maxBufferSize: MAX_PROVE_RESPONSE_BYTES + 16 })
    await pb.write({ nonce, cids: batch.map(c => c.bytes) }, ProveRequestCodec, { signal: combined })
    const { proofs } = await pb.read(ProveResponseCodec, { signal: combined })
    if (proofs.length !== batch.length) throw new Error(`peer ${peerId} answered ${proofs.length} proofs for ${batch.length} CIDs`)
    await stream.close({ signal: combined }).catch(() => {})
    for (let i = 0; i < batch.length; i++) {
      if (proofs[i].length === 0) { out.push(false); continue }
      const own = await challenge.readBlock(batch[i]).catch(() => undefined)
      out.push(own != null && Buffer.from(proofOf(nonce, own)).equals(proofs[i]))
    }
  } catch (err) {
    stream.abort(err as Error)
    throw err
  }
}
