/**
 * A placement's store session with nothing to offer ends before the
 * receiver's idle timeout would reset it, and copies for that peer that
 * come later go on a new session: a long import's early targets are not
 * left holding a silent stream (which the receiver resets, failing the
 * session) until the import ends.
 * On Kademlia only: sessions do not depend on how their targets were found.
 */
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { logger } from '@libp2p/logger'
import { cidOf, RAW_CODE } from '../../src/content/cid.ts'
import { PlaceStream } from '../../src/placement/place-stream.ts'
import { createTestSwarm, type TestSwarm } from '../../src/swarm/test-swarm.ts'
import { waitFor } from '../../src/utils/wait.ts'
import { STORE_PROTOCOL } from '../../src/wire/store-messages.ts'

describe('placement sessions with nothing to offer', function () {
  this.timeout(60_000)
  let swarm: TestSwarm
  before(async () => { swarm = await createTestSwarm(4) })
  after(async () => { await swarm?.destroy() })

  it('end once idle, and later copies for the same peers go on new sessions: every block on its true 3, no session failed', async () => {
    const me = swarm.peers[0]
    const blocks = [randomBytes(4096), randomBytes(4096)]
    const cids = blocks.map(b => cidOf(RAW_CODE, b))
    let answered = 0
    let total = -1
    const placing = new PlaceStream({
      node: me.libp2p,
      planner: me.overlay.planner(),
      readBlock: async cid => blocks[cids.findIndex(c => c.equals(cid))],
      selfId: me.peerId.toString(),
      log: logger('shoal:test:place-idle')
    }, 3, { sessionIdleMs: 300, onProgress: (done, planned) => { answered = done; total = planned } })
    const storeStreams = (): number => me.libp2p.getConnections().flatMap(c => c.streams).filter(s => s.protocol === STORE_PROTOCOL && s.direction === 'outbound').length

    placing.add(cids[0], blocks[0].length)
    await waitFor(() => total > 0 && answered === total, { timeoutMs: 20_000, intervalMs: 20, message: () => `${answered} of ${total} copies answered` })
    // the import goes on producing nothing: the sessions end by themselves
    await waitFor(() => storeStreams() === 0, { timeoutMs: 5_000, intervalMs: 20, message: () => `${storeStreams()} store stream(s) still open` })

    placing.add(cids[1], blocks[1].length)
    const totals = await placing.finish()
    assert.equal(totals.refused.FAILED, undefined)
    for (const [i, block] of totals.blocks.entries()) {
      assert.equal(block.closest.length, 3)
      assert.deepEqual([...block.holders].sort(), [...block.closest].sort(), `block ${i}`)
    }
  })
})
