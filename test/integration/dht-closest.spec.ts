import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { closestByXor } from '../../src/peer/kad-distance.ts'
import { createTestSwarm, type TestSwarm } from '../../src/swarm/test-swarm.ts'

/**
 * A 20-peer swarm over real TCP: for 20 random keys, asked from 5 different
 * peers, a DHT lookup must return exactly the true closest peers, computed by
 * XOR over all 20 IDs the way kad-dht measures distance. (With the default
 * k=20 every peer should know every other; bench/swarm.ts measures how
 * often lookups in bigger swarms find the true closest.)
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
        const result = await asker.closestPeers(key, { signal: AbortSignal.timeout(20_000) })
        // the lookup never returns the asking peer itself
        const others = all.filter(p => !p.equals(asker.peerId))
        const expected = closestByXor(key, others, k).map(p => p.toString())
        // same peers, and in the same order: our XOR metric is the DHT's
        assert.deepEqual(result.peers, expected, `key ${i} from ${asker.peerId}`)
        assert.equal(result.peers.length, 19)
        assert.ok(result.hops >= 1)
      }
    })
  })
}
