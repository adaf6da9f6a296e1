/**
 * waitRing (src/swarm/swarm-join.ts) on a planned Chord swarm, with peers
 * that answer their routing state from a table: a peer whose successor
 * list stays wrong is handed its list again (two peers holding each
 * other's lists is a state no stabilize repairs); one whose list is right
 * and only its predecessor not yet is left to the next notify.
 */
import assert from 'node:assert/strict'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import type { ApiClient } from '../../src/api/client.ts'
import { SwarmRing } from '../../src/swarm/routable.ts'
import type { SwarmPeerInfo } from '../../src/swarm/swarm-file.ts'
import { waitRing } from '../../src/swarm/swarm-join.ts'

describe('waitRing on a planned Chord swarm', function () {
  this.timeout(30_000)
  const R = 4

  async function swarm (count: number): Promise<{ ids: string[], ring: SwarmRing, state: Array<{ successors: string[], predecessor?: string }>, clients: ApiClient[], peers: SwarmPeerInfo[] }> {
    const ids = await Promise.all(Array.from({ length: count }, async () => peerIdFromPrivateKey(await generateKeyPair('Ed25519')).toString()))
    const ring = new SwarmRing(ids, R)
    const state = ids.map(id => ({ successors: ring.successorsOf(id), predecessor: ring.predecessorOf(id) }))
    const clients = ids.map((id, i) => ({ routing: async () => ({ overlay: 'chord', self: id, successors: state[i].successors, predecessor: state[i].predecessor, fingers: [] }) })) as unknown as ApiClient[]
    const peers = ids.map((id, i) => ({ index: i, peerId: id, multiaddrs: [] })) as unknown as SwarmPeerInfo[]
    return { ids, ring, state, clients, peers }
  }

  it('hands a crossed pair their lists again, and only them', async () => {
    const { ids, ring, state, clients, peers } = await swarm(12)
    const [a, b] = [2, 7];
    [state[a].successors, state[b].successors] = [state[b].successors, state[a].successors]
    const seeded: number[] = []
    const seeder = { seed: async (i: number) => { seeded.push(i); state[i].successors = ring.successorsOf(ids[i]); return true } }
    await waitRing(clients, peers, Date.now() + 20_000, { successorListLength: R }, undefined, seeder)
    assert.deepEqual(seeded.sort((x, y) => x - y), [a, b])
  })

  it('leaves a peer whose list is right and whose predecessor is not yet to stabilize', async () => {
    const { ids, ring, state, clients, peers } = await swarm(8)
    state[3].predecessor = undefined
    const seeded: number[] = []
    const seeder = { seed: async (i: number) => { seeded.push(i); return true } }
    // the predecessor arrives with a later notify
    setTimeout(() => { state[3].predecessor = ring.predecessorOf(ids[3]) }, 2_500)
    await waitRing(clients, peers, Date.now() + 20_000, { successorListLength: R }, undefined, seeder)
    assert.deepEqual(seeded, [])
  })
})
