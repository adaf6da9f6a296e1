/**
 * When a Chord peer that did not answer counts as dead (suspects.ts), and
 * what stabilize does with a first successor that is only a suspect: it
 * stays first until it has failed SUSPECT_LIMIT queries in a row, and goes
 * at once when nothing listens where it was.
 */
import assert from 'node:assert/strict'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { logger } from '@libp2p/logger'
import { peerIdFromPrivateKey, peerIdFromString } from '@libp2p/peer-id'
import { SUSPECT_LIMIT } from '../../src/routing/chord/constants.ts'
import { Maintenance, type MaintenanceInit } from '../../src/routing/chord/maintenance.ts'
import { Positions } from '../../src/routing/chord/positions.ts'
import { RingState } from '../../src/routing/chord/ring-state.ts'
import { isUnreachable, Suspects } from '../../src/routing/chord/suspects.ts'
import { SwarmRing } from '../../src/swarm/routable.ts'

const refused = (): Error => Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:4001'), { code: 'ECONNREFUSED' })
const timedOut = (): Error => new DOMException('The operation was aborted due to timeout', 'TimeoutError')

describe('Chord suspects', () => {
  it('a peer is dead after SUSPECT_LIMIT failed queries in a row, and an answer in between clears it', () => {
    const suspects = new Suspects()
    for (let i = 1; i < SUSPECT_LIMIT; i++) assert.equal(suspects.failed('a', timedOut()), false, `failure ${i}`)
    suspects.answered('a')
    for (let i = 1; i < SUSPECT_LIMIT; i++) assert.equal(suspects.failed('a', timedOut()), false, `failure ${i} after the answer`)
    assert.equal(suspects.failed('a', new Error('stream reset')), true)
    assert.equal(suspects.size, 0, 'a dead peer is no suspect')
  })

  it('a peer whose dial is refused is dead at once, also behind a wrapping error', () => {
    const suspects = new Suspects()
    assert.equal(suspects.failed('a', refused()), true)
    assert.equal(suspects.failed('b', new Error('dial failed', { cause: refused() })), true)
    assert.equal(suspects.failed('c', new AggregateError([refused(), refused()], 'All multiaddr dials failed')), true)
    // one address refused, another timed out: the peer may live there
    assert.equal(isUnreachable(new AggregateError([refused(), timedOut()], 'All multiaddr dials failed')), false)
    assert.equal(isUnreachable(timedOut()), false)
  })

  describe('stabilize', () => {
    let ids: string[]
    before(async () => {
      ids = await Promise.all(Array.from({ length: 8 }, async () => peerIdFromPrivateKey(await generateKeyPair('Ed25519')).toString()))
    })

    /** A peer whose first successor fails every get-state with `error`; the rest answer from the true ring. */
    function setup (error: () => Error): { state: RingState, maintenance: Maintenance, asked: string[], truth: string[] } {
      const ring = new SwarmRing(ids, 3)
      const self = ring.order[0]
      const truth = ring.successorsOf(self)
      const message = (id: string): { id: Uint8Array, addrs: Uint8Array[] } => ({ id: peerIdFromString(id).toMultihash().bytes, addrs: [] })
      const asked: string[] = []
      const rpc = {
        request: async (peer: string) => {
          asked.push(peer)
          if (peer === truth[0]) throw error()
          return { state: { predecessor: message(self), successors: ring.successorsOf(peer).map(message) } }
        }
      }
      const state = new RingState(self, new Positions(), 3)
      const suspects = new Suspects()
      const maintenance = new Maintenance({
        state,
        rpc: rpc as unknown as MaintenanceInit['rpc'],
        lookup: async () => { throw new Error('no lookups here') },
        learn: () => {},
        failed: (peer, err) => suspects.failed(peer, err),
        fallbackSeeds: () => [],
        peerMessage: message,
        log: logger('test')
      })
      maintenance.seed(truth)
      return { state, maintenance, asked, truth }
    }

    it('keeps a first successor that times out until it has failed SUSPECT_LIMIT rounds in a row', async () => {
      const { state, maintenance, asked, truth } = setup(timedOut)
      for (let round = 1; round < SUSPECT_LIMIT; round++) {
        await maintenance.stabilize()
        assert.deepEqual(state.successors, truth, `round ${round}: the list stands`)
      }
      assert.deepEqual(asked, Array(SUSPECT_LIMIT - 1).fill(truth[0]), 'only the suspect was asked')
      await maintenance.stabilize()
      assert.equal(state.successors[0], truth[1], 'dead after the last failure: the next successor takes its place')
      assert.ok(!state.successors.includes(truth[0]))
    })

    it('drops a first successor whose dial is refused in the first round', async () => {
      const { state, maintenance, truth } = setup(refused)
      await maintenance.stabilize()
      assert.equal(state.successors[0], truth[1])
      assert.ok(!state.successors.includes(truth[0]))
    })
  })
})
