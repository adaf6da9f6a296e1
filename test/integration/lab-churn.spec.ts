/**
 * Churn in the lab (`swarm up --netns`, every peer its own host and
 * process): 20 peers, 30% of them SIGKILLed and restarted (same repo, same
 * identity) per minute for 60 s while three fetches run, one after another,
 * across the churn. Every fetch is byte for byte the file, and once churn
 * ends and repair runs, every file is back on its true k closest of the
 * whole swarm. Needs root, as the lab does (CI runs as root). The same run
 * at 0, 10 and 30% with its times is bench/lab.ts (SHOAL_BENCH=lab).
 */
import assert from 'node:assert/strict'
import fs from 'node:fs/promises'
import path from 'node:path'
import { peerIdFromString } from '@libp2p/peer-id'
import { ApiClient } from '../../src/api/client.ts'
import { swarmChurn } from '../../src/swarm/lab/churn.ts'
import { swarmLink } from '../../src/swarm/lab/lab-swarm.ts'
import { labId, listNamespaces } from '../../src/swarm/lab/topology.ts'
import { swarmDown, swarmUp } from '../../src/swarm/process-swarm.ts'
import { tempDir } from '../helpers/cli.ts'
import { labChecks, type LabChecks } from '../helpers/lab.ts'

const KiB = 1024
const MiB = 1024 * KiB
const PEERS = 20
const K = 3
const CHURN_PER_MINUTE = 0.3
const CHURN_SECONDS = 60
/** Repair passes (every live peer at once) a file may need to be back on its true k. */
const MAX_PASSES = 4

describe('the lab: churn', function () {
  this.timeout(240_000)
  let dir: string
  let swarmDir: string
  let clients: ApiClient[]
  let checks: LabChecks

  before(async function () {
    this.timeout(180_000)
    dir = await tempDir('shoal-lab-churn-')
    swarmDir = path.join(dir, 'swarm')
    const swarm = await swarmUp({ peers: PEERS, dir: swarmDir, peersPerProcess: 1, replicas: K, lab: {}, config: { repair: { intervalSeconds: 3600, maxPushesPerRun: 4096 } } })
    clients = await Promise.all(swarm.peers.map(async p => ApiClient.fromRepo(p.repo)))
    checks = labChecks({ dir, clients, ids: swarm.peers.map(p => peerIdFromString(p.peerId)), k: K, maxPasses: MAX_PASSES })
  })
  after(async function () {
    this.timeout(60_000)
    if (swarmDir != null) await swarmDown(swarmDir).catch(() => {})
    if (swarmDir != null) assert.deepEqual([...await listNamespaces()].filter(n => n.startsWith(`shoal-${labId(swarmDir)}-`)), [], 'no namespace of the lab is left')
    if (dir != null) await fs.rm(dir, { recursive: true, force: true })
  })

  it('20 peers, 30% killed and restarted per minute for 60 s while three fetches run: every fetch exact, and after churn and repair every file on its true k', async () => {
    const fetchers = [0, 1, 2]
    const sharers = [10, 11, 12]
    const files: Array<{ cid: string, data: Buffer, via: number }> = []
    for (const s of sharers) {
      const { file, data } = await checks.newFile(4 * MiB + s)
      const { cid } = await clients[s].share({ path: file, chunkSize: 128 * KiB, replicas: K })
      files.push({ cid, data, via: s })
    }
    // each fetch lasts several seconds (a 1 MiB/s downlink), and they start
    // 20 s apart: together they span the churn
    for (const f of fetchers) await swarmLink(swarmDir, f, { downlink: MiB })
    try {
      const churn = swarmChurn({ dir: swarmDir, ratePerMinute: CHURN_PER_MINUTE, forSeconds: CHURN_SECONDS, seed: 7, downtimeSeconds: 5, spare: fetchers })
      churn.catch(() => {})
      const fetched = fetchers.map(async (f, i) => {
        await new Promise(resolve => setTimeout(resolve, 5_000 + i * 20_000))
        return checks.fetchBytes(f, files[i].cid, 100)
      })
      const outcomes = await Promise.allSettled(fetched)
      const result = await churn
      assert.ok(result.kills >= 3, `churn killed ${result.kills} peers`)
      assert.equal(result.starts, result.kills, 'every killed peer came back')
      outcomes.forEach((o, i) => {
        assert.equal(o.status, 'fulfilled', `fetch ${i}: ${o.status === 'rejected' ? (o.reason as Error).message : ''}`)
        assert.ok((o as PromiseFulfilledResult<Buffer>).value.equals(files[i].data), `fetch ${i} is byte for byte the file`)
      })
      await checks.repairUntilTrueK(files)
    } finally {
      for (const f of fetchers) await swarmLink(swarmDir, f, { downlink: null })
    }
  })
})
