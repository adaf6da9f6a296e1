/**
 * Reliability in the lab (`swarm up --netns`, every peer its own host and
 * process): what a swarm keeps through a partition and its heal, and a
 * fetch through holder kills and a 10 s partition (churn: lab-churn.spec.ts;
 * the figures: bench/lab.ts, SHOAL_BENCH=lab). Every repair pass here is asked
 * for (the periodic one is an hour away), so progress is counted in
 * passes. Needs root, as the lab does (CI runs as root).
 */
import assert from 'node:assert/strict'
import fs from 'node:fs/promises'
import path from 'node:path'
import { peerIdFromString } from '@libp2p/peer-id'
import { ApiClient } from '../../src/api/client.ts'
import { swarmHeal, swarmLink, swarmPartition } from '../../src/swarm/lab/lab-swarm.ts'
import { labId, listNamespaces } from '../../src/swarm/lab/topology.ts'
import { swarmKillPeer, swarmStartPeer } from '../../src/swarm/peer-restart.ts'
import { swarmDown, swarmUp, type SwarmUpResult } from '../../src/swarm/process-swarm.ts'
import { waitFor } from '../../src/utils/wait.ts'
import { tempDir } from '../helpers/cli.ts'
import { labChecks, type LabChecks } from '../helpers/lab.ts'

const KiB = 1024
const MiB = 1024 * KiB
const PEERS = 10
const K = 3
/** Repair passes (every live peer at once) a file may need to be back on its true k. */
const MAX_PASSES = 4

describe('the lab: reliability through a partition, and through holder kills and a cut', function () {
  this.timeout(120_000)
  let dir: string
  let swarmDir: string
  let swarm: SwarmUpResult
  let clients: ApiClient[]
  let ids: ReturnType<typeof peerIdFromString>[]
  let newFile: LabChecks['newFile']
  let fetchBytes: LabChecks['fetchBytes']
  let onTrueK: LabChecks['onTrueK']
  let repairUntilTrueK: LabChecks['repairUntilTrueK']

  before(async function () {
    this.timeout(180_000)
    dir = await tempDir('shoal-lab-rel-')
    swarmDir = path.join(dir, 'swarm')
    swarm = await swarmUp({ peers: PEERS, dir: swarmDir, peersPerProcess: 1, replicas: K, lab: {}, config: { repair: { intervalSeconds: 3600, maxPushesPerRun: 4096 } } })
    clients = await Promise.all(swarm.peers.map(async p => ApiClient.fromRepo(p.repo)))
    ids = swarm.peers.map(p => peerIdFromString(p.peerId))
    ;({ newFile, fetchBytes, onTrueK, repairUntilTrueK } = labChecks({ dir, clients, ids, k: K, maxPasses: MAX_PASSES }))
  })
  after(async function () {
    this.timeout(60_000)
    if (swarmDir != null) await swarmDown(swarmDir).catch(() => {})
    if (swarmDir != null) assert.deepEqual([...await listNamespaces()].filter(n => n.startsWith(`shoal-${labId(swarmDir)}-`)), [], 'no namespace of the lab is left')
    if (dir != null) await fs.rm(dir, { recursive: true, force: true })
  })

  it('a file shared inside one group of a partition ends on its true k closest of the whole swarm after heal and repair, and the other group fetches it exactly', async () => {
    const sharer = 7
    await swarmPartition(swarmDir, '0-4|5-9')
    try {
      const { file, data } = await newFile(MiB + 5)
      // placement inside the partition waits on peers across the cut: once the
      // import is done (the holding is there) the share is cut off and the heal
      // comes, so repair, not the share, puts the blocks where they belong
      const before = new Set((await clients[sharer].holdings()).holdings.map(h => h.cid))
      const stop = new AbortController()
      const sharing = clients[sharer].share({ path: file, chunkSize: 64 * KiB, signal: stop.signal })
      sharing.catch(() => {})
      let cid = ''
      await waitFor(async () => {
        cid = (await clients[sharer].holdings()).holdings.find(h => h.reason === 'shared' && !before.has(h.cid))?.cid ?? ''
        return cid !== ''
      }, { timeoutMs: 30_000, intervalMs: 100, message: () => 'the share inside the partition did not import' })
      await Promise.race([sharing.catch(() => {}), new Promise(resolve => setTimeout(resolve, 3_000))])
      stop.abort()
      await swarmHeal(swarmDir)
      const atHeal = await onTrueK(sharer, cid)
      assert.ok(atHeal.ok < atHeal.blocks, `at the heal ${atHeal.ok} of ${atHeal.blocks} blocks are on their true closest: the partition left repair something to do`)
      const passes = await repairUntilTrueK([{ via: sharer, cid }])
      assert.ok(passes <= MAX_PASSES)
      assert.ok((await fetchBytes(1, cid)).equals(data), 'a peer of the other group fetches it byte for byte')
    } finally {
      await swarmHeal(swarmDir)
    }
  })

  it('a fetch survives two of its holders SIGKILLed and a 10 s partition that cuts it off, and its bytes are exact', async () => {
    const sharer = 2
    const fetcher = 9
    const { file, data } = await newFile(2 * MiB + 11)
    const { cid } = await clients[sharer].share({ path: file, chunkSize: 128 * KiB, replicas: K })
    // two holders of its blocks (replicas; the sharer, which holds them all, stays)
    const stat = await clients[sharer].stat(cid, K, { timeoutMs: 30_000 })
    const counts = new Map<string, number>()
    for (const b of stat.blocks) for (const h of b.holders) counts.set(h, (counts.get(h) ?? 0) + 1)
    const victims = [...counts].sort((a, b) => b[1] - a[1]).map(([id]) => swarm.peers.findIndex(p => p.peerId === id))
      .filter(i => i !== sharer && i !== fetcher).slice(0, 2)
    assert.equal(victims.length, 2)
    // the fetch takes seconds, not milliseconds: the faults land in the middle of it
    await swarmLink(swarmDir, fetcher, { downlink: 384 * KiB })
    const killed: number[] = []
    try {
      let bytes = 0
      const out = path.join(dir, 'survivor.bin')
      const fetching = clients[fetcher].fetch(cid, { path: out, timeoutSeconds: 110, onProgress: p => { bytes = p.bytes } })
      fetching.catch(() => {})
      await waitFor(() => bytes > 0, { timeoutMs: 30_000, intervalMs: 50, message: () => 'the fetch moved no byte' })
      for (const v of victims) { assert.equal((await swarmKillPeer(swarmDir, v)).killed, true); killed.push(v) }
      const atCut = bytes
      await swarmPartition(swarmDir, String(fetcher))
      await new Promise(resolve => setTimeout(resolve, 10_000))
      assert.ok(bytes < data.length, `the fetch was still running when the cut healed (${atCut} then ${bytes} of ${data.length} bytes)`)
      await swarmHeal(swarmDir)
      const result = await fetching
      assert.equal(result.size, data.length)
      assert.ok((await fs.readFile(out)).equals(data), 'every byte exact')
    } finally {
      await swarmHeal(swarmDir)
      await swarmLink(swarmDir, fetcher, { downlink: null })
      await Promise.all(killed.map(async v => swarmStartPeer(swarmDir, v)))
    }
  })
})
