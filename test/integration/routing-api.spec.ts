/**
 * The routing routes of the control API (`GET /api/v1/routing`,
 * `GET /api/v1/lookup`) on a small in-process swarm: the snapshot is the
 * overlay's, a lookup's `responsible` is the true k, bad input is 400; on
 * both overlays. And the experiment control `POST /api/v1/routing/maintenance`,
 * and `POST /api/v1/dht/join`'s checks of a launcher's `fingers`.
 */
import assert from 'node:assert/strict'
import { CID } from 'multiformats/cid'
import { sha256 } from 'multiformats/hashes/sha2'
import { startApiServer, type ApiServer } from '../../src/api/server.ts'
import type { LookupResponse } from '../../src/api/routing-routes.ts'
import type { ShoalPeer } from '../../src/peer/peer.ts'
import type { OverlayName, RoutingSnapshot } from '../../src/routing/index.ts'
import { createTestSwarm, type TestSwarm } from '../../src/swarm/test-swarm.ts'

for (const overlay of ['kademlia', 'chord'] as OverlayName[]) describe(`the routing API (GET /api/v1/routing, /api/v1/lookup) on ${overlay}`, function () {
  this.timeout(60_000)
  let swarm: TestSwarm
  let api: ApiServer
  const token = 'routing-api-test-token'

  before(async () => {
    swarm = await createTestSwarm(6, { overlay })
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
    const peer = swarm.peers[0]
    assert.equal(routing.overlay, overlay)
    assert.equal(routing.self, peer.peerId.toString())
    const all = swarm.peers.map(p => p.peerId.toString())
    if (routing.overlay === 'chord') {
      // a stabilized ring of 6: every other peer, clockwise (fingers move as they are fixed)
      assert.deepEqual(routing.successors, peer.overlay.order(peer.peerId.toMultihash().bytes, all).slice(1))
      assert.equal(routing.predecessor, routing.successors.at(-1))
      assert.ok(routing.fingers.every(f => all.includes(f.peerId) && f.index >= 0 && f.index < 256))
    } else {
      assert.deepEqual(routing, JSON.parse(JSON.stringify(peer.overlay.routing())))
      assert.deepEqual(routing.buckets.flatMap(b => b.peers).sort(), all.filter(id => id !== routing.self).sort())
    }
  })

  it('looks a CID up and answers its path and the true k responsible peers', async () => {
    const cid = CID.createV1(0x55, await sha256.digest(new TextEncoder().encode('routing api')))
    const { status, body } = await get(`/api/v1/lookup?key=${cid}&replicas=4`)
    assert.equal(status, 200)
    const result = body as LookupResponse
    const truth = swarm.peers[0].overlay.order(cid.multihash.bytes, swarm.peers.map(p => p.peerId.toString())).slice(0, 4)
    assert.deepEqual(result.responsible, truth)
    assert.equal(result.key, cid.toString())
    assert.equal(result.overlay, overlay)
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

  describe('POST /api/v1/dht/join with bad fingers', () => {
    const post = async (body: unknown): Promise<{ status: number, body: any }> => {
      const res = await fetch(`http://${api.address}/api/v1/dht/join`, {
        method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, body: JSON.stringify(body)
      })
      return { status: res.status, body: await res.json() }
    }
    /** Every join the route hands the peer. */
    const joins: unknown[][] = []
    let original: ShoalPeer['join']
    before(() => {
      const peer = swarm.peers[0]
      original = peer.join.bind(peer)
      peer.join = async (...args) => { joins.push(args); return original(...args) }
    })
    after(() => { swarm.peers[0].join = original })

    /** The routing state a join could change (Chord's fingers move as fix-fingers runs, whatever the test does). */
    const neighbours = (): unknown => {
      const routing = swarm.peers[0].overlay.routing()
      return routing.overlay === 'chord' ? { successors: routing.successors, predecessor: routing.predecessor } : routing
    }
    const NOT_AN_ARRAY = 'body field "fingers" must be an array of multiaddrs, and comes only with "successors": true'
    // a real successor: with the checks gone, each body would change this peer's routing state
    const next = (): string => swarm.peers[1].libp2p.getMultiaddrs()[0].toString()
    const cases: Array<[string, () => unknown, string]> = [
      ['fingers that are no array', () => ({ multiaddrs: [next()], successors: true, fingers: next() }), NOT_AN_ARRAY],
      ['fingers without "successors"', () => ({ multiaddrs: [next()], fingers: [next()] }), NOT_AN_ARRAY],
      ['fingers with "successors": false', () => ({ multiaddrs: [next()], successors: false, fingers: [next()] }), NOT_AN_ARRAY],
      ['a finger that is no string', () => ({ multiaddrs: [next()], successors: true, fingers: [42] }), 'fingers[0] must be a multiaddr string'],
      ['a finger that is no multiaddr', () => ({ multiaddrs: [next()], successors: true, fingers: ['nonsense'] }), 'fingers[0] is not a valid multiaddr: "nonsense"'],
      ['a finger without /p2p/<peer id>', () => ({ multiaddrs: [next()], successors: true, fingers: [next(), '/ip4/127.0.0.1/tcp/4001'] }), 'fingers[1] must end in /p2p/<peer id>, got "/ip4/127.0.0.1/tcp/4001"']
    ]
    for (const [what, body, message] of cases) {
      it(`answers 400 for ${what}, with one error naming it, and joins nothing`, async () => {
        const before = neighbours()
        assert.deepEqual(await post(body()), { status: 400, body: { error: { name: 'InvalidInputError', message, exitCode: 2 } } })
        assert.deepEqual(joins, [])
        assert.deepEqual(neighbours(), before)
      })
    }

    it('hands a body without fingers on (the checks above are what stopped the others)', async () => {
      const { status } = await post({ multiaddrs: [] })
      assert.equal(status, 200)
      assert.deepEqual(joins, [[[], { successors: false, fingers: undefined }]])
    })
  })

  it('pauses and restarts the overlay\'s maintenance (POST /api/v1/routing/maintenance); lookups still answer while paused', async () => {
    const overlayOf = swarm.peers[0].overlay
    const calls: boolean[] = []
    const original = overlayOf.pauseMaintenance.bind(overlayOf)
    overlayOf.pauseMaintenance = (paused: boolean) => { calls.push(paused); original(paused) }
    const post = async (body: unknown): Promise<{ status: number, body: any }> => {
      const res = await fetch(`http://${api.address}/api/v1/routing/maintenance`, {
        method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, body: JSON.stringify(body)
      })
      return { status: res.status, body: await res.json() }
    }
    try {
      assert.deepEqual(await post({ paused: true }), { status: 200, body: { overlay, paused: true } })
      const { status, body } = await get('/api/v1/lookup?key=00ff10')
      assert.equal(status, 200)
      assert.deepEqual((body as LookupResponse).responsible, overlayOf.order(Uint8Array.from([0, 255, 16]), swarm.peers.map(p => p.peerId.toString())).slice(0, 3))
      assert.deepEqual(await post({ paused: false }), { status: 200, body: { overlay, paused: false } })
      const bad = await post({ paused: 'yes' })
      assert.equal(bad.status, 400)
      assert.equal(bad.body.error.name, 'InvalidInputError')
      assert.deepEqual(calls, [true, false])
    } finally {
      overlayOf.pauseMaintenance = original
    }
  })
})
