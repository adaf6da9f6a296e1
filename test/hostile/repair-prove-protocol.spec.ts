/**
 * /shoal/prove/1.0.0 against what a hostile asker may send: a holder proves
 * what it holds and nothing else; a wrong nonce, too many CIDs or an
 * oversized request reset the stream, and the holder goes on proving for
 * everyone else.
 */
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { peerIdFromString } from '@libp2p/peer-id'
import { lpStream, pbStream } from '@libp2p/utils'
import { CID } from 'multiformats/cid'
import { sha256 } from 'multiformats/hashes/sha2'
import { challengeHolder } from '../../src/placement/prove-client.ts'
import { MAX_PROVE_CIDS, PROVE_PROTOCOL, ProveRequestCodec, ProveResponseCodec, proofOf } from '../../src/placement/prove-messages.ts'
import { createTestSwarm, type TestSwarm } from '../../src/swarm/test-swarm.ts'
import { shareRandom } from '../helpers/swarm.ts'

const KiB = 1024

describe('hostile: the prove protocol', function () {
  let swarm: TestSwarm
  before(async () => { swarm = await createTestSwarm(2) })
  after(async () => { await swarm?.destroy() })

  it('a holder proves the blocks it holds, with the asker\'s nonce, and no others', async () => {
    const [asker, holder] = swarm.peers
    const { cids } = await shareRandom(holder, { dir: swarm.dir, size: 40 * KiB, chunkSize: 16 * KiB, replicas: 0 })
    const absent = CID.createV1(0x55, await sha256.digest(randomBytes(64)))
    const challenge = { node: asker.libp2p, readBlock: async (cid: CID) => holder.content.readBlock(cid) }
    assert.deepEqual(await challengeHolder(challenge, holder.peerId.toString(), [...cids, absent]), [...cids.map(() => true), false])
    // the proof is bound to the nonce: the same block under another nonce hashes differently
    const block = await holder.content.readBlock(cids[0])
    assert.notDeepEqual(proofOf(randomBytes(32), block), proofOf(randomBytes(32), block))
  })

  const ask = async (request: Uint8Array): Promise<'reset' | 'answered'> => {
    const [asker, holder] = swarm.peers
    const stream = await asker.libp2p.dialProtocol(peerIdFromString(holder.peerId.toString()), PROVE_PROTOCOL)
    const lp = lpStream(stream)
    try {
      await lp.write(request)
      await lp.read({ signal: AbortSignal.timeout(10_000) })
      return 'answered'
    } catch {
      return 'reset'
    }
  }

  it('resets a wrong nonce, too many CIDs and an oversized request, and keeps proving for others', async () => {
    const [, holder] = swarm.peers
    const { cids } = await shareRandom(holder, { dir: swarm.dir, size: 20 * KiB, chunkSize: 16 * KiB, replicas: 0 })
    const cid = cids[0].bytes
    assert.equal(await ask(ProveRequestCodec.encode({ nonce: randomBytes(8), cids: [cid] })), 'reset', 'a short nonce')
    assert.equal(await ask(ProveRequestCodec.encode({ nonce: randomBytes(32), cids: Array.from({ length: MAX_PROVE_CIDS + 1 }, () => cid) })), 'reset', 'too many CIDs')
    assert.equal(await ask(randomBytes(64 * KiB)), 'reset', 'an oversized request')
    assert.equal(await ask(ProveRequestCodec.encode({ nonce: randomBytes(32), cids: [cid] })), 'answered', 'a good request')

    const [asker] = swarm.peers
    const stream = await asker.libp2p.dialProtocol(peerIdFromString(holder.peerId.toString()), PROVE_PROTOCOL)
    const pb = pbStream(stream)
    const nonce = randomBytes(32)
    await pb.write({ nonce, cids: [cid] }, ProveRequestCodec)
    const { proofs } = await pb.read(ProveResponseCodec)
    assert.deepEqual(Buffer.from(proofs[0]), Buffer.from(proofOf(nonce, await holder.content.readBlock(cids[0]))))
  })
})
