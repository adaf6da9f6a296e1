/**
 * Share, placement, repair and fetch on both overlays, the same spec run
 * on a Kademlia swarm and on a Chord swarm of 8 in-process peers (repair
 * passes run when the spec says, never on a timer): every block lands on its true k (the overlay's own truth,
 * `Overlay.order` over every live peer: the k closest by XOR, or the key's
 * successor and the k-1 after it on the ring); a holder that crashes is
 * replaced by repair; a holder that stops gracefully hands its copies on
 * as it leaves (Chord; Kademlia has no leave, repair does it); another
 * peer fetches the exact bytes.
 */
import assert from 'node:assert/strict'
import type { CID } from 'multiformats/cid'
import type { ShoalPeer } from '../../src/peer/peer.ts'
import type { OverlayName } from '../../src/routing/index.ts'
import { createTestSwarm, type TestSwarm } from '../../src/swarm/test-swarm.ts'
import { holdersOf, shareRandom } from '../helpers/swarm.ts'

const KiB = 1024
const K = 3
const PEERS = 8

for (const overlay of ['kademlia', 'chord'] as OverlayName[]) {
  describe(`share, repair and fetch on ${overlay}`, function () {
    this.timeout(120_000)
    let swarm: TestSwarm
    before(async () => {
      swarm = await createTestSwarm(PEERS, { overlay, config: { repair: { intervalSeconds: 86_400, maxPushesPerRun: 1024 } } })
    })
    after(async () => { await swarm?.destroy() })

    const live = (): ShoalPeer[] => swarm.peers.filter(p => p.isStarted)
    /** The true k of a block among the live peers, as the overlay defines responsibility. */
    const trueK = (cid: CID): string[] => live()[0].overlay.order(cid.multihash.bytes, live().map(p => p.peerId.toString())).slice(0, K)
    const onTrueK = async (cids: CID[], sharer: string): Promise<string | undefined> => {
      for (const cid of cids) {
        const want = [...new Set([...trueK(cid), ...(live().some(p => p.peerId.toString() === sharer) ? [sharer] : [])])].sort()
        const have = await holdersOf(live(), cid)
        if (have.join() !== want.join()) return `block ${cid}: held by ${have.length} (${have.join(', ')}), its true ${K} and the sharer are ${want.join(', ')}`
      }
      return undefined
    }
    /** One repair pass on every live peer, then every block is checked. */
    const afterRepair = async (cids: CID[], sharer: string): Promise<void> => {
      await Promise.all(live().map(async p => p.repairNow(AbortSignal.timeout(30_000))))
      assert.equal(await onTrueK(cids, sharer), undefined)
    }

    it('runs the overlay it was configured with', () => {
      for (const peer of swarm.peers) assert.equal(peer.overlay.name, overlay)
    })

    it('places every block on its true k, repairs a crashed holder, and another peer fetches the exact bytes', async () => {
      const sharer = swarm.peers[1]
      const sharerId = sharer.peerId.toString()
      const { root, cids, data, result } = await shareRandom(sharer, { dir: swarm.dir, size: 6 * 64 * KiB + 11, chunkSize: 64 * KiB, replicas: K })
      assert.equal(result.placement.complete, true)
      assert.equal(await onTrueK(cids, sharerId), undefined)

      // a holder of the root (not the sharer) crashes: no leave, nothing handed on
      const victim = live().find(p => p !== sharer && trueK(root).includes(p.peerId.toString()))!
      await victim.stop({ leave: false })
      await swarm.waitRoutable()
      await afterRepair(cids, sharerId)

      const fetcher = live().find(p => p !== sharer && !trueK(root).includes(p.peerId.toString()))!
      const fetched = await fetcher.fetcher.fetch(root, { output: { path: `${swarm.dir}/fetched-${overlay}` }, timeoutMs: 30_000 })
      assert.equal(fetched.size, data.length)
    })

    it('a holder that stops gracefully leaves every block on its true k', async () => {
      const sharer = live()[1]
      const sharerId = sharer.peerId.toString()
      const { root, cids } = await shareRandom(sharer, { dir: swarm.dir, size: 4 * 64 * KiB + 7, chunkSize: 64 * KiB, replicas: K })
      const leaver = live().find(p => p !== sharer && p !== swarm.peers[0] && trueK(root).includes(p.peerId.toString()))!
      await leaver.stop()
      await swarm.waitRoutable()
      if (overlay === 'chord') {
        // handed on as it left, with no repair pass since
        assert.equal(await onTrueK(cids, sharerId), undefined)
      } else {
        // kad-dht has no leave: the next repair pass does it
        await afterRepair(cids, sharerId)
      }
    })
  })
}
