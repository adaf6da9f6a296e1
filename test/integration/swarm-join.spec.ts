/**
 * `shoal swarm up --join bootstrap` on each overlay: HOSTED_PEERS peers
 * (as many as CI affords) in 2 swarm hosts, every peer but the seeds
 * knowing only the first 3 peers started, join through the overlay alone;
 * swarm.json records it, and a lookup from every peer finds the true k.
 * Kademlia: every peer's table holds contacts in each of its far buckets
 * (the join's bucket refresh, src/routing/kademlia/bucket-refresh.ts).
 */
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import fs from 'node:fs/promises'
import path from 'node:path'
import { peerIdFromString } from '@libp2p/peer-id'
import { ApiClient } from '../../src/api/client.ts'
import { clockwiseFrom, toPosition } from '../../src/routing/chord/ring.ts'
import type { OverlayName } from '../../src/routing/index.ts'
import { REFRESH_BELOW } from '../../src/routing/kademlia/bucket-refresh.ts'
import { closestByXor, commonPrefixLength } from '../../src/routing/kademlia/kad-distance.ts'
import { idOfKey, idOfPeer } from '../../src/routing/key-space.ts'
import type { SwarmFile } from '../../src/swarm/swarm-file.ts'
import { mapConcurrent } from '../../src/utils/wait.ts'
import { assertExit, runCli, tempDir } from '../helpers/cli.ts'

/** The swarm in hosts: 2 processes of HOSTED_PEERS / 2 peers. */
const HOSTED_PEERS = 100
const K = 3

/**
 * Buckets farther than the peer's nearest known neighbour holding fewer
 * contacts than the join's refresh leaves (REFRESH_BELOW, or all the
 * region has): a lookup into such a region through this peer starts blind.
 */
function thinBuckets (self: string, known: string[], all: string[]): string[] {
  const id = idOfPeer(peerIdFromString(self))
  const prefix = (p: string): number => commonPrefixLength(id, idOfPeer(peerIdFromString(p)))
  const nearest = Math.max(...known.map(prefix))
  const thin: string[] = []
  for (let bucket = 0; bucket < nearest; bucket++) {
    const region = all.filter(p => p !== self && prefix(p) === bucket).length
    const held = known.filter(p => prefix(p) === bucket).length
    if (held < Math.min(REFRESH_BELOW, region)) thin.push(`bucket ${bucket}: ${held} of ${region}`)
  }
  return thin
}

function truth (overlay: OverlayName, key: Uint8Array, peers: string[]): string[] {
  if (overlay === 'kademlia') return closestByXor(key, peers.map(p => peerIdFromString(p)), K).map(String)
  return clockwiseFrom(toPosition(idOfKey(key)), peers, p => toPosition(idOfPeer(peerIdFromString(p)))).slice(0, K)
}

for (const overlay of ['kademlia', 'chord'] as OverlayName[]) {
  describe(`swarm up --join bootstrap of ${HOSTED_PEERS} peers in hosts on ${overlay}`, function () {
    this.timeout(240_000)
    let dir: string
    before(async () => { dir = await tempDir('shoal-swarm-join-hosts-') })
    after(async () => {
      await runCli(['swarm', 'down', '--dir', dir])
      await fs.rm(dir, { recursive: true, force: true })
    })

    it(`joins ${HOSTED_PEERS} peers in 2 hosts through 3 seed peers, and a lookup from every peer finds the true ${K}`, async () => {
      const perProcess = HOSTED_PEERS / 2
      // swarm up's own timeout ends it (stopping its hosts) before the test's kills it
      const up = await runCli(['swarm', 'up', '--peers', String(HOSTED_PEERS), '--peers-per-process', String(perProcess), '--overlay', overlay, '--join', 'bootstrap', '--timeout', '150', '--dir', dir], { timeoutMs: 200_000 })
      assertExit(up, 0, up.stderr)
      assert.match(up.stdout, new RegExp(`^swarm of ${HOSTED_PEERS} peers routable in [\\d.]+ s, overlay ${overlay}, joined through seed peers 0, 1, 2 \\(2 processes of up to ${perProcess} peers\\)\\n`))
      const file = JSON.parse(await fs.readFile(path.join(dir, 'swarm.json'), 'utf8')) as SwarmFile
      assert.equal(file.join, 'bootstrap')
      assert.deepEqual(file.seeds, [0, 1, 2])
      const ids = file.peers.map(p => p.peerId)
      assert.equal(new Set(ids).size, HOSTED_PEERS)
      const wrong: string[] = []
      await mapConcurrent(file.peers, 8, async (peer, i) => {
        const key = randomBytes(34)
        const result = await (await ApiClient.fromRepo(peer.repo)).lookup(Buffer.from(key).toString('hex'), { replicas: K, timeoutMs: 20_000 })
        const want = truth(overlay, key, ids)
        if (result.responsible.join() !== want.join()) wrong.push(`peer ${i}: ${result.responsible.join()} instead of ${want.join()}`)
      })
      assert.deepEqual(wrong, [])
      if (overlay === 'kademlia') {
        const thin: string[] = []
        await mapConcurrent(file.peers, 8, async (peer, i) => {
          const routing = await (await ApiClient.fromRepo(peer.repo)).routing()
          if (routing.overlay !== 'kademlia') throw new Error(`peer ${i} runs ${routing.overlay}`)
          const buckets = thinBuckets(peer.peerId, routing.buckets.flatMap(b => b.peers), ids)
          if (buckets.length > 0) thin.push(`peer ${i}: ${buckets.join(', ')}`)
        })
        assert.deepEqual(thin, [])
      }
    })
  })
}
