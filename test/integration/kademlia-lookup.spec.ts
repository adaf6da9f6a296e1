/**
 * Shoal's iterative Kademlia lookup (src/routing/kademlia/closest-peers.ts)
 * on a 30-peer swarm: every lookup for k = 3 finds the true k by XOR, for
 * at most 3 log2 N messages (kad-dht's own query asked until its 20
 * closest had answered). Multi-hop lookups at sizes where tables hold a
 * fraction of the swarm are measured in the scale bench (bench/scale.ts).
 */
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { closestByXor } from '../../src/routing/kademlia/kad-distance.ts'
import { createTestSwarm, type TestSwarm } from '../../src/swarm/test-swarm.ts'

const PEERS = 30
const K = 3
const KEYS = 50

describe('Kademlia lookups for Shoal\'s k', function () {
  this.timeout(180_000)
  let swarm: TestSwarm
  before(async () => { swarm = await createTestSwarm(PEERS) })
  after(async () => { await swarm?.destroy() })

  it(`find the true ${K} closest of ${KEYS} random keys with at most 3 log2 N messages each`, async () => {
    const ids = swarm.peers.map(p => p.peerId)
    const budget = 3 * Math.log2(PEERS)
    for (let i = 0; i < KEYS; i++) {
      const key = randomBytes(34)
      const from = swarm.peers[i % PEERS]
      const result = await from.overlay.lookup(key, K, { signal: AbortSignal.timeout(20_000) })
      assert.deepEqual(result.responsible, closestByXor(key, ids, K).map(String), `key ${i} from peer ${i % PEERS}`)
      assert.ok(result.messages <= budget, `key ${i}: ${result.messages} messages, more than 3 log2 N = ${budget.toFixed(1)}`)
      assert.equal(result.path.length, result.messages, 'every query sent is on the path')
      assert.ok(result.messages >= 1, `key ${i}: a lookup asks at least one peer (the ones it returns must have answered)`)
    }
  })
})
