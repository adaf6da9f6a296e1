/**
 * A `shoal swarm up` killed outright while its peers are still starting
 * (SIGKILL: no handler runs) leaves daemons behind; swarm.json lists them
 * from the moment each is spawned, so `shoal swarm down` stops every one,
 * and the next `swarm up` in the folder refuses while they live.
 */
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import fs from 'node:fs/promises'
import path from 'node:path'
import { readSwarmFile, type SwarmFile } from '../../src/swarm/swarm-file.ts'
import { waitFor } from '../../src/utils/wait.ts'
import { assertExit, BIN, isAlive, runCli, tempDir } from '../helpers/cli.ts'

describe('swarm up killed while its peers start', function () {
  this.timeout(60_000)
  let dir: string
  before(async () => { dir = await tempDir('shoal-swarm-killed-') })
  after(async () => {
    await runCli(['swarm', 'down', '--dir', dir])
    await fs.rm(dir, { recursive: true, force: true })
  })

  it('swarm down stops the daemons it had spawned', async () => {
    const up = spawn(process.execPath, [BIN, 'swarm', 'up', '--peers', '4', '--dir', dir], { stdio: 'ignore' })
    const exited = new Promise(resolve => { up.once('exit', resolve) })
    let file: SwarmFile | undefined
    await waitFor(async () => {
      file = await readSwarmFile(dir).catch(() => undefined)
      return (file?.starting?.length ?? 0) >= 2
    }, { timeoutMs: 30_000, intervalMs: 20, message: () => 'swarm up recorded no started process' })
    up.kill('SIGKILL')
    await exited
    const pids = file!.starting!.map(p => p.pid)
    assert.ok(pids.every(isAlive), 'the daemons outlive the killed swarm up')

    const again = await runCli(['swarm', 'up', '--peers', '2', '--dir', dir])
    assertExit(again, 1, again.stderr)
    assert.match(again.stderr, /a swarm is already running in .*swarm down/)

    const down = await runCli(['swarm', 'down', '--dir', dir])
    assertExit(down, 0, down.stderr)
    assert.ok(pids.every(pid => !isAlive(pid)), `still alive: ${pids.filter(isAlive).join(', ')}`)
    await assert.rejects(fs.access(path.join(dir, 'swarm.json')))
  })
})
