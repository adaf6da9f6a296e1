/**
 * SIGKILL of a daemon in the middle of each thing that writes its store — a
 * share, a fetch, a replica put from another peer, an rm, a gc — then a
 * restart on the same repo: everything reported done before is still held
 * and reads exactly, every block in the store hashes to its CID (no
 * half-written block), no held DAG is incomplete, and the store works on.
 * The daemon is a real process; the peers around it run in this process
 * (their upload rate capped where a transfer must last long enough to be
 * cut).
 */
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import fs from 'node:fs/promises'
import path from 'node:path'
import { ApiClient } from '../../src/api/client.ts'
import { createTestSwarm, type TestSwarm } from '../../src/swarm/test-swarm.ts'
import { waitFor } from '../../src/utils/wait.ts'
import { assertExit, runCli, startDaemon, tempDir, type DaemonProcess } from '../helpers/cli.ts'
import { shareOn } from '../helpers/swarm.ts'

const KiB = 1024
const MiB = 1024 * KiB

describe('hostile: SIGKILL during share, fetch, replica put, rm and gc', function () {
  this.timeout(120_000)
  let swarm: TestSwarm
  let dir: string
  let repo: string
  let daemon: DaemonProcess | undefined
  let client: ApiClient
  /** What the daemon reported done: CIDs it holds, with the bytes they read as (files) or nothing (replica blocks). */
  const done = new Map<string, { reason: string, data?: Buffer }>()

  const start = async (): Promise<void> => {
    const bootstrap = `${swarm.peers[0].multiaddrs().find(ma => ma.includes('127.0.0.1'))}`
    daemon = await startDaemon(['--repo', repo, '--listen', '/ip4/127.0.0.1/tcp/0', '--api', '127.0.0.1:0', '--bootstrap', bootstrap])
    client = await ApiClient.fromRepo(repo)
    await waitFor(async () => (await client.peers()).length >= 2, { timeoutMs: 30_000, message: () => 'the daemon did not connect to the swarm' })
  }
  const kill = async (): Promise<void> => {
    daemon!.child.kill('SIGKILL')
    const exit = await daemon!.exited
    assert.equal(exit.signal, 'SIGKILL', 'the daemon died of the SIGKILL, not of its own accord')
  }
  /** Restarted on the same repo: all that was reported done is there and exact, the store verifies clean. */
  const restartAndCheck = async (): Promise<void> => {
    await start()
    const verified = await client.verify(true)
    assert.deepEqual(verified.bad, [], 'every block in the store hashes to its CID')
    assert.deepEqual(verified.needsRepair, [], 'no held DAG is missing a block')
    const { holdings } = await client.holdings()
    for (const [cid, want] of done) {
      assert.ok(holdings.some(h => h.cid === cid && h.reason === want.reason), `${want.reason} ${cid} is still held`)
      if (want.data == null) continue
      const res = await client.read(cid, { local: true })
      assert.equal(res.status, 200)
      assert.ok(Buffer.from(await res.arrayBuffer()).equals(want.data), `${cid} reads exactly`)
    }
  }
  const newFile = async (bytes: number): Promise<{ file: string, data: Buffer }> => {
    const data = randomBytes(bytes)
    const file = path.join(dir, `${randomBytes(4).toString('hex')}.bin`)
    await fs.writeFile(file, data)
    return { file, data }
  }

  before(async () => {
    swarm = await createTestSwarm(2)
    dir = await tempDir('shoal-crash-')
    repo = path.join(dir, 'victim')
    assertExit(await runCli(['--repo', repo, 'init']), 0)
    await start()
    // reported done before any kill: a share, a fetch, replicas placed here
    const shared = await newFile(3 * MiB + 1)
    done.set((await client.share({ path: shared.file, replicas: 0, chunkSize: 256 * KiB })).cid, { reason: 'shared', data: shared.data })
    const other = await shareOn([swarm.peers[0]], { dir, size: 2 * MiB + 3, chunkSize: 256 * KiB })
    await client.fetch(other.root.toString(), { timeoutSeconds: 30 })
    done.set(other.root.toString(), { reason: 'fetched', data: other.data })
    const placed = await newFile(MiB)
    const result = await swarm.peers[1].share({ path: placed.file }, { replicas: 3, chunkSize: 128 * KiB })
    const victimId = (await client.id()).peerId
    for (const b of result.placement.blocks) if (b.holders.includes(victimId)) done.set(b.cid, { reason: 'replica' })
    assert.ok([...done.values()].some(d => d.reason === 'replica'), 'replicas were placed on the daemon')
  })
  after(async () => {
    if (daemon != null && daemon.child.exitCode == null && daemon.child.signalCode == null) {
      daemon.child.kill('SIGTERM')
      await daemon.exited
    }
    await swarm?.destroy()
    if (dir != null) await fs.rm(dir, { recursive: true, force: true })
  })

  it('during a share', async () => {
    const { file } = await newFile(48 * MiB)
    let killed = false
    await assert.rejects(client.share({
      path: file,
      replicas: 0,
      chunkSize: 64 * KiB,
      onProgress: p => {
        if (!killed && p.phase === 'import' && p.bytes >= 8 * MiB) { killed = true; daemon!.child.kill('SIGKILL') }
      }
    }))
    assert.ok(killed, 'killed in the middle of the import')
    await kill()
    await restartAndCheck()
  })

  it('during a fetch', async () => {
    const { root } = await shareOn([swarm.peers[0]], { dir, size: 24 * MiB, chunkSize: 256 * KiB })
    swarm.peers[0].uploadLimiter.setRate(4 * MiB)
    try {
      let killed = false
      await assert.rejects(client.fetch(root.toString(), {
        path: path.join(dir, 'cut.bin'),
        timeoutSeconds: 30,
        onProgress: p => {
          if (!killed && p.bytes >= 4 * MiB) { killed = true; daemon!.child.kill('SIGKILL') }
        }
      }))
      assert.ok(killed, 'killed in the middle of the fetch')
      await kill()
    } finally {
      swarm.peers[0].uploadLimiter.setRate(0)
    }
    await restartAndCheck()
  })

  it('during replica puts from another peer', async () => {
    const { file } = await newFile(24 * MiB)
    const id = (await client.id()).peerId
    let killed = false
    // the copies the daemon answered STORED for before it died (the sender
    // then places them elsewhere, so its final report no longer names it)
    const stored: string[] = []
    await swarm.peers[1].share({ path: file }, {
      replicas: 3,
      chunkSize: 64 * KiB,
      onProgress: e => {
        if (e.name !== 'share:placed') return
        if (e.copy.peer === id && e.copy.held && !killed) stored.push(e.copy.cid)
        if (!killed && e.done >= 32) { killed = true; daemon!.child.kill('SIGKILL') }
      }
    })
    assert.ok(killed, 'killed while the blocks were being placed')
    await kill()
    await restartAndCheck()
    // every copy the daemon answered STORED for is held after the restart
    assert.ok(stored.length > 0, 'some blocks were stored before the kill')
    const { holdings } = await client.holdings()
    for (const cid of stored) assert.ok(holdings.some(h => h.cid === cid && h.reason === 'replica'), `replica ${cid} answered STORED is held`)
  })

  it('during an rm, once its holding is gone and its blocks are being swept', async () => {
    await client.gc()
    const blocksBefore = (await client.holdings()).store.blocks
    const { file } = await newFile(24 * MiB)
    const { cid } = await client.share({ path: file, replicas: 0, chunkSize: 16 * KiB })
    // 1,500 block files to delete: the kill lands in the sweep
    const withFile = (await client.holdings()).store.blocks
    client.remove(cid).catch(() => {})
    await waitFor(async () => (await client.holdings()).store.blocks < withFile, { timeoutMs: 30_000, intervalMs: 5, message: () => 'the rm swept nothing' })
    await kill()
    await restartAndCheck()
    assert.ok(!(await client.holdings()).holdings.some(h => h.cid === cid), 'the holding stays removed')
    // what the cut-off sweep left is swept by the next gc, and nothing else
    await client.gc()
    assert.equal((await client.holdings()).store.blocks, blocksBefore)
  })

  it('during a gc sweeping the orphans a killed share left', async () => {
    await client.gc()
    const before = await client.holdings()
    const held = before.store.blocks
    // killed early in a long import: progress lines reach the client a
    // little late, and the import must still be far from done when the
    // kill lands (a share that finished is held, and leaves no orphans)
    const { file } = await newFile(64 * MiB)
    let killed = false
    await assert.rejects(client.share({
      path: file,
      replicas: 0,
      chunkSize: 16 * KiB,
      onProgress: p => {
        if (!killed && p.phase === 'import' && p.bytes >= 4 * MiB) { killed = true; daemon!.child.kill('SIGKILL') }
      }
    }))
    await kill()
    await start()
    const after = await client.holdings()
    const files = (list: typeof before.holdings): string[] => list.filter(h => h.reason !== 'replica').map(h => h.cid).sort()
    assert.deepEqual(files(after.holdings), files(before.holdings), 'the share was killed before it was held')
    const orphaned = after.store.blocks
    assert.ok(orphaned > held, 'the killed share left orphans')
    client.gc().catch(() => {})
    await waitFor(async () => (await client.holdings()).store.blocks < orphaned, { timeoutMs: 30_000, intervalMs: 5, message: () => 'the gc swept nothing' })
    await kill()
    await restartAndCheck()
    await client.gc()
    assert.equal((await client.holdings()).store.blocks, held)
  })
})
