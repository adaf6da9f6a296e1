/**
 * `shoal init --overlay`, `shoal swarm up --overlay`, `shoal lookup` and
 * `shoal routing` through the real CLI, against a swarm of 4 daemons on
 * each overlay: the lookup's responsible peers are the true k over every
 * peer of the swarm, in the overlay's order.
 */
import assert from 'node:assert/strict'
import fs from 'node:fs/promises'
import path from 'node:path'
import { peerIdFromString } from '@libp2p/peer-id'
import type { LookupResponse, RoutingResponse } from '../../src/api/routing-routes.ts'
import { clockwiseFrom, toPosition } from '../../src/routing/chord/ring.ts'
import type { OverlayName } from '../../src/routing/index.ts'
import { closestByXor } from '../../src/routing/kademlia/kad-distance.ts'
import { idOfKey, idOfPeer } from '../../src/routing/key-space.ts'
import type { SwarmFile } from '../../src/swarm/swarm-file.ts'
import { assertExit, runCli, tempDir } from '../helpers/cli.ts'

const CID = 'bafkreie3l3tbq3mqevjbsp6njkfjsfv6tzklf7qr6s3ge6ls4kjd4fgogu'

/** The k peers responsible for `key` among `peers`, in the overlay's order. */
function truth (overlay: OverlayName, key: Uint8Array, peers: string[], k: number): string[] {
  if (overlay === 'kademlia') return closestByXor(key, peers.map(p => peerIdFromString(p)), k).map(String)
  return clockwiseFrom(toPosition(idOfKey(key)), peers, p => toPosition(idOfPeer(peerIdFromString(p)))).slice(0, k)
}

describe('shoal init --overlay', function () {
  this.timeout(60_000)
  let dir: string
  before(async () => { dir = await tempDir('shoal-init-overlay-') })
  after(async () => { await fs.rm(dir, { recursive: true, force: true }) })

  it('writes the overlay to the config, and refuses to switch an existing repo', async () => {
    const repo = path.join(dir, 'repo')
    const init = await runCli(['--json', '--repo', repo, 'init', '--overlay', 'chord'])
    assertExit(init, 0, init.stderr)
    assert.equal((JSON.parse(init.stdout) as { overlay: string }).overlay, 'chord')
    assert.equal(JSON.parse(await fs.readFile(path.join(repo, 'config.json'), 'utf8')).overlay, 'chord')
    const again = await runCli(['--repo', repo, 'init', '--overlay', 'kademlia'])
    assertExit(again, 2)
    assert.equal(again.stderr.trim(), `shoal: repo ${repo} already runs the chord overlay; change "overlay" in its config.json to switch`)
    const bad = await runCli(['--repo', path.join(dir, 'other'), 'init', '--overlay', 'pastry'])
    assertExit(bad, 2)
    assert.match(bad.stderr, /--overlay must be kademlia or chord, got "pastry"/)
  })
})

for (const overlay of ['kademlia', 'chord'] as OverlayName[]) {
  describe(`shoal lookup and shoal routing on a ${overlay} swarm of daemons`, function () {
    this.timeout(180_000)
    let dir: string
    let swarmDir: string
    let peers: string[]
    const repo = (i: number): string => path.join(swarmDir, `peer-${i}`)
    before(async () => {
      dir = await tempDir('shoal-overlay-cli-')
      swarmDir = path.join(dir, 'swarm')
      const up = await runCli(['swarm', 'up', '--peers', '4', '--overlay', overlay, '--dir', swarmDir])
      assertExit(up, 0, up.stderr)
      assert.match(up.stdout, new RegExp(`^swarm of 4 peers routable in [\\d.]+ s, overlay ${overlay}\\n`))
      const file = JSON.parse(await fs.readFile(path.join(swarmDir, 'swarm.json'), 'utf8')) as SwarmFile
      assert.equal(file.overlay, overlay)
      peers = file.peers.map(p => p.peerId)
    })
    after(async () => {
      await runCli(['swarm', 'down', '--dir', swarmDir])
      await fs.rm(dir, { recursive: true, force: true })
    })

    it('lookup --json answers the path and the true k responsible peers, for a CID and for hex key bytes', async () => {
      const { CID: Cid } = await import('multiformats/cid')
      for (const [key, bytes, k] of [[CID, Cid.parse(CID).multihash.bytes, 3], ['00ff', Uint8Array.from([0, 255]), 2]] as const) {
        const run = await runCli(['--json', '--repo', repo(1), 'lookup', key, ...(k !== 3 ? ['--replicas', String(k)] : [])])
        assertExit(run, 0, run.stderr)
        const result = JSON.parse(run.stdout) as LookupResponse
        assert.equal(result.key, key)
        assert.equal(result.overlay, overlay)
        assert.deepEqual(result.responsible, truth(overlay, bytes, peers, k))
        assert.equal(result.messages, result.path.length)
        for (const hop of result.path) assert.ok(peers.includes(hop.peerId) && hop.hop >= 1 && hop.ok, JSON.stringify(hop))
      }
    })

    it('lookup prints the path hop by hop and the responsible peers with their distance to the key', async () => {
      const run = await runCli(['--repo', repo(2), 'lookup', CID])
      assertExit(run, 0, run.stderr)
      const lines = run.stdout.trim().split('\n')
      assert.match(lines[0], new RegExp(`^${overlay} lookup of ${CID}: \\d+ hops, \\d+ messages, \\d+ ms$`))
      const distance = overlay === 'chord' ? 'at key[+-]0\\.\\d{6}' : 'xor (0|2\\^\\d+)'
      for (const line of lines.filter(l => l.startsWith('  hop'))) assert.match(line, new RegExp(`^  hop +\\d+  12D3KooW\\w+ *  ${distance}  answered at \\d+ ms$`))
      const at = lines.indexOf(`responsible (3, ${overlay === 'chord' ? 'the key\'s successor first' : 'closest first'}):`)
      assert.ok(at > 0, run.stdout)
      const responsible = lines.slice(at + 1).map(l => /^ {2}\d\. (\S+) {2}/.exec(l)?.[1])
      assert.deepEqual(responsible, truth(overlay, (await import('multiformats/cid')).CID.parse(CID).multihash.bytes, peers, 3))
    })

    it('routing --json shows the overlay\'s state, and routing prints it', async () => {
      const run = await runCli(['--json', '--repo', repo(0), 'routing'])
      assertExit(run, 0, run.stderr)
      const routing = JSON.parse(run.stdout) as RoutingResponse
      assert.equal(routing.overlay, overlay)
      assert.equal(routing.self, peers[0])
      const others = peers.filter(p => p !== peers[0])
      if (routing.overlay === 'chord') {
        // the ring of 4 is correct (swarm up waited for it): every other peer, clockwise
        assert.deepEqual(routing.successors, truth('chord', peerIdFromString(peers[0]).toMultihash().bytes, peers, 4).slice(1))
        assert.equal(routing.predecessor, routing.successors.at(-1))
      } else {
        assert.deepEqual(routing.buckets.flatMap(b => b.peers).sort(), others.sort())
      }
      const text = await runCli(['--repo', repo(0), 'routing'])
      assertExit(text, 0, text.stderr)
      assert.match(text.stdout, overlay === 'chord' ? new RegExp(`^chord ring state of ${peers[0]}\\n  predecessor  12D3KooW`) : new RegExp(`^kademlia routing table of ${peers[0]}: 3 peers in \\d+ buckets\\n`))
    })

    it('lookup refuses a key that is neither a CID nor hex, and a --replicas out of range', async () => {
      const bad = await runCli(['--repo', repo(0), 'lookup', 'zz'])
      assertExit(bad, 2)
      assert.equal(bad.stderr.trim(), 'shoal: "zz" is neither a CID nor hex of key bytes (an even number of hex digits)')
      const many = await runCli(['--repo', repo(0), 'lookup', CID, '--replicas', '65'])
      assertExit(many, 2)
      assert.match(many.stderr, /--replicas must be an integer from 1 to 64, got "65"/)
    })
  })
}
