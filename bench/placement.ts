/**
 * Placement benchmark, peers as separate processes: a 20-daemon swarm
 * (`swarm up --peers-per-process 1`), peer 0 shares a 64 MiB and a 256 MiB
 * random file with k=3. Reports placement throughput (MiB/s of file, and of
 * bytes moved), the time spent finding closest peers versus moving bytes,
 * and how long repair takes to restore 3 copies on the closest live peers
 * after the holder of the most blocks is killed (SIGKILL): the swarm keeps
 * the default repair interval (300 s, so no pass disturbs the placement
 * runs) and the bench starts one pass on every live peer right after the
 * kill (`POST /api/v1/repair`), as the periodic pass would; what it adds
 * in the field is the wait for that pass, up to the interval.
 */
import { randomBytes } from 'node:crypto'
import fs from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { ApiClient } from '../src/api/client.ts'
import { swarmDown, swarmUp } from '../src/swarm/process-swarm.ts'
import { round } from './stats.ts'

const MiB = 1024 * 1024
const PEERS = 20
const K = 3

export interface PlacementRun {
  fileMiB: number
  blocks: number
  importSeconds: number
  placeSeconds: number
  planSeconds: number
  pushSeconds: number
  lookups: number
  movedMiB: number
  fileMiBs: number
  movedMiBs: number
  complete: boolean
}

export interface PlacementBenchResult {
  peers: number
  replicas: number
  runs: PlacementRun[]
  repair: { killedHeldBlocks: number, seconds: number | null, pushed: number, blocks: number }
}

export async function benchPlacement (log: (s: string) => void): Promise<PlacementBenchResult> {
  const sizes = (process.env.SHOAL_BENCH_PLACE_MIB ?? '64,256').split(',').map(Number).filter(n => n > 0)
  const work = await fs.mkdtemp(path.join(os.tmpdir(), 'shoal-bench-place-'))
  const dir = path.join(work, 'swarm')
  try {
    const swarm = await swarmUp({ peers: PEERS, dir, peersPerProcess: 1, replicas: K })
    log(`  ${PEERS} daemons routable in ${(swarm.routableMs / 1000).toFixed(1)} s`)
    const sharer = await ApiClient.fromRepo(swarm.peers[0].repo)
    const runs: PlacementRun[] = []
    let firstCid = ''
    for (const mib of sizes) {
      const file = path.join(work, `file-${mib}`)
      await fs.writeFile(file, randomBytes(mib * MiB))
      const r = await sharer.share({ path: file, replicas: K })
      if (firstCid === '') firstCid = r.cid
      const run: PlacementRun = {
        fileMiB: mib,
        blocks: r.blocks,
        importSeconds: r.placement.importMs / 1000,
        placeSeconds: r.placement.placeMs / 1000,
        planSeconds: r.placement.planMs / 1000,
        pushSeconds: r.placement.pushMs / 1000,
        lookups: r.placement.lookups,
        movedMiB: round(r.placement.bytesPushed / MiB, 1),
        fileMiBs: round(mib / (r.placement.placeMs / 1000), 1),
        movedMiBs: round(r.placement.bytesPushed / MiB / (r.placement.pushMs / 1000), 1),
        complete: r.replicas.complete
      }
      runs.push(run)
      log(`  ${mib} MiB: placed in ${run.placeSeconds} s (${run.fileMiBs} MiB/s of file, ${run.movedMiBs} MiB/s moved; plan ${run.planSeconds} s with ${run.lookups} lookups, push ${run.pushSeconds} s), complete=${run.complete}`)
      await fs.rm(file, { force: true })
    }

    // repair: kill the peer holding the most blocks of the first file
    const before = await sharer.stat(firstCid, K)
    const counts = new Map<string, number>()
    for (const b of before.blocks) for (const h of b.holders) counts.set(h, (counts.get(h) ?? 0) + 1)
    const sharerId = swarm.peers[0].peerId
    const [victimId, held] = [...counts].filter(([id]) => id !== sharerId).sort((a, b) => b[1] - a[1])[0]
    const victim = swarm.peers.find(p => p.peerId === victimId)!
    process.kill(victim.pid, 'SIGKILL')
    const killedAt = performance.now()
    log(`  killed ${victimId.slice(-8)} (held ${held} of ${before.blocks.length} blocks); one repair pass on every live peer`)
    const passes = Promise.all(swarm.peers.filter(p => p.peerId !== victimId).map(async p => (await ApiClient.fromRepo(p.repo)).repair().catch(() => undefined)))
    let seconds: number | null = null
    while (performance.now() - killedAt < 180_000) {
      await new Promise(resolve => setTimeout(resolve, 1000))
      const now = await sharer.stat(firstCid, K).catch(() => undefined)
      if (now == null) continue
      const restored = now.blocks.every(b => !b.holders.includes(victimId) && b.closest.filter(p => p !== victimId && b.holders.includes(p)).length >= K)
      if (restored) {
        seconds = round((performance.now() - killedAt) / 1000, 1)
        break
      }
    }
    const reports = (await passes).filter(r => r != null)
    const pushed = reports.reduce((n, r) => n + r.pushed, 0)
    log(`  repair: ${seconds == null ? 'not restored in 180 s' : `${seconds} s`} to 3 copies on the closest live peers (${pushed} copies pushed)`)
    return { peers: PEERS, replicas: K, runs, repair: { killedHeldBlocks: held, seconds, pushed, blocks: before.blocks.length } }
  } finally {
    await swarmDown(dir).catch(() => {})
    await fs.rm(work, { recursive: true, force: true })
  }
}

export function renderPlacement (r: PlacementBenchResult): string[] {
  return [
    `### Placement (\`shoal share\` with k=${r.replicas} in a ${r.peers}-daemon swarm, every peer its own process)`,
    '',
    '| file (MiB) | blocks | import (s) | place (s) | finding closest (s) | DHT lookups | moving bytes (s) | moved (MiB) | MiB/s of file | MiB/s moved | complete |',
    '| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |',
    ...r.runs.map(x => `| ${x.fileMiB} | ${x.blocks} | ${x.importSeconds} | ${x.placeSeconds} | ${x.planSeconds} | ${x.lookups} | ${x.pushSeconds} | ${x.movedMiB} | ${x.fileMiBs} | ${x.movedMiBs} | ${x.complete ? 'yes' : 'NO'} |`),
    '',
    `Repair: the holder of ${r.repair.killedHeldBlocks} of the ${r.repair.blocks} blocks of the ${r.runs[0]?.fileMiB ?? '?'} MiB file killed with SIGKILL, then one repair pass started on every live peer; every block was back to ${r.replicas} copies on its closest live peers **${r.repair.seconds ?? 'not within 180'} s** after the kill (${r.repair.pushed} copies pushed; \`stat\` polled each second). In the field add the wait for the next periodic pass: up to \`repair.intervalSeconds\` (default 300 s, ±25%).`
  ]
}

