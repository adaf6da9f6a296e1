import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { toPosition } from '../../src/routing/chord/ring.ts'
import { ChordTestRing, type ChordNode } from '../helpers/chord-nodes.ts'

/**
 * Half of a ring at once, by random pick (no run of r or more consecutive peers,
 * which no successor list could route past), in ring order.
 */
function pickHalf (sorted: ChordNode[], r: number): Set<ChordNode> {
  while (true) {
    const picked = new Set([...sorted].sort(() => Math.random() - 0.5).slice(0, sorted.length / 2))
    let run = 0
    let longest = 0
    // twice round, for a run across the wrap
    for (let i = 0; i < 2 * sorted.length; i++) {
      run = picked.has(sorted[i % sorted.length]) ? run + 1 : 0
      longest = Math.max(longest, run)
    }
    if (longest < r) return picked
  }
}

describe('a Chord ring of 32 losing half of its peers at once, with no stabilization after', function () {
  const r = 8
  let ring: ChordTestRing
  after(async () => { await ring?.destroy() })

  it('every lookup of a random key returns its true live successor, routing around the dead', async function () {
    ring = await ChordTestRing.create(32, { successorListLength: r, leaveOnStop: false })
    await ring.waitStable(r)
    for (const node of ring.live()) node.services.chord.pauseMaintenance(true)

    const killed = pickHalf(ring.sorted(), r)
    await ring.kill([...killed])
    assert.equal(ring.live().length, 16)

    const live = ring.live()
    let routedAround = 0
    for (let i = 0; i < 64; i++) {
      const key = randomBytes(34)
      const asker = live[i % live.length]
      const result = await asker.services.chord.lookup(key, 1, { signal: AbortSignal.timeout(30_000) })
      const truth = ring.responsible(toPosition(asker.services.chord.idOfKey(key)), 1)
      assert.deepEqual(result.responsible, truth, `key ${i} from ${asker.peerId}: wrong successor`)
      routedAround += result.path.filter(hop => !hop.ok).length
    }
    // with no stabilization every dead finger and successor is still there to time out
    assert.ok(routedAround > 0, 'no lookup met a dead peer')
  })
})
