/**
 * Puts that reach a receiver in one piece of the transport (several small
 * messages in one send, as a client that writes each put as one buffer
 * makes them): the transport hands them over as views into one decrypted
 * chunk, and each must be stored on its own, none spoiling the others.
 * On Kademlia only: the store protocol's framing does not depend on the
 * overlay.
 */
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import type { CID } from 'multiformats/cid'
import { cidOf, RAW_CODE } from '../../src/content/cid.ts'
import { createTestSwarm, type TestSwarm } from '../../src/swarm/test-swarm.ts'
import { waitFor } from '../../src/utils/wait.ts'
import { lengthPrefixed } from '../../src/wire/length-prefix.ts'
import { STORE_PROTOCOL, StoreRequestCodec } from '../../src/wire/store-messages.ts'

describe('store puts that arrive together', function () {
  this.timeout(60_000)
  let swarm: TestSwarm
  before(async () => { swarm = await createTestSwarm(3) })
  after(async () => { await swarm?.destroy() })

  it('stores each of 12 small puts sent in one write, exactly', async () => {
    const [receiver, sender] = swarm.peers
    const blocks: Array<{ cid: CID, data: Uint8Array }> = []
    while (blocks.length < 12) {
      const data = randomBytes(8 * 1024)
      const cid = cidOf(RAW_CODE, data)
      // (every peer of a 3-peer swarm is among a block's 3 closest)
      blocks.push({ cid, data })
    }
    const stream = await sender.libp2p.dialProtocol(receiver.peerId, STORE_PROTOCOL)
    try {
      stream.send(Buffer.concat(blocks.map(b => lengthPrefixed(StoreRequestCodec.encode({ put: { cid: b.cid.bytes, data: b.data, replicas: 3 } })))))
      const held = async (): Promise<number> => (await Promise.all(blocks.map(async b => receiver.content.hasBlock(b.cid)))).filter(Boolean).length
      await waitFor(async () => await held() === blocks.length, { timeoutMs: 20_000, intervalMs: 50, message: () => 'not every put was stored' })
      for (const b of blocks) assert.ok(Buffer.from(await receiver.content.readBlock(b.cid)).equals(b.data))
    } finally {
      stream.abort(new Error('done'))
    }
  })
})
