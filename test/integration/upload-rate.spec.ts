/**
 * `transfer.maxUploadRate` from the repo's config.json (docs/cli.md): a
 * peer whose config says "2MiB" sends a fetcher no faster than 2 MiB/s.
 * On Kademlia only: the rate limit does not depend on the overlay.
 */
import assert from 'node:assert/strict'
import fs from 'node:fs/promises'
import path from 'node:path'
import { createTestSwarm, type TestSwarm } from '../../src/swarm/test-swarm.ts'
import { shareOn } from '../helpers/swarm.ts'

const MiB = 1024 * 1024

describe('transfer.maxUploadRate from config', function () {
  this.timeout(60_000)
  let swarm: TestSwarm
  before(async () => { swarm = await createTestSwarm(2, { config: { transfer: { maxUploadRate: '2MiB' } } }) })
  after(async () => { await swarm?.destroy() })

  it('a holder whose config says "2MiB" sends 6 MiB in no less than the 3 s that rate allows', async () => {
    const [holder, fetcher] = swarm.peers
    const config = JSON.parse(await fs.readFile(path.join(holder.repo.path, 'config.json'), 'utf8')) as { transfer: { maxUploadRate: unknown } }
    assert.equal(config.transfer.maxUploadRate, '2MiB', 'the limit comes from the repo\'s config file')
    const { root, data } = await shareOn([holder], { dir: swarm.dir, size: 6 * MiB, chunkSize: 256 * 1024 })
    const started = performance.now()
    const result = await fetcher.fetcher.fetch(root, { output: { path: path.join(swarm.dir, 'limited.bin') }, timeoutMs: 30_000 })
    const seconds = (performance.now() - started) / 1000
    assert.equal(result.peers[holder.peerId.toString()], data.length)
    // 6 MiB at 2 MiB/s, less the limiter's burst and the block in flight when the clock starts
    assert.ok(seconds >= 2.5, `6 MiB arrived in ${seconds.toFixed(2)} s: faster than 2 MiB/s`)
  })
})
