/**
 * share / stat / fetch from the command line across a swarm of daemon
 * processes, on each overlay (`swarm up --overlay`): the file shared on one
 * peer is placed on its true 3 (the 3 closest by XOR on Kademlia, the
 * key's successor and the 2 after it on Chord), `stat` names them and
 * finds the holders by asking them, and another peer fetches the exact
 * bytes after the sharer is stopped.
 */
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import fs from 'node:fs/promises'
import path from 'node:path'
import { CID } from 'multiformats/cid'
import { OVERLAY_NAMES } from '../../src/routing/index.ts'
import type { SwarmFile } from '../../src/swarm/swarm-file.ts'
import { assertExit, runCli, tempDir } from '../helpers/cli.ts'
import { trueResponsibleOf } from '../helpers/swarm.ts'

for (const overlay of OVERLAY_NAMES) {
  describe(`share, stat and fetch across a swarm of daemons on ${overlay}`, function () {
    this.timeout(180_000)
    let dir: string
    let swarmDir: string
    before(async () => {
      dir = await tempDir('shoal-swarm-content-')
      swarmDir = path.join(dir, 'swarm')
      const up = await runCli(['swarm', 'up', '--peers', '6', '--overlay', overlay, '--dir', swarmDir])
      assertExit(up, 0, up.stderr)
    })
    after(async () => {
      await runCli(['swarm', 'down', '--dir', swarmDir])
      await fs.rm(dir, { recursive: true, force: true })
    })

    it('places the blocks, reports the holders, and fetches the exact bytes from them after the sharer left', async () => {
      const repo = (i: number): string => path.join(swarmDir, `peer-${i}`)
      const data = randomBytes(3 * 1024 * 1024 + 99)
      const file = path.join(dir, 'data.bin')
      await fs.writeFile(file, data)
      const shared = await runCli(['--json', '--repo', repo(0), 'share', file, '--chunk-size', '256KiB'])
      assertExit(shared, 0, shared.stderr)
      const result = JSON.parse(shared.stdout) as { cid: string, blocks: number, replicas: { target: number, min: number, complete: boolean } }
      assert.deepEqual(result.replicas, { target: 3, min: 3, complete: true })

      const stat = await runCli(['--json', '--repo', repo(0), 'stat', result.cid])
      assertExit(stat, 0, stat.stderr)
      const s = JSON.parse(stat.stdout) as { cid: string, size: number, blocks: Array<{ cid: string, size: number, holders: string[], closest: string[] }> }
      assert.equal(s.size, data.length)
      assert.equal(s.blocks.length, result.blocks)
      const ids = (JSON.parse(await fs.readFile(path.join(swarmDir, 'swarm.json'), 'utf8')) as SwarmFile).peers.map(p => p.peerId)
      for (const b of s.blocks) {
        assert.deepEqual(b.closest, trueResponsibleOf(overlay, CID.parse(b.cid).multihash.bytes, ids, 3), `block ${b.cid}: its true 3 are named, in order`)
        for (const id of b.closest) assert.ok(b.holders.includes(id), `block ${b.cid}: responsible peer ${id} holds it`)
      }

      assertExit((await runCli(['swarm', 'stop', '--peer', '0', '--dir', swarmDir])), 0)
      const out = path.join(dir, 'fetched.bin')
      const fetched = await runCli(['--json', '--repo', repo(4), 'fetch', result.cid, '-o', out, '--timeout', '60'])
      assertExit(fetched, 0, fetched.stderr)
      assert.ok((await fs.readFile(out)).equals(data), 'the fetched file is byte for byte the shared one')
      const f = JSON.parse(fetched.stdout) as { size: number, peers: Record<string, number> }
      assert.equal(f.size, data.length)
      assert.ok(Object.keys(f.peers).length >= 1)

      const missing = await runCli(['--repo', repo(4), 'fetch', 'bafkreie3l3tbq3mqevjbsp6njkfjsfv6tzklf7qr6s3ge6ls4kjd4fgogu', '-o', path.join(dir, 'never'), '--timeout', '5'])
      assertExit(missing, 1)
      assert.equal(missing.stderr.trim(), 'shoal: no holder of bafkreie3l3tbq3mqevjbsp6njkfjsfv6tzklf7qr6s3ge6ls4kjd4fgogu answered within 5 s')
      await assert.rejects(fs.access(path.join(dir, 'never')), { code: 'ENOENT' })
    })
  })
}
