/**
 * Repair on a real 20-peer swarm (in-process, real TCP), repair every 2 s:
 * after 2 of the 3 holders of every block are stopped, the survivors put
 * every block back on its 3 closest live peers within two repair passes; a
 * peer that joins closest to a block receives it, and the holder it
 * displaces drops its copy only once the new closest hold it.
 * Progress is counted in repair passes, not seconds, so a slow machine
 * does not make it fail.
 */
import assert from 'node:assert/strict'
import fs from 'node:fs/promises'
import path from 'node:path'
import { generateKeyPair, privateKeyToProtobuf } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import type { CID } from 'multiformats/cid'
import { compareDistance, kadIdOfKey, kadIdOfPeer } from '../../src/routing/kademlia/kad-distance.ts'
import type { ShoalPeer } from '../../src/peer/peer.ts'
import { createTestSwarm, type TestSwarm } from '../../src/swarm/test-swarm.ts'
import { waitFor } from '../../src/utils/wait.ts'
import { holdersOf, shareRandom, trueClosest as closestOf } from '../helpers/swarm.ts'

const KiB = 1024
const K = 3

describe('repair in a 20-peer swarm', function () {
  this.timeout(180_000)
  let swarm: TestSwarm
  before(async () => { swarm = await createTestSwarm(20, { config: { repair: { intervalSeconds: 2, maxPushesPerRun: 1024 } } }) })
  after(async () => { await swarm?.destroy() })

  const live = (): ShoalPeer[] => swarm.peers.filter(p => p.isStarted)
  const trueClosest = (cid: CID): string[] => closestOf(live(), cid, K)
  const holders = async (cid: CID): Promise<string[]> => holdersOf(live(), cid)

  async function share (peer: ShoalPeer, size: number): Promise<{ root: CID, cids: CID[] }> {
    const { root, cids, result } = await shareRandom(peer, { dir: swarm.dir, size, chunkSize: 64 * KiB, replicas: K })
    assert.equal(result.placement.complete, true)
    return { root, cids }
  }

  /** Waits until every live peer has finished `passes` more repair passes. */
  async function waitPasses (passes: number): Promise<void> {
    const start = new Map(live().map(p => [p, p.repairPasses]))
    await waitFor(() => [...start].every(([p, n]) => !p.isStarted || p.repairPasses >= n + passes), {
      timeoutMs: 120_000, intervalMs: 100, message: () => `repair passes did not run`
    })
  }

  it('puts every block back on its 3 closest live peers after 2 of its 3 holders stop', async () => {
    const sharer = swarm.peers[1]
    const { cids } = await share(sharer, 2 * 64 * KiB + 10)
    await sharer.stop()
    // survivors: few peers that between them hold every block (greedy set
    // cover; a block whose third copy was on the stopped sharer has only two
    // holders, so picking block by block could stop both); every other holder stops
    const held = await Promise.all(cids.map(async cid => holders(cid)))
    const survivors = new Set<string>()
    const uncovered = new Set(held.keys())
    while (uncovered.size > 0) {
      const counts = new Map<string, number>()
      for (const i of uncovered) for (const id of held[i]) counts.set(id, (counts.get(id) ?? 0) + 1)
      const best = [...counts].sort((a, b) => b[1] - a[1])[0]
      assert.ok(best != null, `block ${cids[[...uncovered][0]]} has a holder left`)
      survivors.add(best[0])
      for (const i of [...uncovered]) if (held[i].includes(best[0])) uncovered.delete(i)
    }
    const victims = new Set(held.flat().filter(id => !survivors.has(id)))
    for (const cid of cids) {
      const left = (await holders(cid)).filter(id => !victims.has(id))
      assert.ok(left.length >= 1 && left.length < K, `block ${cid}: ${left.length} of its holders stay`)
    }
    for (const p of swarm.peers) if (victims.has(p.peerId.toString())) await p.stop()

    await waitPasses(2)
    for (const cid of cids) {
      assert.deepEqual(await holders(cid), trueClosest(cid).sort(), `block ${cid} is on its ${K} closest live peers`)
    }
  })

  it('gives a block to a peer that joins closest to it, and the displaced holder lets go', async () => {
    const sharer = live()[0]
    const sharerId = sharer.peerId.toString()
    // a block the sharer is not among the closest of, so the holder the
    // newcomer displaces holds a replica it must drop (the sharer keeps its own)
    let cids: CID[] = []
    let target: CID | undefined
    for (let attempt = 0; target == null; attempt++) {
      assert.ok(attempt < 10, 'ten files in a row whose every block has the sharer among its closest')
      cids = (await share(sharer, 64 * KiB + 10)).cids
      target = cids.find(cid => !trueClosest(cid).includes(sharerId))
    }
    const before = trueClosest(target)
    assert.ok(!before.includes(sharerId))
    // an identity closer to the block than every live peer
    const key = kadIdOfKey(target.multihash.bytes)
    const closestNow = kadIdOfPeer(live().find(p => p.peerId.toString() === before[0])!.peerId)
    let identity
    do {
      identity = await generateKeyPair('Ed25519')
    } while (compareDistance(key, kadIdOfPeer(peerIdFromPrivateKey(identity)), closestNow) >= 0)
    const repo = path.join(swarm.dir, `peer-${swarm.peers.length}`)
    await fs.mkdir(repo, { recursive: true })
    await fs.writeFile(path.join(repo, 'identity.key'), privateKeyToProtobuf(identity), { mode: 0o600 })
    const newcomer = await swarm.addPeer()
    assert.equal(newcomer.peerId.toString(), peerIdFromPrivateKey(identity).toString())
    await swarm.waitRoutable()

    const after = trueClosest(target)
    assert.equal(after[0], newcomer.peerId.toString())
    const displaced = before.filter(id => !after.includes(id))
    assert.equal(displaced.length, 1)

    await waitPasses(2)
    assert.ok(await newcomer.content.hasBlock(target), 'the newcomer received the block')
    assert.deepEqual((await newcomer.content.list(target)).map(h => h.reason), ['replica'])
    const displacedPeer = live().find(p => p.peerId.toString() === displaced[0])!
    assert.notEqual(displacedPeer, sharer)
    assert.equal(await displacedPeer.content.hasBlock(target), false, 'the displaced holder dropped its copy')
    // every block: its closest hold it; the sharer keeps its own copy besides
    for (const cid of cids) {
      assert.deepEqual(await holders(cid), [...new Set([...trueClosest(cid), sharerId])].sort(), `block ${cid}`)
    }
  })
})
