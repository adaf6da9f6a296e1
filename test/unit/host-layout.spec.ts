/**
 * How `swarm up` lays a swarm out when nobody says (src/swarm/host-layout.ts):
 * peers per host and each hosted peer's connection watermarks, both from
 * the open files a process may hold.
 */
import assert from 'node:assert/strict'
import { CONNECTIONS_HIGH_WATER, CONNECTIONS_LOW_WATER, MAX_CONNECTIONS, OPEN_FILES_PER_HOSTED_PEER, OWN_PROCESS_MAX_PEERS } from '../../src/constants.ts'
import { defaultPeersPerProcess, hostedWatermarks, swarmMaxConnections } from '../../src/swarm/host-layout.ts'

describe('swarm host layout', () => {
  it('gives small swarms a process per peer, and large ones no more peers per host than the file limit has room for', () => {
    assert.equal(defaultPeersPerProcess(OWN_PROCESS_MAX_PEERS, 20_000), 1)
    assert.equal(defaultPeersPerProcess(1000, 20_000), 20_000 / OPEN_FILES_PER_HOSTED_PEER)
    assert.equal(defaultPeersPerProcess(1000, 1_000_000) <= 500, true, 'about one host per core')
  })

  it('gives a hosted peer its share of the host\'s files as connections, at most a lone daemon\'s, at least 16', () => {
    assert.deepEqual(hostedWatermarks(200, 20_000), { highWater: 64, lowWater: 48 })
    assert.deepEqual(hostedWatermarks(100, 20_000), { highWater: CONNECTIONS_HIGH_WATER, lowWater: CONNECTIONS_LOW_WATER })
    assert.deepEqual(hostedWatermarks(1000, 20_000), { highWater: 16, lowWater: 12 })
  })

  it('caps a swarm peer\'s connections past two to every other peer, never under a lone daemon\'s cap', () => {
    assert.equal(swarmMaxConnections(10), MAX_CONNECTIONS)
    assert.equal(swarmMaxConnections(1000) >= 2 * 999, true)
  })
})
