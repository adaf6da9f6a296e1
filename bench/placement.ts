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
 *
 * CPU is read from /proc around each share: the sharer's per GiB it sent,
 * the receivers' (all other daemons together) per GiB they received.
 *
 *   SHOAL_BENCH_PLACE_MIB=64,256      files shared, in order
 *   SHOAL_BENCH_PLACE_PROFILE=DIR     run every receiver from source under
 *                                     --cpu-prof into DIR/peer-N; the busiest
 *                                     one's profile, cut to the last share, is
 *                                     logged (not written to the docs: the
 *                                     profiler slows every peer down)
 *
 * The previous run's rows (bench/results/placement.json, with its commit)
 * are kept as "before", so the section shows a change's effect.
 */
import { randomBytes } from 'node:crypto'
import { readdirSync, readFileSync } from 'node:fs'
import fs from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { execFileSync } from 'node:child_process'
import { ApiClient } from '../src/api/client.ts'
import { swarmDown, swarmUp } from '../src/swarm/process-swarm.ts'
import { renderProfile, summarizeProfile, type CpuProfile } from './profile-summary.ts'
import { cpuSecondsOf, round } from './stats.ts'

const MiB = 1024 * 1024
/** How long the swarm's idle CPU is sampled before each share. */
const IDLE_SAMPLE_MS = 3000
const GiB = 1024 * MiB
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
  /** Wall time of the whole share (import and placement), as the API call took. */
  shareSeconds?: number
  /** MiB of file per second of the whole share. */
  shareMiBs?: number
  /** CPU-s of the sharer per GiB it pushed, and of all receivers together per GiB they received. */
  sharerCpuPerGiB?: number
  receiversCpuPerGiB?: number
  /** Of receiversCpuPerGiB, what they spend idle over as long (measured just before the share). */
  receiversIdleCpuPerGiB?: number
  /** The busiest receiver's CPU-s per GiB it received. */
  busiestReceiverCpuPerGiB?: number
  /** receiversCpuPerGiB by thread name (/proc/PID/task): the main thread, the leaf workers, V8's helpers. */
  receiversCpuPerGiBByThread?: Record<string, number>
}

export interface PlacementBenchResult {
  peers: number
  replicas: number
  runs: PlacementRun[]
  repair: { killedHeldBlocks: number, seconds: number | null, pushed: number, blocks: number }
  /** The commit measured, the machine's load average (1 min) before the first share. */
  commit?: string
  load?: number
  /** The previous run's rows, when it measured CPU. */
  before?: { commit?: string, date?: string, load?: number, runs: PlacementRun[] }
}

export async function benchPlacement (log: (s: string) => void): Promise<PlacementBenchResult> {
  const sizes = (process.env.SHOAL_BENCH_PLACE_MIB ?? '64,256').split(',').map(Number).filter(n => n > 0)
  const profileDir = process.env.SHOAL_BENCH_PLACE_PROFILE
  const before = await previousRun()
  const work = await fs.mkdtemp(path.join(os.tmpdir(), 'shoal-bench-place-'))
  const dir = path.join(work, 'swarm')
  let lastShare: { fromUs: number, toUs: number } | undefined
  let busiest = -1
  try {
    const swarm = await swarmUp({
      peers: PEERS,
      dir,
      peersPerProcess: 1,
      replicas: K,
      peer: i => profileDir != null && i > 0 ? { source: true, nodeArgs: ['--cpu-prof', `--cpu-prof-dir=${path.join(profileDir, `peer-${i}`)}`] } : undefined
    })
    log(`  ${PEERS} daemons routable in ${(swarm.routableMs / 1000).toFixed(1)} s`)
    const sharer = await ApiClient.fromRepo(swarm.peers[0].repo)
    const runs: PlacementRun[] = []
    let firstCid = ''
    const load = os.loadavg()[0]
    for (const mib of sizes) {
      const file = path.join(work, `file-${mib}`)
      await fs.writeFile(file, randomBytes(mib * MiB))
      // what the receivers spend doing nothing (timers, routing upkeep), over as long again before the share
      const idleBefore = swarm.peers.map(p => cpuSecondsOf(p.pid))
      const idleStarted = performance.now()
      await new Promise(resolve => setTimeout(resolve, IDLE_SAMPLE_MS))
      const idleSeconds = (performance.now() - idleStarted) / 1000
      const idleRate = swarm.peers.slice(1).reduce((n, p, i) => n + cpuSecondsOf(p.pid) - idleBefore[i + 1], 0) / idleSeconds
      const cpuBefore = swarm.peers.map(p => cpuSecondsOf(p.pid))
      const threadsBefore = swarm.peers.slice(1).map(p => threadCpu(p.pid))
      const fromUs = Number(process.hrtime.bigint() / 1000n)
      const started = performance.now()
      const r = await sharer.share({ path: file, replicas: K })
      const shareSeconds = (performance.now() - started) / 1000
      lastShare = { fromUs, toUs: Number(process.hrtime.bigint() / 1000n) }
      const cpu = swarm.peers.map((p, i) => cpuSecondsOf(p.pid) - cpuBefore[i])
      const byThread = new Map<string, number>()
      swarm.peers.slice(1).forEach((p, i) => {
        for (const [name, seconds] of threadCpu(p.pid)) byThread.set(name, (byThread.get(name) ?? 0) + seconds - (threadsBefore[i].get(name) ?? 0))
      })
      const receivedGiB = r.placement.bytesPushed / GiB
      const receivers = cpu.slice(1)
      // the busiest receiver by CPU, and what it received: blocks it now holds of this file
      busiest = 1 + receivers.indexOf(Math.max(...receivers))
      const busiestId = swarm.peers[busiest].peerId
      // what it received: the copies it now holds of this file's blocks, at the average size of a pushed copy
      const held = await sharer.stat(r.cid, K)
      const copies = held.blocks.reduce((n, b) => n + b.holders.filter(h => h !== swarm.peers[0].peerId).length, 0)
      const busiestBytes = held.blocks.filter(b => b.holders.includes(busiestId)).length * r.placement.bytesPushed / Math.max(1, copies)
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
        complete: r.replicas.complete,
        shareSeconds: round(shareSeconds, 2),
        shareMiBs: round(mib / shareSeconds, 1),
        sharerCpuPerGiB: round(cpu[0] / receivedGiB, 2),
        receiversCpuPerGiB: round(receivers.reduce((a, b) => a + b, 0) / receivedGiB, 2),
        receiversIdleCpuPerGiB: round(idleRate * shareSeconds / receivedGiB, 2),
        busiestReceiverCpuPerGiB: round(receivers[busiest - 1] / (busiestBytes / GiB), 2),
        receiversCpuPerGiBByThread: Object.fromEntries([...byThread].filter(([, s]) => s > 0).sort((a, b) => b[1] - a[1]).map(([name, s]) => [name, round(s / receivedGiB, 2)]))
      }
      runs.push(run)
      log(`    receivers' CPU-s per GiB received, by thread: ${Object.entries(run.receiversCpuPerGiBByThread ?? {}).map(([name, s]) => `${name} ${s}`).join(', ')}`)
      log(`  ${mib} MiB: shared in ${run.shareSeconds} s (${run.shareMiBs} MiB/s of file); placed in ${run.placeSeconds} s (${run.fileMiBs} MiB/s of file, ${run.movedMiBs} MiB/s moved; plan ${run.planSeconds} s with ${run.lookups} lookups, push ${run.pushSeconds} s), complete=${run.complete}; CPU-s per GiB: sharer ${run.sharerCpuPerGiB} (sent), receivers ${run.receiversCpuPerGiB} (received; ${run.receiversIdleCpuPerGiB} of it idle), busiest receiver ${run.busiestReceiverCpuPerGiB}`)
      await fs.rm(file, { force: true })
    }

    // repair: kill the peer holding the most blocks of the first file
    const stated = await sharer.stat(firstCid, K)
    const counts = new Map<string, number>()
    for (const b of stated.blocks) for (const h of b.holders) counts.set(h, (counts.get(h) ?? 0) + 1)
    const sharerId = swarm.peers[0].peerId
    const [victimId, held] = [...counts].filter(([id]) => id !== sharerId).sort((a, b) => b[1] - a[1])[0]
    const victim = swarm.peers.find(p => p.peerId === victimId)!
    process.kill(victim.pid, 'SIGKILL')
    const killedAt = performance.now()
    log(`  killed ${victimId.slice(-8)} (held ${held} of ${stated.blocks.length} blocks); one repair pass on every live peer`)
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
    return { peers: PEERS, replicas: K, runs, repair: { killedHeldBlocks: held, seconds, pushed, blocks: stated.blocks.length }, commit: gitCommit(), load: round(load, 2), ...(before != null ? { before } : {}) }
  } finally {
    await swarmDown(dir).catch(() => {})
    await fs.rm(work, { recursive: true, force: true })
    if (profileDir != null && lastShare != null && busiest > 0) await logProfile(path.join(profileDir, `peer-${busiest}`), lastShare, log)
  }
}

/** The last run's rows, if it measured CPU (older results did not). */
async function previousRun (): Promise<PlacementBenchResult['before']> {
  try {
    const last = JSON.parse(await fs.readFile(new URL('./results/placement.json', import.meta.url), 'utf8')) as PlacementBenchResult & { machine?: { date: string } }
    if (last.runs.every(r => r.receiversCpuPerGiB == null)) return undefined
    return { commit: last.commit, date: last.machine?.date, load: last.load, runs: last.runs }
  } catch {
    return undefined
  }
}

function gitCommit (): string | undefined {
  try {
    return execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: new URL('..', import.meta.url), encoding: 'utf8' }).trim()
  } catch {
    return undefined
  }
}

/** CPU seconds of each of a process's threads, summed by thread name. */
function threadCpu (pid: number): Map<string, number> {
  const out = new Map<string, number>()
  let tids: string[] = []
  try {
    tids = readdirSync(`/proc/${pid}/task`)
  } catch {
    return out
  }
  for (const tid of tids) {
    try {
      const stat = readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8')
      const name = stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')')).replace(/[0-9]+$/, '').trim()
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
      out.set(name, (out.get(name) ?? 0) + (Number(fields[11]) + Number(fields[12])) / 100)
    } catch {}
  }
  return out
}

async function logProfile (dir: string, window: { fromUs: number, toUs: number }, log: (s: string) => void): Promise<void> {
  const file = (await fs.readdir(dir).catch(() => [])).find(f => f.endsWith('.cpuprofile'))
  if (file == null) {
    log(`  profile: no profile in ${dir}`)
    return
  }
  const summary = summarizeProfile(JSON.parse(await fs.readFile(path.join(dir, file), 'utf8')) as CpuProfile, { ...window, top: 25 })
  log(`  profile of the busiest receiver over the last share (${path.join(dir, file)}): busy ${Math.round(summary.busyMs)} ms of ${Math.round(summary.sampledMs)} ms`)
  for (const line of renderProfile(summary)) log(`    ${line}`)
}

const GOAL_MIBS: Record<number, number> = { 64: 60, 256: 100 }
const GOAL_RECEIVER_CPU_PER_GIB = 4
const GOAL_SHARER_CPU_PER_GIB = 3

function table (runs: PlacementRun[]): string[] {
  const goal = (x: PlacementRun): string => {
    const g = GOAL_MIBS[x.fileMiB]
    return g == null || x.shareMiBs == null ? '' : ` (goal ${g}, ${round(x.shareMiBs / g, 2)}x)`
  }
  const cpu = (v: number | undefined, g: number): string => v == null ? '-' : `${v} (goal ${g}, ${round(g / v, 2)}x)`
  return [
    '| file (MiB) | blocks | share (s) | MiB/s of file | import (s) | place (s) | finding closest (s) | moving bytes (s) | moved (MiB) | MiB/s moved | sharer CPU-s per GiB sent | receivers CPU-s per GiB received | of which idle | busiest receiver | complete |',
    '| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |',
    ...runs.map(x => `| ${x.fileMiB} | ${x.blocks} | ${x.shareSeconds ?? '-'} | ${x.shareMiBs ?? x.fileMiBs}${goal(x)} | ${x.importSeconds} | ${x.placeSeconds} | ${x.planSeconds} | ${x.pushSeconds} | ${x.movedMiB} | ${x.movedMiBs} | ${cpu(x.sharerCpuPerGiB, GOAL_SHARER_CPU_PER_GIB)} | ${cpu(x.receiversCpuPerGiB, GOAL_RECEIVER_CPU_PER_GIB)} | ${x.receiversIdleCpuPerGiB ?? '-'} | ${x.busiestReceiverCpuPerGiB ?? '-'} | ${x.complete ? 'yes' : 'NO'} |`)
  ]
}

export function renderPlacement (r: PlacementBenchResult): string[] {
  return [
    `### Placement (\`shoal share\` with k=${r.replicas} in a ${r.peers}-daemon swarm, every peer its own process)`,
    '',
    `This run${r.commit != null ? ` (commit ${r.commit})` : ''}${r.load != null ? `, load average ${r.load} before the first share` : ''}:`,
    '',
    ...table(r.runs),
    '',
    ...(r.before != null
      ? [`The run before${r.before.commit != null ? ` (commit ${r.before.commit}` : ' ('}${r.before.date != null ? `, ${r.before.date.slice(0, 16)}` : ''}${r.before.load != null ? `, load average ${r.before.load}` : ''}):`, '', ...table(r.before.runs), '']
      : []),
    ...r.runs.filter(x => x.receiversCpuPerGiBByThread != null).map(x => `Receivers' CPU-s per GiB received by thread, ${x.fileMiB} MiB file: ${Object.entries(x.receiversCpuPerGiBByThread!).map(([name, s]) => `${name} ${s}`).join(', ')} (node-MainThread: libp2p's transport and the store server; WorkerThread: the leaf workers' sha2-256 and block writes; node-V8Worker: garbage collection and compilation).`),
    '',
    `"share" is the API call from start to answer (import and placement); the ratios are goal / figure for CPU (above 1: within the goal) and figure / goal for speed. Receivers' CPU is every daemon but the sharer, over the share, per GiB they received; "of which idle" is what the same daemons spent doing nothing for as long, measured over ${IDLE_SAMPLE_MS / 1000} s just before the share; "busiest receiver" is the one that spent the most CPU, per GiB it received.`,
    '',
    `Repair: the holder of ${r.repair.killedHeldBlocks} of the ${r.repair.blocks} blocks of the ${r.runs[0]?.fileMiB ?? '?'} MiB file killed with SIGKILL, then one repair pass started on every live peer; every block was back to ${r.replicas} copies on its closest live peers **${r.repair.seconds ?? 'not within 180'} s** after the kill (${r.repair.pushed} copies pushed; \`stat\` polled each second). In the field add the wait for the next periodic pass: up to \`repair.intervalSeconds\` (default 300 s, ±25%).`
  ]
}
