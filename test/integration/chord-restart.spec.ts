import assert from 'node:assert/strict'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { MemoryDatastore } from 'datastore-core'
import { ChordTestRing, createChordNode } from '../helpers/chord-nodes.ts'

describe('a Chord peer restarted with its datastore', function () {
  const r = 4
  let ring: ChordTestRing
  after(async () => { await ring?.destroy() })

  it('rejoins the ring by itself, with no bootstrap address, at its true place', async function () {
    ring = await ChordTestRing.create(6, { successorListLength: r, leaveOnStop: false })
    const identity = { privateKey: await generateKeyPair('Ed25519'), datastore: new MemoryDatastore() }
    const first = await createChordNode({ successorListLength: r, leaveOnStop: false }, identity)
    ring.nodes.push(first)
    await first.services.chord.join([ring.live()[0].getMultiaddrs()[0].toString()], { signal: AbortSignal.timeout(30_000) })
    await ring.waitStable(r, 30_000)
    // its contacts are written a moment after the ring settles, and when it stops
    await ring.kill([first])
    await ring.waitStable(r, 30_000)
    assert.equal(ring.live().length, 6)

    // the same key and datastore, a new port, no join: it finds its saved successors
    const again = await createChordNode({ successorListLength: r, leaveOnStop: false }, identity)
    assert.equal(again.peerId.toString(), first.peerId.toString())
    ring.nodes.push(again)
    await ring.waitStable(r, 30_000)
    const routing = again.services.chord.routing()
    assert.equal(routing.overlay, 'chord')
    assert.deepEqual(routing.overlay === 'chord' ? routing.successors : [], ring.expectedSuccessors(again, r))
  })

})
