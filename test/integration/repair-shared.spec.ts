/**
 * Repair of what a sharer failed to place (in-process peers, real TCP), on
 * each overlay ("true k": the k closest by XOR on Kademlia, the key's
 * successor and the k-1 after it on Chord): a file shared while every
 * other peer is down stays on the sharer alone (placement incomplete);
 * once those peers are back and a replacement has joined, one repair pass
 * on each live peer (the sharer's covers its shared holding, whose k was
 * recorded at share time) puts every block on its true k. A fetcher places
 * the blocks of what it fetched that it is itself among the true k of, and
 * no others. A DAG found incomplete here is fetched again by the next
 * pass. No periodic pass runs: every pass here is asked for.
 */
import assert from 'node:assert/strict'
import fs from 'node:fs/promises'
import path from 'node:path'
import type { CID } from 'multiformats/cid'
import { cidKey, matchesCid, RAW_CODE } from '../../src/content/cid.ts'
import type { ShoalPeer } from '../../src/peer/peer.ts'
import { OVERLAY_NAMES } from '../../src/routing/index.ts'
import { createTestSwarm, type TestSwarm } from '../../src/swarm/test-swarm.ts'
import { holdersOf, shareRandom, trueResponsible } from '../helpers/swarm.ts'

const KiB = 1024
const K = 3

for (const overlay of OVERLAY_NAMES) {
  describe(`repair of a share whose placement failed, on ${overlay}`, function () {
    this.timeout(120_000)
    let swarm: TestSwarm
    before(async () => { swarm = await createTestSwarm(3, { overlay, config: { repair: { intervalSeconds: 86_400, maxPushesPerRun: 1024 } } }) })
    after(async () => { await swarm?.destroy() })

    const live = (): ShoalPeer[] => swarm.peers.filter(p => p.isStarted)
    /** The file the first case shares (peer 0), placed on its true k by the end of it. */
    let first: { root: CID, cids: CID[], data: Buffer } | undefined

    it('places the blocks on their true k once the targets are back', async () => {
      const [sharer, a, b] = swarm.peers
      await a.stop()
      await b.stop()
      const { root, cids, result, data } = await shareRandom(sharer, { dir: swarm.dir, size: 6 * 16 * KiB + 7, chunkSize: 16 * KiB, replicas: K })
      first = { root, cids, data }
      assert.equal(result.placement.complete, false)
      assert.equal(result.placement.min, 1)
      const shared = (await sharer.content.list(root)).find(h => h.reason === 'shared')
      assert.equal(shared?.replicas, K, 'the shared holding records its k')

      await a.start()
      await b.start()
      await swarm.addPeer()
      await swarm.waitRoutable()
      const sharerId = sharer.peerId.toString()
      const expected = (cid: CID): string[] => [...new Set([...trueResponsible(live(), cid, K), sharerId])].sort()

      const reports = []
      for (const peer of live()) reports.push(await peer.repairNow())
      assert.ok(reports[0].pushed > 0, 'the sharer pushed the blocks it had not placed')
      for (const cid of cids) {
        assert.deepEqual(await holdersOf(live(), cid), expected(cid), `block ${cid} is on its true ${K} (and the sharer)`)
      }
      // a second pass has nothing left to do
      const again = await sharer.repairNow()
      assert.equal(again.pushed, 0)
      assert.equal(again.missing, 0)
    })

    it('has a fetcher place the blocks it is among the true k of, and only those', async () => {
      const [seeder, fetcher] = live()
      // k = 0: the seeder keeps every block and places none
      const { root, cids } = await shareRandom(seeder, { dir: swarm.dir, size: 8 * 16 * KiB + 3, chunkSize: 16 * KiB, replicas: 0 })
      await fetcher.fetcher.fetch(root, { output: { path: path.join(swarm.dir, 'fetched') }, timeoutMs: 30_000 })
      const fetcherId = fetcher.peerId.toString()
      const pair = [seeder.peerId.toString(), fetcherId].sort()
      for (const cid of cids) assert.deepEqual(await holdersOf(live(), cid), pair)

      const replicas = (await fetcher.content.list()).filter(h => h.reason === 'replica').length
      const report = await fetcher.repairNow()
      const mine = cids.filter(cid => trueResponsible(live(), cid, K).includes(fetcherId))
      assert.equal(report.checked, replicas + mine.length, 'its replicas, and the fetched blocks it is among the true k of')
      for (const cid of cids) {
        const want = mine.includes(cid) ? [...new Set([...trueResponsible(live(), cid, K), ...pair])].sort() : pair
        assert.deepEqual(await holdersOf(live(), cid), want, `block ${cid}`)
      }
    })

    it('fetches again a DAG a verify found incomplete here, and the record of it goes', async () => {
      assert.ok(first != null, 'the first case shared a file')
      const sharer = swarm.peers[0]
      const leaf = first.cids.find(c => c.code === RAW_CODE)!
      const key = cidKey(leaf)
      const file = path.join(swarm.dir, 'peer-0', 'blocks', key.slice(-3, -1), key)
      const bytes = await fs.readFile(file)
      bytes[100] ^= 0x10
      await fs.writeFile(file, bytes)
      const verified = await sharer.content.verify({ repair: true })
      assert.deepEqual(verified.bad, [key])
      assert.deepEqual(verified.needsRepair, [cidKey(first.root)])

      const report = await sharer.repairNow()
      assert.equal(report.refetched, 1)
      assert.equal(report.incomplete, 0)
      assert.deepEqual(await sharer.content.needingRepair(), [])
      assert.ok(matchesCid(leaf, await fs.readFile(file)), 'the leaf is back, good')
      const parts: Uint8Array[] = []
      for await (const part of sharer.content.read(first.root)) parts.push(part)
      assert.ok(Buffer.concat(parts).equals(first.data), 'the file reads exactly')
    })
  })
}
