/**
 * Fetch timeouts through a daemon's API (in-process daemon, a real peer
 * beside it over TCP): `timeoutSeconds` bounds the wait for a CID nobody
 * holds, on each overlay (its lookups keep to the fetch's deadline), and a
 * timeout inside a lookup is answered as a timeout (504, exit code 1, with
 * its reason), not as an unknown error (the lookup is stubbed there: that
 * case runs on Kademlia only).
 */
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import fs from 'node:fs/promises'
import { ApiClient } from '../../src/api/client.ts'
import { ShoalDaemon } from '../../src/api/daemon.ts'
import { cidOf, RAW_CODE } from '../../src/content/cid.ts'
import { ApiError } from '../../src/errors.ts'
import { Repo } from '../../src/peer/repo.ts'
import { OVERLAY_NAMES, type ResponsiblePlanner } from '../../src/routing/index.ts'
import { createTestSwarm, type TestSwarm } from '../../src/swarm/test-swarm.ts'
import { waitFor } from '../../src/utils/wait.ts'
import { tempDir } from '../helpers/cli.ts'

for (const overlayName of OVERLAY_NAMES) describe(`fetch timeouts through the API on ${overlayName}`, function () {
  this.timeout(60_000)
  let swarm: TestSwarm
  let dir: string
  let daemon: ShoalDaemon
  let client: ApiClient

  before(async () => {
    swarm = await createTestSwarm(2, { overlay: overlayName })
    dir = await tempDir()
    const bootstrap = swarm.peers[0].multiaddrs().find(ma => ma.includes('127.0.0.1'))!
    await Repo.init(dir, { overlay: overlayName, listen: ['/ip4/127.0.0.1/tcp/0'], api: '127.0.0.1:0', bootstrap: [bootstrap] })
    daemon = await ShoalDaemon.open(dir)
    await daemon.start()
    client = await ApiClient.fromRepo(dir)
    await waitFor(() => daemon.peer.libp2p.getPeers().length >= 2, { timeoutMs: 20_000, intervalMs: 50, message: () => 'the daemon did not connect to the swarm' })
  })
  after(async () => {
    await daemon?.stop()
    await swarm?.destroy()
    if (dir != null) await fs.rm(dir, { recursive: true, force: true })
  })

  it('gives up on a CID nobody holds when timeoutSeconds have passed, not later: 404, exit code 1, saying so', async () => {
    const unknown = cidOf(RAW_CODE, randomBytes(64))
    const started = performance.now()
    const err = await client.fetch(unknown.toString(), { timeoutSeconds: 3 }).then(() => undefined, (e: unknown) => e)
    const elapsed = performance.now() - started
    assert.ok(err instanceof ApiError, String(err))
    assert.equal(err.remoteName, 'ContentNotFoundError')
    assert.equal(err.status, 404)
    assert.equal(err.exitCode, 1)
    assert.equal(err.message, `no holder of ${unknown.toString()} answered within 3 s`)
    assert.ok(elapsed >= 3000 && elapsed < 3700, `gave up after ${Math.round(elapsed)} ms`)
  })

  if (overlayName === 'kademlia') it('a lookup that times out inside the fetch is answered 504 TimeoutError, exit code 1, with the lookup\'s reason', async () => {
    const overlay = daemon.peer.overlay as unknown as { planner: () => ResponsiblePlanner, findProviders: unknown }
    const timedOut = (): Error => new DOMException('the DHT query for the closest peers timed out', 'TimeoutError')
    const planner = overlay.planner
    const findProviders = overlay.findProviders
    overlay.planner = () => ({ plan: async () => { throw timedOut() }, exclude: () => {} })
    overlay.findProviders = async function * () { yield * []; throw timedOut() }
    try {
      const unknown = cidOf(RAW_CODE, randomBytes(64))
      const err = await client.fetch(unknown.toString(), { timeoutSeconds: 30 }).then(() => undefined, (e: unknown) => e)
      assert.ok(err instanceof ApiError, String(err))
      assert.equal(err.remoteName, 'TimeoutError')
      assert.equal(err.status, 504)
      assert.equal(err.exitCode, 1)
      assert.equal(err.message, `fetching ${unknown.toString()}: the DHT query for the closest peers timed out`)
    } finally {
      overlay.planner = planner
      overlay.findProviders = findProviders
    }
  })
})
