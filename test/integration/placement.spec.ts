/**
 * Placement on a real 12-peer swarm (in-process, real TCP, real repos), on
 * each overlay: after share every block is on exactly its true k (the
 * overlay's own truth: the k closest by XOR on Kademlia, the key's
 * successor and the k-1 after it on Chord), for k = 3 and for k = 10; peers
 * refuse bad, oversized and far-away blocks and keep nothing of them.
 */
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import fs from 'node:fs/promises'
import path from 'node:path'
import type { CID } from 'multiformats/cid'
import { cidOf, RAW_CODE } from '../../src/content/cid.ts'
import type { ShoalPeer } from '../../src/peer/peer.ts'
import type { ShareProgressEvent } from '../../src/peer/share.ts'
import { StoreSession } from '../../src/placement/store-client.ts'
import { OVERLAY_NAMES } from '../../src/routing/index.ts'
import { createTestSwarm, type TestSwarm } from '../../src/swarm/test-swarm.ts'
import { StoreStatus } from '../../src/wire/store-messages.ts'
import { holdersOf, shareRandom, trueResponsible } from '../helpers/swarm.ts'

const KiB = 1024
/** Enough for k = 10 to leave peers out, and for a peer far outside a key's k (and the receivers' margin). */
const PEERS = 12

for (const overlay of OVERLAY_NAMES) {
  describe(`placement in a ${PEERS}-peer swarm on ${overlay}`, function () {
    this.timeout(120_000)
    let swarm: TestSwarm
    before(async () => { swarm = await createTestSwarm(PEERS, { overlay }) })
    after(async () => { await swarm?.destroy() })

    /** A new file shared by `peer`: every block placed on its true k. */
    async function share (peer: ShoalPeer, size: number, k: number): Promise<{ root: CID, cids: CID[], data: Buffer }> {
      const { root, cids, data, result } = await shareRandom(peer, { dir: swarm.dir, size, chunkSize: 64 * KiB, replicas: k })
      assert.equal(result.placement.target, k)
      assert.equal(result.placement.complete, true, JSON.stringify(result.placement.refused))
      assert.ok(result.placement.min >= k)
      return { root, cids, data }
    }

    it('puts every block (root, nodes, leaves) on exactly its true k peers', async () => {
      const sharer = swarm.peers[3]
      const { cids } = await share(sharer, 40 * 64 * KiB + 5, 3)
      assert.equal(cids.length, 42)
      // (the peers running: whichever tests ran before may have stopped some)
      const running = swarm.peers.filter(p => p.isStarted)
      for (const cid of cids) {
        const expected = trueResponsible(running, cid, 3)
        const holders = (await holdersOf(running, cid)).filter(id => id !== sharer.peerId.toString())
        assert.deepEqual(holders.sort(), expected.filter(id => id !== sharer.peerId.toString()).sort(), `holders of ${cid}`)
        for (const id of expected) {
          const holder = swarm.peers.find(p => p.peerId.toString() === id)!
          if (holder === sharer) continue
          const holdings = await holder.content.list(cid)
          assert.deepEqual(holdings.map(h => h.reason), ['replica'])
        }
      }
    })

    it('a share for k=10, over twice the receivers\' own replicas (3), is complete on exactly its true 10', async () => {
      const sharer = swarm.peers[5]
      const data = randomBytes(8 * 64 * KiB)
      const file = path.join(swarm.dir, 'k10')
      await fs.writeFile(file, data)
      // progress: every event carries both phases; the import's last says so
      const events: ShareProgressEvent[] = []
      const result = await sharer.share({ path: file }, { chunkSize: 64 * KiB, replicas: 10, onProgress: e => { events.push(e) } })
      assert.equal(result.placement.complete, true, JSON.stringify(result.placement.refused))
      const cids = await sharer.content.dagCids(result.cid)
      const imported = events.filter(e => e.name === 'share:imported')
      assert.deepEqual(imported.at(-1), { name: 'share:imported', bytes: data.length, done: imported.at(-1)!.done, total: imported.at(-1)!.total, imported: true })
      const copies = result.placement.blocks.reduce((n, b) => n + b.holders.filter(h => h !== sharer.peerId.toString()).length, 0)
      const last = events.filter(e => e.name === 'share:placed').at(-1)!
      assert.deepEqual([last.done, last.total, last.bytes], [copies, copies, data.length])
      const running = swarm.peers.filter(p => p.isStarted)
      for (const cid of cids) {
        const expected = trueResponsible(running, cid, 10).filter(id => id !== sharer.peerId.toString())
        const holders = (await holdersOf(running, cid)).filter(id => id !== sharer.peerId.toString())
        assert.deepEqual(holders.sort(), expected.sort(), `holders of ${cid}`)
      }
    })

    it('a third peer still gets the exact bytes after the sharer has left', async () => {
      const sharer = swarm.peers[5]
      const { root, cids, data } = await share(sharer, 10 * 64 * KiB + 77, 3)
      const running = swarm.peers.filter(p => p.isStarted)
      // a peer that holds no copy of the root, placed or handed on: not among
      // its true 3, nor the 4th (on Chord the sharer's graceful leave hands
      // its copies to the next peer responsible, if it was among the 3)
      const fetcherPeer = running.find(p => p !== sharer && !trueResponsible(running, root, 4).includes(p.peerId.toString()))!
      await sharer.stop()
      const result = await fetcherPeer.fetcher.fetch(root, { timeoutMs: 30_000 })
      assert.equal(result.size, data.length)
      assert.equal(result.blocks, cids.length)
      assert.ok(!Object.keys(result.peers).includes(sharer.peerId.toString()))
      const parts: Uint8Array[] = []
      for await (const p of fetcherPeer.content.read(root)) parts.push(p)
      assert.ok(Buffer.concat(parts).equals(data))
      assert.deepEqual((await fetcherPeer.content.list(root)).map(h => h.reason), ['fetched'])
    })

    it('refuses a block whose bytes do not match its CID, an oversized block, and a block far from the receiver, storing nothing', async () => {
      const sender = swarm.peers[0]
      const data = randomBytes(1000)
      const cid = cidOf(RAW_CODE, data)
      // among the peers still running (a test before may have stopped one)
      const running = swarm.peers.filter(p => p.isStarted)
      const [closest] = trueResponsible(running, cid, 2).filter(id => id !== sender.peerId.toString())
      const receiver = swarm.peers.find(p => p.peerId.toString() === closest)!
      const before = receiver.content.usage()

      let session = await StoreSession.open(sender.libp2p, closest)
      const wrong = await session.put(cid, randomBytes(1000), 3)
      assert.equal(wrong.status, StoreStatus.BAD_BLOCK)
      // the receiver resets the stream of a peer that sent wrong bytes
      // (StreamResetError when the reset meets the write, StreamStateError when it came first)
      await assert.rejects(session.put(cid, data, 3), (err: Error) => ['StreamResetError', 'StreamStateError'].includes(err.name))

      session = await StoreSession.open(sender.libp2p, closest)
      const big = randomBytes(4 * 1024 * 1024 + 1)
      const oversized = await session.put(cidOf(RAW_CODE, big), big, 3)
      assert.equal(oversized.status, StoreStatus.TOO_LARGE)

      // the peer last in a key's order is not among its k (nor its margin)
      const far = randomBytes(2000)
      const farCid = cidOf(RAW_CODE, far)
      const farthest = trueResponsible(running, farCid, running.length).at(-1)!
      const farPeer = swarm.peers.find(p => p.peerId.toString() === farthest)!
      const sender2 = farPeer === sender ? swarm.peers[1] : sender
      const farSession = await StoreSession.open(sender2.libp2p, farthest)
      const notClosest = await farSession.put(farCid, far, 3)
      assert.equal(notClosest.status, StoreStatus.NOT_CLOSEST)
      await farSession.close()

      // still serving: a good block is accepted right after
      const good = await session.put(cid, data, 3)
      assert.equal(good.status, StoreStatus.STORED)
      await session.close()
      assert.equal(await farPeer.content.hasBlock(farCid), false)
      assert.equal(receiver.content.usage().blocks, before.blocks + 1)
      assert.deepEqual(await receiver.content.list(cidOf(RAW_CODE, big)), [])
    })
  })
}
