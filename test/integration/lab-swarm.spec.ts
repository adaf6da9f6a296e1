/**
 * The lab (`shoal swarm up --netns`): peers on separate hosts (network
 * namespaces) joined by a bridge, with real rate caps, partitions, kills and
 * restarts, and a `down` that leaves nothing behind. Needs root (CI runs
 * as root): without it `swarm up` fails and so does this suite, saying why.
 */
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { execFileSync } from 'node:child_process'
import fs from 'node:fs/promises'
import path from 'node:path'
import { ApiClient } from '../../src/api/client.ts'
import type { FetchResult } from '../../src/exchange/fetcher.ts'
import { labId, listNamespaces, pidsInNamespace } from '../../src/swarm/lab/topology.ts'
import type { SwarmFile } from '../../src/swarm/swarm-file.ts'
import { isAlive, runCli, tempDir } from '../helpers/cli.ts'

const MiB = 1024 * 1024
const PEERS = 4

describe('the lab: a swarm of separate hosts with real links (swarm up --netns)', function () {
  this.timeout(120_000)
  let dir: string
  let swarmDir: string
  let swarm: SwarmFile
  const repo = (i: number): string => path.join(swarmDir, `peer-${i}`)
  const ourNamespaces = async (): Promise<string[]> => [...await listNamespaces()].filter(n => n.startsWith(`shoal-${labId(swarmDir)}-`))
  const cli = async (...args: string[]): Promise<string> => {
    const r = await runCli(args)
    assert.equal(r.code, 0, `shoal ${args.join(' ')}: ${r.stderr}`)
    return r.stdout
  }
  const share = async (peer: number, bytes: Buffer, ...flags: string[]): Promise<string> => {
    const file = path.join(dir, `${randomBytes(4).toString('hex')}.bin`)
    await fs.writeFile(file, bytes)
    return (JSON.parse(await cli('--json', '--repo', repo(peer), 'share', file, ...flags)) as { cid: string }).cid
  }

  before(async () => {
    dir = await tempDir('shoal-lab-')
    swarmDir = path.join(dir, 'swarm')
    const up = await runCli(['--json', 'swarm', 'up', '--netns', '--peers', String(PEERS), '--dir', swarmDir])
    assert.equal(up.code, 0, `the lab could not start: ${up.stderr.trim()}`)
    swarm = JSON.parse(up.stdout) as SwarmFile
  })
  after(async () => {
    await runCli(['swarm', 'down', '--dir', swarmDir])
    assert.deepEqual(await ourNamespaces(), [], 'no namespace of the lab is left')
    await fs.rm(dir, { recursive: true, force: true })
  })

  it('puts every peer in its own namespace with its own lab address, and nothing of it in the machine\'s own network', async () => {
    const lab = swarm.lab!
    assert.equal(lab.hosts.length, PEERS)
    assert.deepEqual(swarm.peers.map(p => p.address), ['10.77.0.1', '10.77.0.2', '10.77.0.3', '10.77.0.4'])
    for (const p of swarm.peers) {
      assert.deepEqual(p.multiaddrs, [`/ip4/${p.address!}/tcp/4001/p2p/${p.peerId}`])
      assert.deepEqual(pidsInNamespace(lab.hosts[p.host!].namespace), [p.pid], `peer ${p.index} runs alone in its host`)
      // no route out of the lab: only the lab's own subnet is reachable
      const routes = execFileSync('ip', ['-n', lab.hosts[p.host!].namespace, 'route', 'show'], { encoding: 'utf8' }).trim().split('\n')
      assert.deepEqual(routes.map(r => r.split(' ')[0]), ['10.77.0.0/16'])
    }
    const rootAddresses = execFileSync('ip', ['-o', 'addr', 'show'], { encoding: 'utf8' })
    assert.doesNotMatch(rootAddresses, /10\.77\./, 'no lab address in the machine\'s own namespace')
    // the CLI reaches a peer in its namespace through <repo>/api.sock
    const id = JSON.parse(await cli('--json', '--repo', repo(2), 'id')) as { peerId: string }
    assert.equal(id.peerId, swarm.peers[2].peerId)
  })

  it('shares and fetches a file exactly across hosts, and an uplink capped at C carries a single-holder fetch at no more than 1.1 C', async () => {
    const data = randomBytes(2 * MiB + 12_345)
    const cid = await share(0, data, '--chunk-size', '256KiB')
    const out = path.join(dir, 'placed.out')
    await cli('--repo', repo(3), 'fetch', cid, '-o', out)
    assert.ok((await fs.readFile(out)).equals(data), 'the fetched file is byte for byte the shared one')

    const C = 2 * MiB
    await cli('swarm', 'link', '--peer', '1', '--uplink', '2MiB', '--dir', swarmDir)
    const only = randomBytes(4 * MiB)
    const onlyCid = await share(1, only, '--replicas', '0')
    const capped = path.join(dir, 'capped.out')
    const result = JSON.parse(await cli('--json', '--repo', repo(2), 'fetch', onlyCid, '-o', capped)) as FetchResult
    assert.ok((await fs.readFile(capped)).equals(only))
    assert.deepEqual(Object.keys(result.peers), [swarm.peers[1].peerId], 'peer 1 was the only holder')
    // from the first request to the last block: the time the bytes were on the link
    const transferMs = (result.timings.lastBlockMs ?? result.seconds * 1000) - (result.timings.firstSourceMs ?? 0)
    const rate = only.length / (transferMs / 1000)
    assert.ok(rate <= 1.1 * C, `${(rate / MiB).toFixed(2)} MiB/s through an uplink capped at 2 MiB/s`)
    assert.ok(rate >= 0.5 * C, `${(rate / MiB).toFixed(2)} MiB/s: the cap should still let most of 2 MiB/s through`)
    await cli('swarm', 'link', '--peer', '1', '--uplink', 'off', '--dir', swarmDir)
  })

  it('a partition stops all traffic between groups (a fetch across it does not move a byte), not within them, and heal lets the fetch complete', async () => {
    const data = randomBytes(3 * MiB)
    const cid = await share(0, data, '--replicas', '0')
    await cli('swarm', 'partition', '--groups', '0-1|2-3', '--dir', swarmDir)
    const file = JSON.parse(await fs.readFile(path.join(swarmDir, 'swarm.json'), 'utf8')) as SwarmFile
    assert.deepEqual(file.lab!.partition, [[0, 1], [2, 3]])

    let bytes = 0
    const client = await ApiClient.fromRepo(repo(3))
    const across = client.fetch(cid, { path: path.join(dir, 'across.out'), timeoutSeconds: 60, onProgress: p => { bytes = p.bytes } })
    let settled = false
    void across.then(() => { settled = true }, () => { settled = true })

    // within a group everything flows meanwhile
    const within = path.join(dir, 'within.out')
    await cli('--repo', repo(1), 'fetch', cid, '-o', within, '--timeout', '20')
    assert.ok((await fs.readFile(within)).equals(data))
    await new Promise(resolve => setTimeout(resolve, 3000))
    assert.equal(bytes, 0, 'no byte crossed the partition')
    assert.equal(settled, false, 'the fetch across is still waiting')

    await cli('swarm', 'heal', '--dir', swarmDir)
    const result = await across
    assert.equal(result.size, data.length)
    assert.ok((await fs.readFile(path.join(dir, 'across.out'))).equals(data), 'after heal the fetch completes exactly')
    const healed = JSON.parse(await fs.readFile(path.join(swarmDir, 'swarm.json'), 'utf8')) as SwarmFile
    assert.equal(healed.lab!.partition, null)
  })

  it('a killed peer comes back with swarm start: same peer ID, same address, its blocks still there', async () => {
    const data = randomBytes(MiB + 7)
    const cid = await share(2, data, '--replicas', '0')
    const before = swarm.peers[2]
    const killed = JSON.parse(await cli('--json', 'swarm', 'kill', '--peer', '2', '--dir', swarmDir)) as { killed: boolean, pid: number }
    assert.equal(killed.killed, true)
    assert.equal(isAlive(before.pid), false, 'SIGKILL took the process down')
    const gone = await runCli(['--repo', repo(2), 'id'])
    assert.equal(gone.code, 1)
    assert.match(gone.stderr, /no Shoal daemon is running/)

    const started = JSON.parse(await cli('--json', 'swarm', 'start', '--peer', '2', '--dir', swarmDir)) as { peerId: string, pid: number, multiaddrs: string[] }
    assert.equal(started.peerId, before.peerId)
    assert.deepEqual(started.multiaddrs, before.multiaddrs, 'same address and port')
    assert.notEqual(started.pid, before.pid)
    const held = JSON.parse(await cli('--json', '--repo', repo(2), 'ls')) as { holdings: Array<{ cid: string }> }
    assert.ok(held.holdings.some(h => h.cid === cid), 'what it held before the kill is still held')
    const out = path.join(dir, 'after-restart.out')
    await cli('--repo', repo(3), 'fetch', cid, '-o', out, '--timeout', '30')
    assert.ok((await fs.readFile(out)).equals(data), 'and it serves it again')
  })

  it('churn kills and restarts random peers on a seeded schedule, logs each event, and ends with every peer back', async () => {
    const out = await cli('--json', 'swarm', 'churn', '--rate', '1500%', '--for', '4', '--seed', '1', '--downtime', '1', '--spare', '0,1', '--dir', swarmDir)
    const result = JSON.parse(out) as { kills: number, starts: number, failedStarts: number, events: Array<{ event: string, peer?: number }>, log: string }
    // seed 1 draws kills at about 2.0 s and 3.5 s of the 4
    assert.equal(result.kills, 2)
    assert.equal(result.starts, 2)
    assert.equal(result.failedStarts, 0)
    const killed = result.events.filter(e => e.event === 'kill').map(e => e.peer!)
    assert.ok(killed.every(p => p === 2 || p === 3), `spared peers 0 and 1 were never killed: ${killed.join(', ')}`)
    const logged = (await fs.readFile(result.log, 'utf8')).trim().split('\n').slice(1).map(line => JSON.parse(line) as { event: string })
    assert.deepEqual(logged.map(e => e.event), result.events.map(e => e.event))
    const status = JSON.parse(await cli('--json', 'swarm', 'status', '--dir', swarmDir)) as { alive: number, peers: Array<{ peerId: string }> }
    assert.equal(status.alive, PEERS)
    assert.deepEqual(status.peers.map(p => p.peerId), swarm.peers.map(p => p.peerId))
  })

  it('refuses what it cannot do with exit 2 and one line', async () => {
    const bad = await runCli(['swarm', 'partition', '--groups', '0-1|7', '--dir', swarmDir])
    assert.equal(bad.code, 2)
    assert.match(bad.stderr.trim(), /^shoal: --groups: peer 7 does not exist \(the swarm has peers 0 to 3\)$/)
    const noNetns = await runCli(['swarm', 'up', '--peers', '2', '--uplink', '1MiB', '--dir', path.join(dir, 'other')])
    assert.equal(noNetns.code, 2)
    assert.match(noNetns.stderr, /add --netns/)
    // without the capabilities (root with an empty bounding set: still the owner of the
    // checkout, wherever it was cloned, but unable to make namespaces): nothing is made,
    // one line says what is missing
    const nobodyDir = path.join(dir, 'nobody')
    let out: { code: number, stderr: string }
    try {
      execFileSync('setpriv', ['--bounding-set=-all', '--inh-caps=-all',
        process.execPath, path.resolve('bin/shoal.mjs'), 'swarm', 'up', '--netns', '--peers', '2', '--dir', nobodyDir], { encoding: 'utf8', stdio: 'pipe' })
      out = { code: 0, stderr: '' }
    } catch (err) {
      out = { code: (err as { status: number }).status, stderr: (err as { stderr: string }).stderr }
    }
    assert.equal(out.code, 2, out.stderr)
    assert.match(out.stderr.trim(), /^shoal: swarm up --netns needs CAP_NET_ADMIN and CAP_SYS_ADMIN .* lacks CAP_NET_ADMIN and CAP_SYS_ADMIN: run it as root/)
    await assert.rejects(fs.access(nobodyDir), 'nothing was made')
  })

  it('down removes every namespace, link and bridge after every process was SIGKILLed and a first down died midway; a second down is harmless', async () => {
    const file = JSON.parse(await fs.readFile(path.join(swarmDir, 'swarm.json'), 'utf8')) as SwarmFile
    const names = await ourNamespaces()
    assert.equal(names.length, PEERS + 1, 'a namespace per host and the switch')
    const pids = names.flatMap(pidsInNamespace)
    assert.equal(pids.length, PEERS)
    for (const pid of pids) process.kill(pid, 'SIGKILL')
    // what a down killed midway leaves: some namespaces gone, swarm.json still there
    execFileSync('ip', ['netns', 'del', file.lab!.switchNamespace])
    execFileSync('ip', ['netns', 'del', file.lab!.hosts[0].namespace])

    const down = await runCli(['--json', 'swarm', 'down', '--dir', swarmDir])
    assert.equal(down.code, 0, down.stderr)
    assert.equal((JSON.parse(down.stdout) as { lab: { namespaces: number } }).lab.namespaces, PEERS - 1)
    assert.deepEqual(await ourNamespaces(), [])
    for (const pid of pids) assert.equal(isAlive(pid), false)
    await assert.rejects(fs.access(path.join(swarmDir, 'swarm.json')))
    await assert.rejects(fs.access(path.join(swarmDir, 'lab')), 'the link files go too')

    const again = await runCli(['swarm', 'down', '--dir', swarmDir])
    assert.equal(again.code, 1)
    assert.match(again.stderr.trim(), /^shoal: no swarm in /)
    assert.deepEqual(await ourNamespaces(), [])
  })
})

describe('the lab with several peers per process: a host per process, an address per peer', function () {
  this.timeout(120_000)
  let dir: string
  let swarmDir: string

  before(async () => {
    dir = await tempDir('shoal-lab-hosts-')
    swarmDir = path.join(dir, 'swarm')
  })
  after(async () => {
    await runCli(['swarm', 'down', '--dir', swarmDir])
    assert.deepEqual([...await listNamespaces()].filter(n => n.startsWith(`shoal-${labId(swarmDir)}-`)), [])
    await fs.rm(dir, { recursive: true, force: true })
  })

  it('runs each host process in its own namespace, fetches across hosts, and refuses to kill one peer of a shared process', async () => {
    const up = await runCli(['--json', 'swarm', 'up', '--netns', '--peers', '4', '--peers-per-process', '2', '--dir', swarmDir])
    assert.equal(up.code, 0, `the lab could not start: ${up.stderr.trim()}`)
    const swarm = JSON.parse(up.stdout) as SwarmFile
    assert.equal(swarm.lab!.hosts.length, 2)
    assert.deepEqual(swarm.lab!.hosts.map(h => h.peers), [[0, 1], [2, 3]])
    assert.equal(new Set(swarm.peers.map(p => p.address)).size, 4, 'an address per peer')
    for (const h of swarm.lab!.hosts) assert.deepEqual(pidsInNamespace(h.namespace), [swarm.peers[h.peers[0]].pid])

    const data = randomBytes(MiB + 1)
    const file = path.join(dir, 'data.bin')
    await fs.writeFile(file, data)
    const shared = await runCli(['--json', '--repo', path.join(swarmDir, 'peer-0'), 'share', file, '--replicas', '0'])
    assert.equal(shared.code, 0, shared.stderr)
    const out = path.join(dir, 'out.bin')
    const fetched = await runCli(['--repo', path.join(swarmDir, 'peer-3'), 'fetch', (JSON.parse(shared.stdout) as { cid: string }).cid, '-o', out])
    assert.equal(fetched.code, 0, fetched.stderr)
    assert.ok((await fs.readFile(out)).equals(data))

    const kill = await runCli(['swarm', 'kill', '--peer', '1', '--dir', swarmDir])
    assert.equal(kill.code, 2)
    assert.match(kill.stderr, /shares its process with 1 other peer/)
    const split = await runCli(['swarm', 'partition', '--groups', '0|1-3', '--dir', swarmDir])
    assert.equal(split.code, 2)
    assert.match(split.stderr, /share one host process/)
  })
})
