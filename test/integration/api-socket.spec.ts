/**
 * The control API's unix socket, `<repo>/api.sock`: what the CLI's client
 * uses, and the only place it sends the API token.
 */
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import fs from 'node:fs/promises'
import http from 'node:http'
import net from 'node:net'
import path from 'node:path'
import { ApiClient } from '../../src/api/client.ts'
import { ShoalDaemon } from '../../src/api/daemon.ts'
import { Repo } from '../../src/peer/repo.ts'
import { tempDir } from '../helpers/cli.ts'

describe('the control API on <repo>/api.sock', function () {
  this.timeout(60_000)
  let dir: string
  before(async () => { dir = await tempDir('shoal-api-socket-') })
  after(async () => { await fs.rm(dir, { recursive: true, force: true }) })

  it('is served with mode 0600, answers the client, replaces a socket a killed daemon left, and goes when the daemon stops', async () => {
    const repo = path.join(dir, 'repo')
    await Repo.init(repo, { listen: ['/ip4/127.0.0.1/tcp/0'], api: '127.0.0.1:0' })
    // what a SIGKILLed daemon leaves: a socket file nobody listens on
    const holder = spawn(process.execPath, ['-e', `require('node:net').createServer().listen(${JSON.stringify(path.join(repo, 'api.sock'))}, () => console.log('up'))`], { stdio: ['ignore', 'pipe', 'inherit'] })
    await new Promise(resolve => holder.stdout.once('data', resolve))
    holder.kill('SIGKILL')
    await new Promise(resolve => holder.once('exit', resolve))
    assert.ok((await fs.stat(path.join(repo, 'api.sock'))).isSocket(), 'a stale socket file is there')

    const daemon = await ShoalDaemon.open(repo)
    await daemon.start()
    try {
      const stat = await fs.stat(path.join(repo, 'api.sock'))
      assert.ok(stat.isSocket())
      assert.equal(stat.mode & 0o777, 0o600)
      const client = await ApiClient.fromRepo(repo)
      assert.equal(client.socketPath, path.join(repo, 'api.sock'))
      assert.equal((await client.id()).peerId, daemon.peer.peerId.toString())
    } finally {
      await daemon.stop()
    }
    await assert.rejects(fs.access(path.join(repo, 'api.sock')), 'the socket is removed on stop')
    await assert.rejects(ApiClient.fromRepo(repo), { name: 'DaemonNotRunningError' })
  })

  it('reaches a daemon whose repo path is too long for a socket address', async () => {
    const repo = path.join(dir, 'l'.repeat(60), 'o'.repeat(60), 'repo')
    assert.ok(Buffer.byteLength(path.join(repo, 'api.sock')) > 108)
    await Repo.init(repo, { listen: ['/ip4/127.0.0.1/tcp/0'], api: '127.0.0.1:0' })
    const daemon = await ShoalDaemon.open(repo)
    await daemon.start()
    try {
      assert.equal((await (await ApiClient.fromRepo(repo)).status()).peerId, daemon.peer.peerId.toString())
    } finally {
      await daemon.stop()
    }
  })

  it('the client never sends the token to the TCP address a crashed daemon left in <repo>/api', async () => {
    const repo = path.join(dir, 'crashed')
    await Repo.init(repo, { listen: ['/ip4/127.0.0.1/tcp/0'], api: '127.0.0.1:0' })
    // someone else now listens on the port the stale file names
    const heard: string[] = []
    const impostor = http.createServer((request, response) => {
      heard.push(request.headers.authorization ?? '')
      response.end('{}')
    })
    await new Promise<void>(resolve => impostor.listen(0, '127.0.0.1', resolve))
    try {
      const { port } = impostor.address() as net.AddressInfo
      await fs.writeFile(path.join(repo, 'api'), `127.0.0.1:${port}\n`)
      await assert.rejects(async () => (await ApiClient.fromRepo(repo)).status(), { name: 'DaemonNotRunningError' })
      assert.deepEqual(heard, [], 'nothing, and no token, went to that port')
    } finally {
      impostor.close()
    }
  })
})
