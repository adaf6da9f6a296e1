import assert from 'node:assert/strict'
import fs from 'node:fs/promises'
import path from 'node:path'
import { ShoalDaemon } from '../../src/api/daemon.ts'
import { ShoalPeer } from '../../src/peer/peer.ts'
import { Repo } from '../../src/peer/repo.ts'
import { createTestSwarm, type TestSwarm } from '../../src/swarm/test-swarm.ts'
import { waitFor } from '../../src/utils/wait.ts'
import { tempDir } from '../helpers/cli.ts'

describe('a Shoal peer on its repo', function () {
  let swarm: TestSwarm
  before(async () => { swarm = await createTestSwarm(6) })
  after(async () => { await swarm?.destroy() })

  it('restarted on the same repo keeps its peer ID and comes back into the swarm from persisted routing state', async () => {
    const old = swarm.peers[5]
    const repoPath = old.repo.path
    const id = old.peerId.toString()
    await old.stop()
    // no bootstrap list at all: only what the LevelDB peer store kept
    const again = await ShoalPeer.open(repoPath, { metrics: false })
    swarm.peers[5] = again
    await again.start()
    assert.equal(again.peerId.toString(), id)
    assert.deepEqual(again.bootstrapList(), [])
    await waitFor(() => again.routingTableSize() >= 5, {
      timeoutMs: 30_000,
      message: () => `restarted peer knows only ${again.routingTableSize()} peers`
    })
    const result = await again.overlay.lookup(new TextEncoder().encode('after restart'), 20, { signal: AbortSignal.timeout(20_000) })
    assert.deepEqual(new Set(result.responsible), new Set(swarm.peers.map(p => p.peerId.toString())), 'the lookup finds every peer of the swarm')
  })

  it('refuses a second peer on a repo that is in use', async () => {
    const second = await ShoalPeer.open(swarm.peers[1].repo.path)
    await assert.rejects(second.start(), (err: Error) => {
      assert.equal(err.name, 'RepoLockedError')
      assert.match(err.message, /in use by another Shoal daemon \(pid \d+\)/)
      return true
    })
    assert.ok(swarm.peers[1].isStarted, 'the first peer keeps running')
  })

  it('takes over a lock left by a process that no longer exists', async () => {
    const dir = await tempDir()
    try {
      await Repo.init(dir, { listen: ['/ip4/127.0.0.1/tcp/0'], api: '127.0.0.1:0' })
      await fs.writeFile(path.join(dir, 'repo.lock'), '999999999\n')
      const peer = await ShoalPeer.open(dir, { metrics: false })
      await peer.start()
      await peer.stop()
      await assert.rejects(fs.access(path.join(dir, 'repo.lock')), { code: 'ENOENT' }, 'lock removed on stop')
    } finally {
      await fs.rm(dir, { recursive: true, force: true })
    }
  })
})

describe('the control API of a daemon', function () {
  let dir: string
  let daemon: ShoalDaemon
  let peer: ShoalPeer
  let base: string
  let token: string
  before(async () => {
    dir = await tempDir()
    await Repo.init(dir, { listen: ['/ip4/127.0.0.1/tcp/0'], api: '127.0.0.1:0' })
    daemon = await ShoalDaemon.open(dir)
    await daemon.start()
    peer = daemon.peer
    base = `http://${(await fs.readFile(path.join(dir, 'api'), 'utf8')).trim()}`
    token = (await fs.readFile(path.join(dir, 'api.token'), 'utf8')).trim()
  })
  after(async () => {
    await daemon?.stop()
    await fs.rm(dir, { recursive: true, force: true })
  })

  it('writes its address to <repo>/api and its token with mode 0600', async () => {
    assert.equal(base, `http://${daemon.apiAddress}`)
    assert.equal((await fs.stat(path.join(dir, 'api.token'))).mode & 0o777, 0o600)
    assert.equal((await fs.stat(path.join(dir, 'identity.key'))).mode & 0o777, 0o600)
  })

  for (const route of ['/api/v1/id', '/api/v1/status', '/api/v1/peers', '/metrics', '/no/such/route']) {
    it(`answers 401 on ${route} without a token or with a wrong one`, async () => {
      assert.equal((await fetch(base + route)).status, 401)
      assert.equal((await fetch(base + route, { headers: { authorization: 'Bearer wrong' } })).status, 401)
      assert.equal((await fetch(base + route, { headers: { authorization: token } })).status, 401)
    })
  }

  it('serves id, status and Prometheus metrics with the token', async () => {
    const headers = { authorization: `Bearer ${token}` }
    const id = await (await fetch(`${base}/api/v1/id`, { headers })).json() as { peerId: string }
    assert.equal(id.peerId, peer.peerId.toString())
    const status = await (await fetch(`${base}/api/v1/status`, { headers })).json() as { dht: { mode: string }, api: string }
    assert.equal(status.dht.mode, 'server')
    assert.equal(`http://${status.api}`, base)
    const metrics = await fetch(`${base}/metrics`, { headers })
    assert.equal(metrics.status, 200)
    assert.match(metrics.headers.get('content-type') ?? '', /text\/plain/)
    const text = await metrics.text()
    assert.match(text, /^libp2p_/m, 'libp2p metrics')
    assert.match(text, /^process_resident_memory_bytes /m, 'process metrics')
  })

  it('answers an unknown route with 404 in the API\'s error shape', async () => {
    const res = await fetch(`${base}/api/v1/no-such-route?x=1`, { headers: { authorization: `Bearer ${token}` } })
    assert.equal(res.status, 404)
    assert.deepEqual(await res.json(), { error: { name: 'NotFoundError', message: 'no such API route: GET /api/v1/no-such-route', exitCode: 2 } })
  })

  it('stops cleanly: API closed, address file and lock removed', async () => {
    // a daemon of its own: the others' keeps serving whatever runs after this
    const dir = await tempDir()
    await Repo.init(dir, { listen: ['/ip4/127.0.0.1/tcp/0'], api: '127.0.0.1:0' })
    const daemon = await ShoalDaemon.open(dir)
    await daemon.start()
    const peer = daemon.peer
    const base = `http://${daemon.apiAddress}`
    await daemon.stop()
    assert.equal(peer.isStarted, false)
    await assert.rejects(fetch(`${base}/api/v1/id`), (err: Error) => (err.cause as { code?: string }).code === 'ECONNREFUSED', 'nothing listens on the API address')
    await assert.rejects(fs.access(path.join(dir, 'api')), { code: 'ENOENT' })
    await assert.rejects(fs.access(path.join(dir, 'repo.lock')), { code: 'ENOENT' })
    await fs.rm(dir, { recursive: true, force: true })
  })
})
