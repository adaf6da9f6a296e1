import assert from 'node:assert/strict'
import fs from 'node:fs/promises'
import net from 'node:net'
import path from 'node:path'
import { assertExit, isAlive, runCli, startDaemon, tempDir } from '../helpers/cli.ts'

/** Real `shoal` processes: exit codes, one-line errors, daemon lifecycle, swarms. */
describe('shoal CLI', function () {
  let dir: string
  before(async () => { dir = await tempDir() })
  after(async () => { await fs.rm(dir, { recursive: true, force: true }) })

  const oneLine = (stderr: string): string => {
    const lines = stderr.trim().split('\n')
    assert.equal(lines.length, 1, `expected one line, got:\n${stderr}`)
    return lines[0]
  }

  describe('bad usage and bad input', () => {
    it('an unknown command exits 2 and points at the usage', async () => {
      const r = await runCli(['frobnicate'])
      assertExit(r, 2)
      assert.match(r.stderr, /unknown command 'frobnicate'/)
      assert.match(r.stderr, /shoal --help/)
    })

    it('an unknown flag exits 2 and points at the usage', async () => {
      const r = await runCli(['init', '--frob'])
      assertExit(r, 2)
      assert.match(r.stderr, /unknown option '--frob'/)
    })

    it('a bad flag value exits 2', async () => {
      const r = await runCli(['swarm', 'up', '--peers', 'many', '--dir', path.join(dir, 'never')])
      assertExit(r, 2)
      assert.match(r.stderr, /--peers must be an integer/)
    })

    it('a bad multiaddr flag exits 2 with one line, before the daemon starts anything', async () => {
      const repo = path.join(dir, 'bad-multiaddr')
      await runCli(['--repo', repo, 'init'])
      let r = await runCli(['--repo', repo, 'daemon', '--listen', '/ip4/nope/tcp/1'])
      assertExit(r, 2)
      assert.equal(oneLine(r.stderr), 'shoal: --listen is not a valid multiaddr: "/ip4/nope/tcp/1"')
      r = await runCli(['--repo', repo, 'daemon', '--bootstrap', '/ip4/127.0.0.1/tcp/4001'])
      assertExit(r, 2)
      assert.equal(oneLine(r.stderr), 'shoal: --bootstrap must end in /p2p/<peer id>, got "/ip4/127.0.0.1/tcp/4001"')
      await assert.rejects(fs.access(path.join(repo, 'repo.lock')), { code: 'ENOENT' }, 'nothing was started')
    })

    it('a repo path that is a file exits 2 with one line', async () => {
      const file = path.join(dir, 'a-file')
      await fs.writeFile(file, 'x')
      const r = await runCli(['--repo', file, 'init'])
      assertExit(r, 2)
      assert.match(oneLine(r.stderr), /^shoal: repo path .*a-file is not a directory$/)
      assert.equal(await fs.readFile(file, 'utf8'), 'x', 'the file is untouched')
    })

    it('a corrupt config names the file and the field, exit 2', async () => {
      const repo = path.join(dir, 'corrupt')
      assertExit((await runCli(['--repo', repo, 'init'])), 0)
      const configFile = path.join(repo, 'config.json')
      const config = JSON.parse(await fs.readFile(configFile, 'utf8'))
      await fs.writeFile(configFile, JSON.stringify({ ...config, replicas: 'lots' }))
      let r = await runCli(['--repo', repo, 'daemon'])
      assertExit(r, 2)
      assert.equal(oneLine(r.stderr), `shoal: invalid config ${configFile}: field "replicas" must be an integer from 1 to 64, got "lots"`)
      await fs.writeFile(configFile, '{ "listen": [')
      r = await runCli(['--repo', repo, 'daemon'])
      assertExit(r, 2)
      assert.match(oneLine(r.stderr), new RegExp(`^shoal: invalid config ${configFile}: not valid JSON`))
    })

    it('a busy listen port or API port exits 1 with one line', async () => {
      const repo = path.join(dir, 'busy')
      await runCli(['--repo', repo, 'init'])
      const server = net.createServer()
      await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
      const port = (server.address() as net.AddressInfo).port
      try {
        let r = await runCli(['--repo', repo, 'daemon', '--listen', `/ip4/127.0.0.1/tcp/${port}`, '--api', '127.0.0.1:0'])
        assertExit(r, 1)
        assert.equal(oneLine(r.stderr), `shoal: listen address /ip4/127.0.0.1/tcp/${port} is already in use`)
        r = await runCli(['--repo', repo, 'daemon', '--listen', '/ip4/127.0.0.1/tcp/0', '--api', `127.0.0.1:${port}`])
        assertExit(r, 1)
        assert.equal(oneLine(r.stderr), `shoal: API address 127.0.0.1:${port} is already in use`)
        await assert.rejects(fs.access(path.join(repo, 'repo.lock')), { code: 'ENOENT' }, 'a failed start leaves no lock behind')
      } finally {
        server.close()
      }
    })

    it('commands that need the daemon say so when none runs, exit 1', async () => {
      const repo = path.join(dir, 'idle')
      await runCli(['--repo', repo, 'init'])
      for (const cmd of ['id', 'peers', 'status']) {
        const r = await runCli(['--repo', repo, cmd])
        assertExit(r, 1)
        assert.match(oneLine(r.stderr), /no Shoal daemon is running on repo/)
      }
    })
  })

  describe('the daemon', () => {
    it('serves, answers id/status, refuses a second daemon, and exits 0 on SIGTERM leaving nothing behind', async () => {
      const repo = path.join(dir, 'daemon')
      assertExit((await runCli(['--repo', repo, 'init'])), 0)
      const daemon = await startDaemon(['--repo', repo, '--listen', '/ip4/127.0.0.1/tcp/0', '--api', '127.0.0.1:0'])
      try {
        assert.match(daemon.output(), /daemon is ready/)
        const id = JSON.parse((await runCli(['--repo', repo, '--json', 'id'])).stdout) as { peerId: string, multiaddrs: string[] }
        assert.match(id.peerId, /^12D3KooW/)
        assert.match(id.multiaddrs[0], /^\/ip4\/127\.0\.0\.1\/tcp\/\d+\/p2p\//)
        const status = JSON.parse((await runCli(['--repo', repo, '--json', 'status'])).stdout) as { peerId: string }
        assert.equal(status.peerId, id.peerId)

        const second = await runCli(['--repo', repo, 'daemon', '--listen', '/ip4/127.0.0.1/tcp/0', '--api', '127.0.0.1:0'])
        assertExit(second, 1)
        assert.match(oneLine(second.stderr), new RegExp(`^shoal: repo ${repo} is in use by another Shoal daemon \\(pid ${daemon.child.pid}\\)$`))
      } finally {
        daemon.child.kill('SIGTERM')
      }
      assert.deepEqual(await daemon.exited, { code: 0, signal: null }, daemon.output())
      assert.match(daemon.output(), /daemon stopped/)
      await assert.rejects(fs.access(path.join(repo, 'api')), { code: 'ENOENT' })
      await assert.rejects(fs.access(path.join(repo, 'repo.lock')), { code: 'ENOENT' })
    })
  })

  describe('swarm up / status / down', () => {
    // a test that fails half way leaves no daemons behind
    const swarmDirs: string[] = []
    afterEach(async () => {
      for (const d of swarmDirs.splice(0)) {
        if (await fs.access(path.join(d, 'swarm.json')).then(() => true, () => false)) await runCli(['swarm', 'down', '--dir', d])
      }
    })

    it('brings up 5 routable daemons, reports them, and stops them all', async () => {
      const swarmDir = path.join(dir, 'swarm')
      swarmDirs.push(swarmDir)
      const up = await runCli(['--json', 'swarm', 'up', '--peers', '5', '--dir', swarmDir])
      assertExit(up, 0, up.stderr)
      const file = JSON.parse(await fs.readFile(path.join(swarmDir, 'swarm.json'), 'utf8')) as { peers: Array<{ index: number, peerId: string, repo: string, api: string, multiaddrs: string[], pid: number }> }
      assert.equal(file.peers.length, 5)
      file.peers.forEach((p, i) => {
        assert.equal(p.index, i)
        assert.equal(p.repo, path.join(swarmDir, `peer-${i}`))
        assert.match(p.api, /^127\.0\.0\.1:\d+$/)
        assert.ok(p.multiaddrs.length > 0)
        assert.ok(isAlive(p.pid))
      })
      assert.equal(new Set(file.peers.map(p => p.peerId)).size, 5)

      // a second up on a running swarm's folder is refused, and touches nothing
      const again = await runCli(['swarm', 'up', '--peers', '2', '--dir', swarmDir])
      assertExit(again, 1)
      assert.equal(oneLine(again.stderr), `shoal: a swarm is already running in ${swarmDir} (stop it with "shoal swarm down --dir ${swarmDir}")`)
      assert.deepEqual(JSON.parse(await fs.readFile(path.join(swarmDir, 'swarm.json'), 'utf8')), file, 'swarm.json unchanged')
      for (const p of file.peers) assert.ok(isAlive(p.pid), `pid ${p.pid} still running`)

      const status = JSON.parse((await runCli(['--json', 'swarm', 'status', '--dir', swarmDir])).stdout) as { alive: number, peers: Array<{ routingTableSize: number }> }
      assert.equal(status.alive, 5)
      assert.equal(status.peers.length, 5)
      for (const p of status.peers) assert.ok(p.routingTableSize >= 4, `routing table ${p.routingTableSize}`)

      // any command with --repo DIR/peer-<i> talks to that peer's daemon
      const peers = JSON.parse((await runCli(['--json', '--repo', file.peers[2].repo, 'peers'])).stdout) as { peers: Array<{ peerId: string }> }
      assert.ok(peers.peers.length >= 4)

      const down = await runCli(['--json', 'swarm', 'down', '--dir', swarmDir])
      assertExit(down, 0, down.stderr)
      assert.equal((JSON.parse(down.stdout) as { stopped: number }).stopped, 5)
      for (const p of file.peers) assert.equal(isAlive(p.pid), false, `pid ${p.pid} still running`)

      const after = await runCli(['swarm', 'status', '--dir', swarmDir])
      assertExit(after, 1)
      assert.match(oneLine(after.stderr), /no swarm in/)
    })

    it('gives up after --timeout with exit 1, stopping every process it started and writing no swarm.json', async () => {
      const swarmDir = path.join(dir, 'too-slow')
      swarmDirs.push(swarmDir)
      // 5 daemon processes cannot all start within a second
      const up = await runCli(['swarm', 'up', '--peers', '5', '--peers-per-process', '1', '--timeout', '1', '--dir', swarmDir])
      assertExit(up, 1)
      assert.match(oneLine(up.stderr), /^shoal: (daemon peer-\d did not start in time \(log: .*\)|swarm not routable in time: .*)$/)
      await assert.rejects(fs.access(path.join(swarmDir, 'swarm.json')), { code: 'ENOENT' })
      // no process is left running on the swarm's repos (a zombie has no command line)
      const left: string[] = []
      for (const pid of await fs.readdir('/proc')) {
        if (!/^\d+$/.test(pid)) continue
        const cmdline = await fs.readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '')
        if (cmdline.includes(swarmDir)) left.push(`${pid}: ${cmdline.replaceAll('\0', ' ')}`)
      }
      assert.deepEqual(left, [], 'processes of the failed swarm still running')
    })

    it('runs several peers per process on request, stops one of them alone, and stops all with down', async () => {
      const swarmDir = path.join(dir, 'hosted')
      swarmDirs.push(swarmDir)
      const up = await runCli(['--json', 'swarm', 'up', '--peers', '6', '--peers-per-process', '3', '--dir', swarmDir])
      assertExit(up, 0, up.stderr)
      type Entry = { index: number, peerId: string, repo: string, api: string, pid: number, peersInProcess: number }
      const file = JSON.parse(await fs.readFile(path.join(swarmDir, 'swarm.json'), 'utf8')) as { peers: Entry[] }
      assert.equal(file.peers.length, 6)
      assert.equal(new Set(file.peers.map(p => p.pid)).size, 2, 'two host processes')
      assert.equal(new Set(file.peers.map(p => p.peerId)).size, 6)
      assert.equal(new Set(file.peers.map(p => p.api)).size, 6, 'an API per peer')
      for (const p of file.peers) assert.equal(p.peersInProcess, 3)
      // every peer answers on its own repo
      const id5 = JSON.parse((await runCli(['--json', '--repo', file.peers[5].repo, 'id'])).stdout) as { peerId: string }
      assert.equal(id5.peerId, file.peers[5].peerId)

      const stop = await runCli(['--json', 'swarm', 'stop', '--peer', '4', '--dir', swarmDir])
      assertExit(stop, 0, stop.stderr)
      assert.equal((JSON.parse(stop.stdout) as { stopped: boolean }).stopped, true)
      assert.ok(isAlive(file.peers[4].pid), 'the host keeps running its other peers')
      const gone = await runCli(['--repo', file.peers[4].repo, 'status'])
      assertExit(gone, 1)
      assert.match(oneLine(gone.stderr), /no Shoal daemon is running on repo/)
      // a peer down: status still reports every peer, and exits 1
      const statusRun = await runCli(['--json', 'swarm', 'status', '--dir', swarmDir])
      assertExit(statusRun, 1)
      const status = JSON.parse(statusRun.stdout) as { alive: number, peers: Array<{ index: number, alive: boolean }> }
      assert.equal(status.alive, 5)
      assert.deepEqual(status.peers.filter(p => !p.alive).map(p => p.index), [4])
      assertExit((await runCli(['--repo', file.peers[3].repo, 'status'])), 0, 'its host neighbour still serves')

      const down = await runCli(['--json', 'swarm', 'down', '--dir', swarmDir])
      assertExit(down, 0, down.stderr)
      assert.equal((JSON.parse(down.stdout) as { stopped: number }).stopped, 6)
      for (const p of file.peers) assert.equal(isAlive(p.pid), false, `pid ${p.pid} still running`)
    })
  })
})
