/**
 * A holder's graceful stop on both overlays, the same spec run on a
 * Kademlia swarm and on a Chord swarm of 8 in-process peers (repair passes
 * run when the spec says, never on a timer): every block stays on its
 * true k (the overlay's own truth, `Overlay.order` over every live peer:
 * the k closest by XOR, or the key's successor and the k-1 after it on the
 * ring). On Chord the leaver hands its copies on as it leaves; Kademlia has
 * no leave, and its next repair pass does it. Placement, repair of crashed
 * holders and fetches on both overlays are in placement.spec.ts,
 * repair.spec.ts, repair-shared.spec.ts and fetch.spec.ts.
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
