/**
 * Repair on a real 14-peer swarm (in-process, real TCP), repair every 2 s,
 * on each overlay ("its true 3": the 3 closest by XOR on Kademlia, the
 * key's successor and the 2 after it on Chord): after 2 of the 3 holders of
 * every block crash (no graceful leave: nothing handed on), the survivors
 * put every block back on its true 3 among the live peers within two repair
 * passes; a peer that joins first in a block's order receives it, and the
 * holder it displaces drops its copy only once the new true 3 hold it.
 * Progress is counted in repair passes, not seconds, so a slow machine
 * does not make it fail.
 */
import assert from 'node:assert/strict'
import fs from 'node:fs/promises'
import path from 'node:path'
import { generateKeyPair, privateKeyToProtobuf } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import type { CID } from 'multiformats/cid'
import type { ShoalPeer } from '../../src/peer/peer.ts'
import { OVERLAY_NAMES } from '../../src/routing/index.ts'
import { createTestSwarm, type TestSwarm } from '../../src/swarm/test-swarm.ts'
import { waitFor } from '../../src/utils/wait.ts'
import { holdersOf, shareRandom, trueResponsible } from '../helpers/swarm.ts'

const KiB = 1024
const K = 3
/** Enough that after the sharer and every holder but a few crash, more than K peers live on. */
const PEERS = 14

for (const overlay of OVERLAY_NAMES) {
  describe(`repair in a ${PEERS}-peer swarm on ${overlay}`, function () {
    this.timeout(180_000)
    let swarm: TestSwarm
    before(async () => { swarm = await createTestSwarm(PEERS, { overlay, config: { repair: { intervalSeconds: 2, maxPushesPerRun: 1024 } } }) })
    after(async () => { await swarm?.destroy() })

    const live = (): ShoalPeer[] => swarm.peers.filter(p => p.isStarted)
    const trueK = (cid: CID): string[] => trueResponsible(live(), cid, K)
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

    it('puts every block back on its true 3 live peers after 2 of its 3 holders crash', async () => {
      const sharer = swarm.peers[1]
      const { cids } = await share(sharer, 2 * 64 * KiB + 10)
      // crashes, here and below: a graceful leave (Chord) would hand the copies on, and repair would have nothing to do
      await sharer.stop({ leave: false })
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
      for (const p of swarm.peers) if (victims.has(p.peerId.toString())) await p.stop({ leave: false })
      assert.ok(live().length > K, `${live().length} peers live on`)
      // the routing state has seen the crashes (Chord: the ring is whole again)
      await swarm.waitRoutable()

      await waitPasses(2)
      for (const cid of cids) {
        assert.deepEqual(await holders(cid), trueK(cid).sort(), `block ${cid} is on its true ${K} live peers`)
      }
    })

    it('gives a block to a peer that joins first in its order, and the displaced holder lets go', async () => {
      const sharer = live()[0]
      const sharerId = sharer.peerId.toString()
      // a block the sharer is not among the true 3 of, so the holder the
      // newcomer displaces holds a replica it must drop (the sharer keeps its own)
      let cids: CID[] = []
      let target: CID | undefined
      for (let attempt = 0; target == null; attempt++) {
        assert.ok(attempt < 10, 'ten files in a row whose every block has the sharer among its true 3')
        cids = (await share(sharer, 64 * KiB + 10)).cids
        target = cids.find(cid => !trueK(cid).includes(sharerId))
      }
      const before = trueK(target)
      assert.ok(!before.includes(sharerId))
      // an identity before every live peer in the block's order (Kademlia:
      // closer by XOR; Chord: between the key and its successor)
      const liveIds = live().map(p => p.peerId.toString())
      let identity
      let newId: string
      do {
        identity = await generateKeyPair('Ed25519')
        newId = peerIdFromPrivateKey(identity).toString()
      } while (sharer.overlay.order(target.multihash.bytes, [...liveIds, newId])[0] !== newId)
      const repo = path.join(swarm.dir, `peer-${swarm.peers.length}`)
      await fs.mkdir(repo, { recursive: true })
      await fs.writeFile(path.join(repo, 'identity.key'), privateKeyToProtobuf(identity), { mode: 0o600 })
      const newcomer = await swarm.addPeer()
      assert.equal(newcomer.peerId.toString(), newId)
      await swarm.waitRoutable()

      const after = trueK(target)
      assert.equal(after[0], newcomer.peerId.toString())
      const displaced = before.filter(id => !after.includes(id))
      assert.equal(displaced.length, 1)

      await waitPasses(2)
      assert.ok(await newcomer.content.hasBlock(target), 'the newcomer received the block')
      assert.deepEqual((await newcomer.content.list(target)).map(h => h.reason), ['replica'])
      const displacedPeer = live().find(p => p.peerId.toString() === displaced[0])!
      assert.notEqual(displacedPeer, sharer)
      assert.equal(await displacedPeer.content.hasBlock(target), false, 'the displaced holder dropped its copy')
      // every block: its true 3 hold it; the sharer keeps its own copy besides
      for (const cid of cids) {
        assert.deepEqual(await holders(cid), [...new Set([...trueK(cid), sharerId])].sort(), `block ${cid}`)
      }
    })
  })
}
