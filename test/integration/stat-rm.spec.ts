/**
 * `stat` from any peer and `rm` that hands its copies on, on a real 8-peer
 * swarm (in-process, real TCP, real repos) on each overlay, checked against
 * the overlay's own truth of who should hold each block (its true k: the k
 * closest by XOR on Kademlia, the key's successor and the k-1 after it on
 * Chord).
 */
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { cidOf, RAW_CODE } from '../../src/content/cid.ts'
import type { ShoalPeer } from '../../src/peer/peer.ts'
import { removeContent } from '../../src/peer/remove.ts'
import { statContent } from '../../src/peer/stat.ts'
import { OVERLAY_NAMES } from '../../src/routing/index.ts'
import { createTestSwarm, type TestSwarm } from '../../src/swarm/test-swarm.ts'
import { holdersOf, shareRandom, trueResponsible, type SharedFile } from '../helpers/swarm.ts'

const KiB = 1024
const K = 3

for (const overlay of OVERLAY_NAMES) {
  describe(`stat from any peer, rm that hands its copies on, on ${overlay}`, function () {
    this.timeout(120_000)
    let swarm: TestSwarm
    before(async () => { swarm = await createTestSwarm(8, { overlay }) })
    after(async () => { await swarm?.destroy() })

    const statOn = (peer: ShoalPeer) => ({ content: peer.content, fetcher: peer.fetcher, overlay: peer.overlay, placement: peer.placement })

    it('stat on a peer that never held the file lists every block, with its size and every one of its holders', async () => {
      const sharer = swarm.peers[0]
      const { root, cids } = await shareRandom(sharer, { dir: swarm.dir, size: 6 * 64 * KiB + 5, chunkSize: 64 * KiB, replicas: K })
      const placed = swarm.peers.slice()
      // joined after the share: it never held any of it
      const newcomer = await swarm.addPeer()
      await swarm.waitRoutable()
      assert.equal((await holdersOf([newcomer], root)).length, 0)

      const stat = await statContent(statOn(newcomer), root, K, { timeoutMs: 10_000 })
      assert.equal(stat.cid, root.toString())
      assert.equal(stat.size, 6 * 64 * KiB + 5)
      assert.deepEqual(stat.blocks.map(b => b.cid).sort(), cids.map(c => c.toString()).sort())
      for (const block of stat.blocks) {
        const cid = cids.find(c => c.toString() === block.cid)!
        // the peers placement put it on (its true 3 before the newcomer came) are all found
        for (const id of trueResponsible(placed, cid, K)) assert.ok(block.holders.includes(id), `${id} holds ${block.cid}: ${block.holders.join(' ')}`)
        // and every peer listed holds it
        const actual = await holdersOf(placed, cid)
        for (const id of block.holders) assert.ok(actual.includes(id), `${id} listed as a holder of ${block.cid}`)
        assert.equal(block.size, (await sharer.content.blockSize(cid))!)
      }
      assert.equal(stat.blocks.filter(b => b.holders.includes(newcomer.peerId.toString())).length, 0)
    })

    it('stat of a CID nobody answers for fails with ContentNotFoundError, saying so', async () => {
      const unknown = cidOf(RAW_CODE, randomBytes(64))
      await assert.rejects(statContent(statOn(swarm.peers[1]), unknown, K, { timeoutMs: 2_000 }), {
        name: 'ContentNotFoundError',
        message: `nobody answered for ${unknown.toString()} within 2 s`
      })
    })

    it('rm on a sharer among some blocks\' true k leaves k copies on the true k of the other peers, before any repair pass', async () => {
      const sharer = swarm.peers[2]
      const id = sharer.peerId.toString()
      const running = (): ShoalPeer[] => swarm.peers.filter(p => p.isStarted)
      // a file with blocks whose true k include the sharer (8 blocks: nearly always; else another file)
      let file: SharedFile
      let mine: number
      do {
        file = await shareRandom(sharer, { dir: swarm.dir, size: 7 * 64 * KiB + 5, chunkSize: 64 * KiB, replicas: K })
        mine = file.cids.filter(c => trueResponsible(running(), c, K).includes(id)).length
      } while (mine === 0)

      const result = await removeContent({ content: sharer.content, placement: sharer.placement, replicas: K, log: sharer.logger.forComponent('test') }, file.root)
      assert.equal(result.handedOff.blocks, mine)
      assert.equal(result.handedOff.copies, mine)
      assert.equal(result.handedOff.failed, 0)
      const others = running().filter(p => p !== sharer)
      for (const cid of file.cids) {
        assert.equal(await sharer.content.hasBlock(cid), false, `the sharer freed ${cid}`)
        const holders = await holdersOf(others, cid)
        for (const closest of trueResponsible(others, cid, K)) assert.ok(holders.includes(closest), `${closest}, among the true ${K} of the others, holds ${cid} (holders: ${holders.join(' ')})`)
      }
    })
  })
}
