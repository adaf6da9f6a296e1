/**
 * The routing routes of the control API (`GET /api/v1/routing`,
 * `GET /api/v1/lookup`) on a small in-process swarm: the snapshot is the
 * overlay's, a lookup's `responsible` is the true k, bad input is 400.
 */
import assert from 'node:assert/strict'
import { CID } from 'multiformats/cid'
import { sha256 } from 'multiformats/hashes/sha2'
import { startApiServer, type ApiServer } from '../../src/api/server.ts'
import type { LookupResponse } from '../../src/api/routing-routes.ts'
import type { RoutingSnapshot } from '../../src/routing/index.ts'
import { createTestSwarm, type TestSwarm } from '../../src/swarm/test-swarm.ts'

describe('the routing API (GET /api/v1/routing, /api/v1/lookup)', function () {
  this.timeout(60_000)
  let swarm: TestSwarm
  let api: ApiServer
  const token = 'routing-api-test-token'

  before(async () => {
    swarm = await createTestSwarm(6)
    const peer = swarm.peers[0]
    api = await startApiServer(peer, { address: '127.0.0.1:0', token, logger: peer.logger, onShutdownRequested: () => {}, socketPath: false })
  })
  after(async () => {
    await api?.close()
    await swarm?.destroy()
  })

  const get = async (route: string): Promise<{ status: number, body: any }> => {
    const res = await fetch(`http://${api.address}${route}`, { headers: { authorization: `Bearer ${token}` } })
    return { status: res.status, body: await res.json() }
  }

  it('answers the overlay\'s routing snapshot', async () => {
    const { status, body } = await get('/api/v1/routing')
    assert.equal(status, 200)
    const routing = body as RoutingSnapshot
    assert.deepEqual(routing, JSON.parse(JSON.stringify(swarm.peers[0].overlay.routing())))
    assert.equal(routing.overlay, 'kademlia')
    assert.equal(routing.self, swarm.peers[0].peerId.toString())
  })

  it('looks a CID up and answers its path and the true k responsible peers', async () => {
    const cid = CID.createV1(0x55, await sha256.digest(new TextEncoder().encode('routing api')))
    const { status, body } = await get(`/api/v1/lookup?key=${cid}&replicas=4`)
    assert.equal(status, 200)
    const result = body as LookupResponse
    const truth = swarm.peers[0].overlay.order(cid.multihash.bytes, swarm.peers.map(p => p.peerId.toString())).slice(0, 4)
    assert.deepEqual(result.responsible, truth)
    assert.equal(result.key, cid.toString())
    assert.equal(result.overlay, 'kademlia')
    assert.equal(result.messages, result.path.length)
    assert.ok(result.path.every(h => typeof h.peerId === 'string' && h.hop >= 1 && h.ms >= 0 && typeof h.ok === 'boolean'))
  })

  it('takes hex key bytes, with k from the config by default', async () => {
    const { status, body } = await get('/api/v1/lookup?key=00FF10')
    assert.equal(status, 200)
    const result = body as LookupResponse
    assert.equal(result.key, '00ff10')
    const truth = swarm.peers[0].overlay.order(Uint8Array.from([0, 255, 16]), swarm.peers.map(p => p.peerId.toString())).slice(0, 3)
    assert.deepEqual(result.responsible, truth)
  })

  for (const [query, what] of [['', 'no key'], ['key=abc', 'odd hex that is no CID'], ['key=zzz', 'neither'], ['key=00ff&replicas=0', 'replicas 0'], ['key=00ff&replicas=65', 'replicas 65'], ['key=00ff&replicas=2.5', 'a fraction']]) {
    it(`answers 400 for ${what}`, async () => {
      const { status, body } = await get(`/api/v1/lookup?${query}`)
      assert.equal(status, 400)
      assert.equal(body.error.name, 'InvalidInputError')
    })
  }
})
