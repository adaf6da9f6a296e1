/**
 * Lying holders: peers that join a swarm and answer every store `has` with
 * HAVE and every put with STORED, keeping nothing (and answer a prove
 * request with made-up bytes). Once they are among the responsible peers of
 * a block, an honest holder they displaced asks them before it lets go;
 * believing them, every honest copy of a block whose responsible peers are
 * all liars would be dropped, and the sharer's `rm` would lose the block.
 *
 * A swarm of 5 honest peers shares a file of 51 blocks with 2 replicas; 10
 * liars join (so both responsible peers of ~40% of the blocks are liars);
 * every honest peer runs repair twice; the sharer removes the file. Every
 * honest holder still has its copies, and a newcomer fetches the file whole.
 */
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import fs from 'node:fs/promises'
import path from 'node:path'
import { pbStream } from '@libp2p/utils'
import type { Stream } from '@libp2p/interface'
import type { CID } from 'multiformats/cid'
import { PROVE_PROTOCOL, ProveRequestCodec, ProveResponseCodec } from '../../src/placement/prove-messages.ts'
import type { ShoalPeer } from '../../src/peer/peer.ts'
import { createTestSwarm, type TestSwarm } from '../../src/swarm/test-swarm.ts'
import { STREAM_LIMITS } from '../../src/wire/limits.ts'
import { STORE_PROTOCOL, StoreRequestCodec, StoreResponseCodec, StoreStatus } from '../../src/wire/store-messages.ts'
import { holdersOf, shareRandom, trueClosest } from '../helpers/swarm.ts'

const KiB = 1024
const K = 2
const LIARS = 10

/** Says it holds everything and stores nothing. */
async function lyingStore (stream: Stream): Promise<void> {
  const pb = pbStream(stream, STREAM_LIMITS)
  try {
    for (;;) {
      const request = await pb.read(StoreRequestCodec)
      const statuses = request.has != null ? request.has.cids.map(() => StoreStatus.HAVE) : [StoreStatus.STORED]
      await pb.write({ statuses, message: '' }, StoreResponseCodec)
    }
  } catch {
    stream.abort(new Error('done'))
  }
}

/** Answers every challenge with bytes of the right length and no knowledge behind them. */
async function lyingProver (stream: Stream): Promise<void> {
  const pb = pbStream(stream, { maxDataLength: 8 * KiB })
  try {
    const request = await pb.read(ProveRequestCodec)
    await pb.write({ proofs: request.cids.map(() => randomBytes(32)) }, ProveResponseCodec)
    await stream.close()
  } catch {
    stream.abort(new Error('done'))
  }
}

async function makeLiar (peer: ShoalPeer): Promise<void> {
  await peer.libp2p.unhandle(STORE_PROTOCOL)
  await peer.libp2p.handle(STORE_PROTOCOL, lyingStore, { maxInboundStreams: 64 })
  await peer.libp2p.unhandle(PROVE_PROTOCOL)
  await peer.libp2p.handle(PROVE_PROTOCOL, lyingProver, { maxInboundStreams: 64 })
}

describe('hostile: lying holders near 50 blocks during repair', function () {
  this.timeout(300_000)
  let swarm: TestSwarm
  before(async () => {
    // repair runs only when the test asks (repairNow)
    swarm = await createTestSwarm(5, { config: { replicas: K, repair: { intervalSeconds: 86_400, maxPushesPerRun: 100_000 } } })
  })
  after(async () => { await swarm?.destroy() })

  it('keeps every honest copy until its new holders prove theirs; the file survives the sharer\'s rm', async () => {
    const honest = [...swarm.peers]
    const [sharer] = honest
    const file = await shareRandom(sharer, { dir: swarm.dir, size: 50 * 16 * KiB + 100, chunkSize: 16 * KiB, replicas: K })
    assert.equal(file.result.placement.complete, true)
    assert.ok(file.cids.length >= 51, `${file.cids.length} blocks`)
    const replicaHolders = honest.filter(p => p !== sharer)
    const before = await Promise.all(file.cids.map(async cid => holdersOf(replicaHolders, cid)))

    const liars: ShoalPeer[] = []
    for (let i = 0; i < LIARS; i++) {
      const liar = await swarm.addPeer()
      await makeLiar(liar)
      liars.push(liar)
    }
    await swarm.waitRoutable()
    const liarIds = new Set(liars.map(l => l.peerId.toString()))
    const allLiars = (cid: CID): boolean => trueClosest(swarm.peers, cid, K).every(id => liarIds.has(id))
    const exposed = file.cids.filter(allLiars).length
    assert.ok(exposed >= 5, `${exposed} blocks have only liars as their ${K} responsible peers`)

    for (let pass = 0; pass < 2; pass++) {
      for (const peer of replicaHolders) await peer.repairNow()
    }
    const after = await Promise.all(file.cids.map(async cid => holdersOf(replicaHolders, cid)))
    file.cids.forEach((cid, i) => {
      for (const id of before[i]) assert.ok(after[i].includes(id), `honest holder ${id} kept block ${cid} (${allLiars(cid) ? 'only liars' : 'some liars'} responsible)`)
    })

    await sharer.content.remove(file.root)
    assert.equal(await sharer.content.hasBlock(file.cids[1]), false, 'the sharer let go of its blocks')
    const newcomer = await swarm.addPeer()
    await swarm.waitRoutable()
    const target = path.join(swarm.dir, 'fetched')
    await newcomer.fetcher.fetch(file.root, { output: { path: target }, timeoutMs: 60_000 })
    assert.ok((await fs.readFile(target)).equals(file.data), 'the file fetched after the sharer\'s rm is the one shared')
  })
})
