/**
 * A placement stopped halfway (the import under it failed, or the share was
 * cancelled) ends its store sessions at once: their streams must not stay
 * open until the receivers' idle timeout, since each peer accepts only a
 * few store streams from one sender and the next share or repair pass
 * would be refused meanwhile.
 * On Kademlia only: closing store sessions does not depend on how their
 * targets were found (placement.spec.ts places through both overlays).
 */
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { logger } from '@libp2p/logger'
import { cidOf, RAW_CODE } from '../../src/content/cid.ts'
import { PlaceStream } from '../../src/placement/place-stream.ts'
import { createTestSwarm, type TestSwarm } from '../../src/swarm/test-swarm.ts'
import { waitFor } from '../../src/utils/wait.ts'
import { STORE_PROTOCOL } from '../../src/wire/store-messages.ts'

describe('placement stopped halfway', function () {
  this.timeout(60_000)
  let swarm: TestSwarm
  before(async () => { swarm = await createTestSwarm(4) })
  after(async () => { await swarm?.destroy() })

  it('closes its store streams at once, not at the receivers\' 30 s idle timeout', async () => {
    const me = swarm.peers[0]
    const data = randomBytes(4096)
    const cid = cidOf(RAW_CODE, data)
    let answered = 0
    let total = -1
    const placing = new PlaceStream({
      node: me.libp2p,
      planner: me.overlay.planner(),
      readBlock: async () => data,
      selfId: me.peerId.toString(),
      log: logger('shoal:test:place-abort')
    }, 3, { onProgress: (done, planned) => { answered = done; total = planned } })
    // one block placed and answered: the sessions are open, waiting for more
    placing.add(cid, data.length)
    await waitFor(() => total > 0 && answered === total, { timeoutMs: 20_000, intervalMs: 20, message: () => `${answered} of ${total} copies answered` })
    const storeStreams = (): number => me.libp2p.getConnections().flatMap(c => c.streams).filter(s => s.protocol === STORE_PROTOCOL && s.direction === 'outbound').length
    assert.ok(storeStreams() > 0, 'its sessions are open before the stop')
    placing.abort(new Error('the import failed'))
    await waitFor(() => storeStreams() === 0, { timeoutMs: 5_000, intervalMs: 20, message: () => `${storeStreams()} store stream(s) still open 5 s after the stop` })
  })
})
