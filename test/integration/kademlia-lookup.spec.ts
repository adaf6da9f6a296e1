/**
 * Shoal's iterative Kademlia lookup (src/routing/kademlia/closest-peers.ts)
 * on a swarm whose routing tables hold only some of the peers (kad-dht k of
 * 5 among 24), so lookups take more than one hop: every lookup finds the
 * true k by XOR, for a count of messages that grows as log2 N.
 */
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { closestByXor } from '../../src/routing/kademlia/kad-distance.ts'
import { createTestSwarm, type TestSwarm } from '../../src/swarm/test-swarm.ts'

const PEERS = 24
const K = 3
const KEYS = 50

describe('Kademlia lookups for Shoal\'s k', function () {
  this.timeout(180_000)
  let swarm: TestSwarm
  before(async () => { swarm = await createTestSwarm(PEERS, { kBucketSize: 5 }) })
  after(async () => { await swarm?.destroy() })

  it(`find the true ${K} closest of ${KEYS} random keys with at most 3 log2 N messages each`, async () => {
    const ids = swarm.peers.map(p => p.peerId)
    const budget = 3 * Math.log2(PEERS)
    const multiHop: number[] = []
    for (let i = 0; i < KEYS; i++) {
      const key = randomBytes(34)
      const from = swarm.peers[i % PEERS]
      const result = await from.overlay.lookup(key, K, { signal: AbortSignal.timeout(20_000) })
      assert.deepEqual(result.responsible, closestByXor(key, ids, K).map(String), `key ${i} from peer ${i % PEERS}`)
      assert.ok(result.messages <= budget, `key ${i}: ${result.messages} messages, more than 3 log2 N = ${budget.toFixed(1)}`)
      assert.equal(result.path.length, result.messages, 'every query sent is on the path')
      if (result.hops > 1) multiHop.push(i)
    }
    assert.ok(multiHop.length > 0, 'some lookup went past the asking peer\'s own table (else this tests nothing)')
  })
})
