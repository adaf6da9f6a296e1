/**
 * A successor list a launcher hands a Chord peer (Maintenance.seed) stands
 * against a stabilize round that was under way when it came: on a loaded
 * machine that round's answer arrives later, from the successor the peer
 * had before, and putting that list back left peers holding each other's
 * lists, which no later stabilize repairs.
 */
import assert from 'node:assert/strict'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { logger } from '@libp2p/logger'
import { peerIdFromPrivateKey, peerIdFromString } from '@libp2p/peer-id'
import { Maintenance, type MaintenanceInit } from '../../src/routing/chord/maintenance.ts'
import { Positions } from '../../src/routing/chord/positions.ts'
import { RingState } from '../../src/routing/chord/ring-state.ts'
import { SwarmRing } from '../../src/swarm/routable.ts'

describe('a handed-out Chord successor list', () => {
  it('is not replaced by the answer of a stabilize round started before it', async () => {
    const ids = await Promise.all(Array.from({ length: 10 }, async () => peerIdFromPrivateKey(await generateKeyPair('Ed25519')).toString()))
    const ring = new SwarmRing(ids, 3)
    const [self, ...others] = ring.order
    const truth = ring.successorsOf(self)
    // a wrong list: successors from the other side of the ring
    const wrong = ring.successorsOf(others[4])
    const message = (id: string): { id: Uint8Array, addrs: Uint8Array[] } => ({ id: peerIdFromString(id).toMultihash().bytes, addrs: [] })
    let answer: (() => void) | undefined
    const rpc = {
      request: async (peer: string) => {
        // the wrong successor answers late, with the list that follows it
        await new Promise<void>(resolve => { answer = resolve })
        return { state: { predecessor: null, successors: ring.successorsOf(peer).map(message) } }
      }
    }
    const state = new RingState(self, new Positions(), 3)
    const maintenance = new Maintenance({
      state,
      rpc: rpc as unknown as MaintenanceInit['rpc'],
      lookup: async () => { throw new Error('no lookups here') },
      learn: () => {},
      failed: () => true,
      fallbackSeeds: () => [],
      peerMessage: message,
      log: logger('test')
    })
    maintenance.seed(wrong)
    const round = maintenance.stabilize()
    await new Promise(resolve => setImmediate(resolve))
    assert.notEqual(answer, undefined, 'the round asked its successor')
    maintenance.seed(truth)
    answer!()
    await round
    assert.deepEqual(state.successors, truth)
  })
})
