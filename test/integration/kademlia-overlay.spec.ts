/**
 * The Kademlia overlay over real kad-dht peers (in-process, real TCP): its
 * routing snapshot, order and rank against XOR computed here, routing-table
 * change events, departed peers, provider records.
 */
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { NoPeersError } from '../../src/errors.ts'
import type { ShoalPeer } from '../../src/peer/peer.ts'
import type { OverlayChange } from '../../src/routing/index.ts'
import { closestByXor, kadIdOfPeer } from '../../src/routing/kademlia/kad-distance.ts'
import { createTestSwarm, type TestSwarm } from '../../src/swarm/test-swarm.ts'
import { waitFor } from '../../src/utils/wait.ts'
import { shareOn } from '../helpers/swarm.ts'

/** Leading bits two byte strings share, bit by bit. */
function sharedBits (a: Uint8Array, b: Uint8Array): number {
  for (let bit = 0; bit < a.length * 8; bit++) {
    const mask = 0x80 >> (bit % 8)
    if ((a[bit >> 3] & mask) !== (b[bit >> 3] & mask)) return bit
  }
  return a.length * 8
}

describe('the Kademlia overlay', function () {
  this.timeout(120_000)
  let swarm: TestSwarm
  before(async () => { swarm = await createTestSwarm(6) })
  after(async () => { await swarm?.destroy() })

  const ids = (peers: ShoalPeer[]): string[] => peers.map(p => p.peerId.toString())

  it('shows its routing table as k-buckets: every peer under the leading bits it shares with this one', () => {
    const peer = swarm.peers[0]
    const routing = peer.overlay.routing()
    assert.ok(routing.overlay === 'kademlia', routing.overlay)
    assert.equal(routing.self, peer.peerId.toString())
    const listed = routing.buckets.flatMap(b => b.peers)
    assert.deepEqual(new Set(listed), new Set(ids(swarm.peers.slice(1))))
    assert.equal(listed.length, 5, 'each peer once')
    const self = kadIdOfPeer(peer.peerId)
    for (const bucket of routing.buckets) {
      for (const id of bucket.peers) {
        const other = swarm.peers.find(p => p.peerId.toString() === id)!
        assert.equal(bucket.prefix, sharedBits(self, kadIdOfPeer(other.peerId)), `bucket of ${id}`)
      }
    }
    assert.deepEqual(routing.buckets.map(b => b.prefix), [...routing.buckets.map(b => b.prefix)].sort((a, b) => a - b))
    assert.deepEqual(new Set(peer.overlay.knownPeers()), new Set(listed))
  })

  it('orders and ranks peers by XOR distance to a key', () => {
    const overlay = swarm.peers[2].overlay
    const all = ids(swarm.peers)
    for (let i = 0; i < 10; i++) {
      const key = randomBytes(34)
      const truth = closestByXor(key, swarm.peers.map(p => p.peerId), all.length).map(String)
      assert.deepEqual(overlay.order(key, [...all].reverse()), truth)
      truth.forEach((id, rank) => { assert.equal(overlay.rank(key, id, all), rank) })
      assert.equal(overlay.idOfKey(key).length, 32)
    }
  })

  it('announces a root and finds its providers', async () => {
    const [holder, seeker] = [swarm.peers[1], swarm.peers[4]]
    const { root } = await shareOn([holder], { dir: swarm.dir, size: 50_000, chunkSize: 16 * 1024 })
    const found: string[] = []
    for await (const id of seeker.overlay.findProviders(root, { signal: AbortSignal.timeout(20_000) })) {
      found.push(id)
      if (id === holder.peerId.toString()) break
    }
    assert.ok(found.includes(holder.peerId.toString()), `providers found: ${found.join(', ')}`)
  })

  it('reports a newcomer entering the routing table, and leaves a departed peer out of knownPeers while the table keeps it', async () => {
    const watcher = swarm.peers[0]
    const changes: OverlayChange[] = []
    const unsubscribe = watcher.overlay.onChange(change => { changes.push(change) })
    const newcomer = await swarm.addPeer()
    const id = newcomer.peerId.toString()
    try {
      await waitFor(() => changes.some(c => c.added.includes(id)), { timeoutMs: 30_000, message: () => `no change event for ${id}: ${JSON.stringify(changes)}` })
    } finally {
      unsubscribe()
    }
    assert.ok(watcher.overlay.knownPeers().includes(id))
    const seen = changes.length
    await newcomer.stop()
    await waitFor(() => !watcher.overlay.knownPeers().includes(id), { timeoutMs: 30_000, message: () => 'the departed peer is still among the known peers' })
    assert.ok(watcher.routingTablePeers().includes(id), 'kad-dht keeps it until it fails a query')
    assert.equal(changes.length, seen, 'no events after unsubscribing')
  })
})

describe('the Kademlia overlay of a peer alone', function () {
  let swarm: TestSwarm
  before(async () => { swarm = await createTestSwarm(1) })
  after(async () => { await swarm?.destroy() })

  it('refuses to announce with nobody to tell, and plans every key onto itself', async () => {
    const [peer] = swarm.peers
    const { root } = await shareOn([peer], { dir: swarm.dir, size: 1000 })
    await assert.rejects(peer.overlay.provide(root), NoPeersError)
    const plan = await peer.overlay.planner().plan([randomBytes(34), randomBytes(34)], 3)
    assert.deepEqual(plan.responsible, [[peer.peerId.toString()], [peer.peerId.toString()]])
  })
})
