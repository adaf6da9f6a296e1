/**
 * A store session that breaks off midway (a busy receiver that misses a
 * deadline, a stream reset) is not the receiver's refusal: the copies it
 * never took are offered to it again in the next round, since it is still
 * one of the block's closest.
 * On Kademlia only: the retry does not depend on how the targets were found.
 */
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import type { Connection, Stream } from '@libp2p/interface'
import { logger } from '@libp2p/logger'
import { cidOf, RAW_CODE } from '../../src/content/cid.ts'
import { PlaceStream } from '../../src/placement/place-stream.ts'
import { MAX_INBOUND_STORE_STREAMS } from '../../src/placement/store-server.ts'
import type { ShoalPeer } from '../../src/peer/peer.ts'
import { createTestSwarm, type TestSwarm } from '../../src/swarm/test-swarm.ts'
import { STORE_PROTOCOL } from '../../src/wire/store-messages.ts'

describe('placement through a session that breaks off', function () {
  this.timeout(60_000)
  let swarm: TestSwarm
  before(async () => { swarm = await createTestSwarm(5) })
  after(async () => { await swarm?.destroy() })

  /** `peer`'s first store stream is reset as it opens; later ones are served as usual. */
  async function breakFirstSession (peer: ShoalPeer): Promise<{ broken: () => number }> {
    let broken = 0
    await peer.libp2p.unhandle(STORE_PROTOCOL)
    await peer.libp2p.handle(STORE_PROTOCOL, async (stream: Stream, connection: Connection) => {
      if (broken === 0) {
        broken++
        stream.abort(new Error('test: the session breaks off'))
        return
      }
      await peer.placement.server.handle(stream, connection)
    }, { maxInboundStreams: MAX_INBOUND_STORE_STREAMS, maxOutboundStreams: 16 })
    return { broken: () => broken }
  }

  it('offers the copies a broken session never took to the same peer again, and every block ends on its true 3', async () => {
    const [me, ...others] = swarm.peers
    const breakers = await Promise.all(others.map(breakFirstSession))
    const blocks = Array.from({ length: 12 }, () => randomBytes(8192))
    const cids = blocks.map(b => cidOf(RAW_CODE, b))
    const byCid = new Map(cids.map((c, i) => [c.toString(), blocks[i]]))
    const placing = new PlaceStream({
      node: me.libp2p,
      planner: me.overlay.planner(),
      readBlock: async cid => byCid.get(cid.toString())!,
      selfId: me.peerId.toString(),
      log: logger('shoal:test:place-retry')
    }, 3)
    cids.forEach((cid, i) => { placing.add(cid, blocks[i].length) })
    const totals = await placing.finish()

    const targets = new Set(totals.blocks.flatMap(b => b.closest).filter(p => p !== me.peerId.toString()))
    const brokenPeers = others.filter((p, i) => breakers[i].broken() > 0).map(p => p.peerId.toString())
    assert.ok(brokenPeers.length > 0 && brokenPeers.every(p => targets.has(p)), 'the broken sessions were to targets')
    assert.equal(totals.refused.FAILED, brokenPeers.length)
    for (const [i, block] of totals.blocks.entries()) {
      assert.equal(block.closest.length, 3)
      assert.deepEqual([...block.holders].sort(), [...block.closest].sort(), `block ${i}: held by ${block.holders.length} of its 3`)
      for (const peer of block.closest) {
        if (peer === me.peerId.toString()) continue
        const holder = swarm.peers.find(p => p.peerId.toString() === peer)!
        assert.ok(await holder.content.holdsBlocks([cids[i]]).then(h => h[0]), `block ${i} is on ${peer}`)
      }
    }
  })
})
