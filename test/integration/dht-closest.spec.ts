import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { closestByXor } from '../../src/routing/kademlia/kad-distance.ts'
import { createTestSwarm, type TestSwarm } from '../../src/swarm/test-swarm.ts'

/**
 * A 20-peer swarm over real TCP: for 20 random keys, asked from 5 different
 * peers, the Kademlia overlay's lookup must return exactly the true k
 * closest peers (the asking peer included when it is one of them), computed
 * by XOR over all 20 IDs the way kad-dht measures distance, with the path
 * it took. (With the default k=20 every peer should know every other;
 * bench/swarm.ts measures how often lookups in bigger swarms find the true
 * closest.)
 */
{
  const k = 20
  describe('DHT closest peers in a 20-peer swarm', function () {
    let swarm: TestSwarm
    before(async () => { swarm = await createTestSwarm(20) })
    after(async () => { await swarm?.destroy() })

    it('returns the true k closest peers for 20 random keys from 5 peers', async () => {
      const all = swarm.peers.map(p => p.peerId)
      const askers = [0, 4, 9, 13, 19].map(i => swarm.peers[i])
      for (let i = 0; i < 20; i++) {
        const key = randomBytes(34)
        const asker = askers[i % askers.length]
        const result = await asker.overlay.lookup(key, k, { signal: AbortSignal.timeout(20_000) })
        // same peers, and in the same order: our XOR metric is the DHT's
        const expected = closestByXor(key, all, k).map(p => p.toString())
        assert.deepEqual(result.responsible, expected, `key ${i} from ${asker.peerId}`)
        assert.equal(result.responsible.length, 20, 'the 19 others kad-dht found, and the asker')
        assert.ok(result.hops >= 1)
        // every query sent is on the path, once answered or given up
        assert.equal(result.path.length, result.messages)
        assert.ok(result.messages >= 1 && result.messages <= 19, `${result.messages} queries`)
        assert.ok(result.path.every(h => h.peerId !== asker.peerId.toString() && h.hop >= 1))
        assert.ok(result.path.some(h => h.ok))
      }
    })
  })
}
