/**
 * The placement and repair counters `/metrics` serves (docs/api.md), read
 * from each peer's own Prometheus registry (the one the API's `/metrics`
 * route renders) on a 5-peer swarm: a share counts exactly the blocks and
 * bytes pushed on the sharer and stored on each receiver, a refused block
 * counts under its status, and every repair pass counts once.
 * On Kademlia only: what is counted does not depend on the overlay
 * (placement.spec.ts and repair.spec.ts place and repair through both).
 */
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { cidOf, RAW_CODE } from '../../src/content/cid.ts'
import type { ShoalPeer } from '../../src/peer/peer.ts'
import { StoreSession } from '../../src/placement/store-client.ts'
import { createTestSwarm, type TestSwarm } from '../../src/swarm/test-swarm.ts'
import { waitFor } from '../../src/utils/wait.ts'
import { StoreStatus } from '../../src/wire/store-messages.ts'
import { shareRandom, trueClosest } from '../helpers/swarm.ts'

const KiB = 1024

/** The value of one sample in Prometheus text (0 when the series has not been written). */
function sample (text: string, name: string, labels = ''): number {
  const line = text.split('\n').find(l => l.startsWith(`${name}${labels} `))
  return line == null ? 0 : Number(line.slice(line.lastIndexOf(' ') + 1))
}

describe('placement and repair counters in /metrics', function () {
  this.timeout(120_000)
  let swarm: TestSwarm
  before(async () => { swarm = await createTestSwarm(5, { metrics: true, config: { repair: { intervalSeconds: 1, maxPushesPerRun: 1024 } } }) })
  after(async () => { await swarm?.destroy() })

  const metrics = async (peer: ShoalPeer): Promise<string> => {
    const registry = peer.metricsRegistry
    assert.ok(registry != null, 'the peer collects metrics')
    return registry.metrics()
  }

  it('counts the blocks and bytes a share pushed and each peer stored, a refusal by its status, and each repair pass', async () => {
    const sharer = swarm.peers[0]
    const before = await Promise.all(swarm.peers.map(metrics))
    const { cids } = await shareRandom(sharer, { dir: swarm.dir, size: 5 * 64 * KiB + 3, chunkSize: 64 * KiB, replicas: 3 })
    // what placement must have done: each block to its 3 closest, the sharer excepted
    const pushed = new Map(swarm.peers.map(p => [p.peerId.toString(), { blocks: 0, bytes: 0 }]))
    let totalBlocks = 0
    let totalBytes = 0
    for (const cid of cids) {
      const size = (await sharer.content.blockSize(cid))!
      for (const id of trueClosest(swarm.peers, cid, 3)) {
        if (id === sharer.peerId.toString()) continue
        const p = pushed.get(id)!
        p.blocks++
        p.bytes += size
        totalBlocks++
        totalBytes += size
      }
    }
    assert.ok(totalBlocks >= 2 * cids.length, `${totalBlocks} pushes for ${cids.length} blocks`)
    const after = await Promise.all(swarm.peers.map(metrics))
    const delta = (i: number, name: string, labels = ''): number => sample(after[i], name, labels) - sample(before[i], name, labels)
    assert.equal(delta(0, 'shoal_placement_blocks_pushed_total'), totalBlocks)
    assert.equal(delta(0, 'shoal_placement_bytes_pushed_total'), totalBytes)
    swarm.peers.forEach((peer, i) => {
      if (i === 0) return
      const expected = pushed.get(peer.peerId.toString())!
      assert.deepEqual([delta(i, 'shoal_replicas_stored_total'), delta(i, 'shoal_replica_bytes_stored_total')], [expected.blocks, expected.bytes], `peer ${i} stored`)
    })

    // a block whose bytes do not match its CID: refused, counted as BAD_BLOCK on the receiver
    const data = randomBytes(1000)
    const cid = cidOf(RAW_CODE, data)
    const receiverId = trueClosest(swarm.peers, cid, 3).find(id => id !== sharer.peerId.toString())!
    const receiver = swarm.peers.findIndex(p => p.peerId.toString() === receiverId)
    const refusedBefore = sample(await metrics(swarm.peers[receiver]), 'shoal_replicas_refused_total', '{reason="BAD_BLOCK"}')
    const session = await StoreSession.open(sharer.libp2p, receiverId)
    try {
      assert.equal((await session.put(cid, randomBytes(1000), 3)).status, StoreStatus.BAD_BLOCK)
    } finally {
      await session.close().catch(() => {})
    }
    assert.equal(sample(await metrics(swarm.peers[receiver]), 'shoal_replicas_refused_total', '{reason="BAD_BLOCK"}'), refusedBefore + 1)

    // repair passes: the counter follows the peer's own count of finished
    // passes, pass for pass (one more while a pass runs: it counts at its start)
    const peer = swarm.peers[1]
    const start = peer.repairPasses
    await waitFor(() => peer.repairPasses >= start + 2, { timeoutMs: 30_000, message: () => 'no two repair passes ran' })
    const finishedBefore = peer.repairPasses
    const runs = sample(await metrics(peer), 'shoal_repair_runs_total')
    const finishedAfter = peer.repairPasses
    assert.ok(runs >= finishedBefore && runs <= finishedAfter + 1, `${runs} repair runs counted, ${finishedBefore}-${finishedAfter} passes finished`)
  })
})
