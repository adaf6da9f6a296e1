/**
 * Fetch by a daemon process from in-process holders (real TCP): killed with
 * SIGKILL halfway it resumes without downloading the verified blocks again;
 * the API streams a byte range of a file it does not hold, that range first.
 * On Kademlia only: resume and ranges are the exchange's and the store's;
 * finding the holders through each overlay is fetch.spec.ts's.
 */
import assert from 'node:assert/strict'
import fs from 'node:fs/promises'
import path from 'node:path'
import type { CID } from 'multiformats/cid'
import { ApiClient } from '../../src/api/client.ts'
import type { ShoalPeer } from '../../src/peer/peer.ts'
import { createTestSwarm, type TestSwarm } from '../../src/swarm/test-swarm.ts'
import { waitFor } from '../../src/utils/wait.ts'
import { assertExit, runCli, startDaemon, tempDir, type DaemonProcess } from '../helpers/cli.ts'
import { shareOn as shareOnPeers } from '../helpers/swarm.ts'

const MiB = 1024 * 1024

describe('fetch by a daemon: resume after SIGKILL, streaming ranges', function () {
  this.timeout(180_000)
  let swarm: TestSwarm
  let dir: string
  let repo: string
  let daemon: DaemonProcess | undefined

  const startFetcher = async (): Promise<ApiClient> => {
    const bootstrap = `${swarm.peers[0].multiaddrs().find(ma => ma.includes('127.0.0.1'))}`
    daemon = await startDaemon(['--repo', repo, '--listen', '/ip4/127.0.0.1/tcp/0', '--api', '127.0.0.1:0', '--bootstrap', bootstrap])
    assert.match(daemon.output(), /daemon is ready/, daemon.output())
    const client = await ApiClient.fromRepo(repo)
    await waitFor(async () => (await client.request<{ peers: unknown[] }>('GET', '/api/v1/peers')).peers.length >= 3, {
      timeoutMs: 30_000, message: () => 'the fetcher did not connect to the holders'
    })
    return client
  }

  /** The fetcher daemon, started if no test before left one running. */
  const runningFetcher = async (): Promise<ApiClient> => {
    if (daemon == null || daemon.child.exitCode != null || daemon.child.signalCode != null) return startFetcher()
    return ApiClient.fromRepo(repo)
  }

  const shareOn = async (holders: ShoalPeer[], size: number): Promise<{ root: CID, data: Buffer }> =>
    shareOnPeers(holders, { dir, size, chunkSize: MiB })

  before(async () => {
    swarm = await createTestSwarm(3)
    dir = await tempDir('shoal-fetchd-')
    repo = path.join(dir, 'fetcher')
    assertExit((await runCli(['--repo', repo, 'init'])), 0)
  })
  after(async () => {
    daemon?.child.kill('SIGTERM')
    await daemon?.exited
    await swarm?.destroy()
    await fs.rm(dir, { recursive: true, force: true })
  })

  it('killed with SIGKILL halfway, a second fetch finishes without downloading the verified blocks again', async () => {
    const { root, data } = await shareOn(swarm.peers, 32 * MiB)
    for (const h of swarm.peers) h.uploadLimiter.setRate(4 * MiB)
    let client = await startFetcher()
    const target = path.join(dir, 'resumed.bin')
    let blocksAtKill = 0
    await assert.rejects(client.fetch(root.toString(), {
      path: target,
      timeoutSeconds: 30,
      onProgress: p => {
        if (blocksAtKill === 0 && p.bytes >= 12 * MiB) {
          blocksAtKill = p.blocks
          daemon!.child.kill('SIGKILL')
        }
      }
    }), (err: Error) => {
      // the API's progress stream cut off: the daemon's side of the socket closed
      assert.equal(err.name, 'ApiError', String(err))
      assert.match(err.message, /^the connection to the daemon broke off before the result/)
      return true
    }, 'the fetch dies with its daemon')
    await daemon!.exited
    assert.ok(blocksAtKill > 0, 'killed mid-fetch')
    const part = path.join(dir, `.resumed.bin.${root.toString()}.part`)
    await fs.access(part) // the temporary file is kept
    await assert.rejects(fs.access(target), { code: 'ENOENT' }, 'no output under the final name')

    client = await startFetcher()
    const result = await client.fetch(root.toString(), { path: target, timeoutSeconds: 30 })
    assert.ok((await fs.readFile(target)).equals(data), 'byte for byte the shared file')
    // blocks reported stored before the kill (less the root node) are not downloaded again
    assert.ok(result.localBytes >= (blocksAtKill - 1) * MiB, `${result.localBytes} bytes were already here; ${blocksAtKill} blocks were stored before the kill`)
    const received = Object.values(result.peers).reduce((a, b) => a + b, 0)
    assert.equal(received, data.length - result.localBytes, 'only the missing blocks were downloaded')
    await assert.rejects(fs.access(part), { code: 'ENOENT' }, 'the temporary file became the output')
    for (const h of swarm.peers) h.uploadLimiter.setRate(0)
  })

  it('streams a byte range of a file it does not hold, that range first, and the whole file on request', async () => {
    const { root, data } = await shareOn(swarm.peers, 16 * MiB + 5)
    const client = await runningFetcher()
    for (const h of swarm.peers) h.uploadLimiter.setRate(1 * MiB)
    try {
      const offset = 13 * MiB + 7
      const res = await client.read(root.toString(), { offset, length: 1000 })
      assert.equal(res.status, 206)
      assert.equal(res.headers.get('content-range'), `bytes ${offset}-${offset + 999}/${data.length}`)
      assert.ok(Buffer.from(await res.arrayBuffer()).equals(data.subarray(offset, offset + 1000)), 'exactly those bytes')
      // at 3 MiB/s in all, the 16 MiB file cannot be here yet: the range came first
      const { holdings } = await client.holdings()
      assert.ok(!holdings.some(h => h.cid === root.toString()), 'the range was served before the whole file was fetched')
    } finally {
      for (const h of swarm.peers) h.uploadLimiter.setRate(0)
    }
    const whole = await client.read(root.toString())
    assert.equal(whole.headers.get('content-length'), String(data.length))
    assert.ok(Buffer.from(await whole.arrayBuffer()).equals(data))
  })

  it('`shoal fetch` whose holders stop sending blocks fails after --timeout seconds without one, exit 1, saying how many are missing', async () => {
    const { root } = await shareOn(swarm.peers, 4 * MiB)
    await runningFetcher()
    // the root node (a few hundred bytes) gets through, a 1 MiB leaf would take minutes
    for (const h of swarm.peers) h.uploadLimiter.setRate(10 * 1024)
    try {
      const target = path.join(dir, 'stalled.bin')
      const r = await runCli(['--repo', repo, 'fetch', root.toString(), '-o', target, '--timeout', '3'])
      assertExit(r, 1)
      assert.equal(r.stderr.trim(), `shoal: no holder sent a block of ${root.toString()} for 3 s (4 of 5 blocks missing)`)
      await assert.rejects(fs.access(target), { code: 'ENOENT' })
    } finally {
      for (const h of swarm.peers) h.uploadLimiter.setRate(0)
    }
  })
})
