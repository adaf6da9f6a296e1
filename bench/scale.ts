/**
 * Both overlays as the swarm grows (`SHOAL_BENCH=scale`): for each size,
 * each overlay and each way of joining (`swarm up`'s contact plan, and
 * `--join bootstrap`: every peer knows only the 3 seed peers), a swarm of
 * daemons in `swarm up`'s default process layout on loopback:
 *
 * - routable in: `swarm up` until routable (routable.ts);
 * - memory: RSS of the swarm's processes once routable, summed, per peer;
 * - CPU: CPU time the processes used up to routable, per peer; and the
 *   share of a core each peer uses while the swarm idles afterwards
 *   (SHOAL_BENCH_SCALE_IDLE_S seconds);
 * - lookups (`GET /api/v1/lookup`, k = 3, the same random keys on every
 *   swarm of a size, bench/overlay-lookups.ts): hops mean/p95 against
 *   ½ log2 N and log2 N, messages per lookup against 3 log2 N, latency
 *   p50/p95, and the share of lookups whose k answers are the true k;
 *   then a second pass of as many lookups of other keys, from the same
 *   peers: a fresh swarm's first lookups open most of their connections
 *   (TCP, Noise, yamux, identify), the second pass shows a swarm whose
 *   peers have looked something up before;
 * - sustained: many more lookups from the peers of one host, with every
 *   process's open files counted (SustainedStats).
 *
 *   SHOAL_BENCH_SCALE_SIZES=100,300,1000   swarm sizes (up to MAX_SWARM_PEERS, 1,000)
 *   SHOAL_BENCH_SCALE_LOOKUPS=200     lookups per swarm
 *   SHOAL_BENCH_SCALE_JOINS=plan,bootstrap
 *   SHOAL_BENCH_SCALE_OVERLAYS=kademlia,chord
 *   SHOAL_BENCH_SCALE_IDLE_S=10
 *   SHOAL_BENCH_SCALE_SUSTAINED=2000  lookups of the sustained pass (0: none)
 *   SHOAL_BENCH_SCALE_TIMEOUT_S=      give up on a swarm not routable by then (default 60 + 2 per peer)
 *   SHOAL_BENCH_SCALE_KEEP=1          keep the last run's rows of the sizes, overlays and joins not run now (bench/results/scale.json)
 */
import fs from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import type { CID } from 'multiformats/cid'
import { ApiClient } from '../src/api/client.ts'
import type { OverlayName } from '../src/routing/index.ts'
import { swarmDown, swarmUp } from '../src/swarm/process-swarm.ts'
import { openFileLimit } from '../src/utils/process.ts'
import type { SwarmJoin } from '../src/swarm/swarm-file.ts'
import { measureLookups, randomKeys, type LookupStats } from './overlay-lookups.ts'
import { usageOf } from './process-usage.ts'
import { round } from './stats.ts'
import { svgPlot } from './svg-plot.ts'

const K = 3
const OVERLAYS: OverlayName[] = ['kademlia', 'chord']

export interface ScaleRun {
  overlay: OverlayName
  join: SwarmJoin
  peers: number
  processes: number | null
  /** null: not routable within `timeoutSeconds` (see `error`). */
  routableSeconds: number | null
  timeoutSeconds: number
  error?: string
  rssMiBPerPeer: number | null
  cpuSecondsPerPeerToRoutable: number | null
  /** Share of one core per peer while idle after routable, in percent. */
  idleCpuPercentPerPeer: number | null
  log2N: number
  halfLog2N: number
  threeLog2N: number
  lookups: LookupStats | null
  /** The second pass: other keys, from peers that have made a lookup before. */
  secondPass: LookupStats | null
  /** Sustained lookups from the first host's peers after the two passes (absent in rows from before it was measured). */
  sustained?: SustainedStats | null
  /** When this row was measured (rows kept from an earlier run keep theirs). */
  measuredAt?: string
}

/**
 * Many lookups from the peers of one host (the swarm's first process):
 * every lookup dials the peers it asks, so a host whose connections are
 * never closed runs out of open files and its lookups fail from then on.
 */
export interface SustainedStats {
  lookups: number
  /** Share of all of them that found the true k. */
  trueK: number
  /** The worst round of SUSTAINED_ROUND lookups. */
  worstRoundTrueK: number
  /** Most open files any of the swarm's processes held after a round, and the limit. */
  maxOpenFiles: number
  openFileLimit: number | null
}

/** Lookups per round of the sustained pass (open files are counted after each). */
const SUSTAINED_ROUND = 100

export interface ScaleBenchResult {
  runs: ScaleRun[]
  idleSeconds: number
  /** 1-minute load average of the machine before and after the suite (other work may share it). */
  loadBefore: number
  loadAfter: number
}

const list = (name: string, fallback: string): string[] => (process.env[name] ?? fallback).split(',').map(s => s.trim()).filter(s => s !== '')

export async function benchScale (log: (s: string) => void): Promise<ScaleBenchResult> {
  const loadBefore = round(os.loadavg()[0], 1)
  const sizes = list('SHOAL_BENCH_SCALE_SIZES', '100,300,1000').map(Number).filter(n => n > 0)
  const lookups = Number(process.env.SHOAL_BENCH_SCALE_LOOKUPS ?? '200')
  const joins = list('SHOAL_BENCH_SCALE_JOINS', 'plan,bootstrap') as SwarmJoin[]
  const overlays = list('SHOAL_BENCH_SCALE_OVERLAYS', OVERLAYS.join(',')) as OverlayName[]
  const idleSeconds = Number(process.env.SHOAL_BENCH_SCALE_IDLE_S ?? '10')
  const sustainedLookups = Number(process.env.SHOAL_BENCH_SCALE_SUSTAINED ?? '2000')
  const runs: ScaleRun[] = []
  if (process.env.SHOAL_BENCH_SCALE_KEEP === '1') {
    const last = JSON.parse(await fs.readFile(new URL('./results/scale.json', import.meta.url), 'utf8')) as { runs: ScaleRun[], machine?: { date?: string } }
    const runNow = (run: ScaleRun): boolean => sizes.includes(run.peers) && overlays.includes(run.overlay) && joins.includes(run.join)
    for (const run of last.runs) if (!runNow(run)) runs.push({ ...run, measuredAt: run.measuredAt ?? last.machine?.date })
  }
  const now = new Date().toISOString()
  for (const peers of sizes) {
    const keys = await randomKeys(lookups)
    const secondKeys = await randomKeys(lookups)
    for (const overlay of overlays) {
      for (const join of joins) {
        log(`${overlay} swarm of ${peers}, join ${join}`)
        runs.push({ ...await benchOne(overlay, join, peers, keys, secondKeys, idleSeconds, sustainedLookups, log), measuredAt: now })
      }
    }
  }
  // by size, then overlay and join as they are run
  const order = (run: ScaleRun): number => run.peers * 4 + OVERLAYS.indexOf(run.overlay) * 2 + (run.join === 'plan' ? 0 : 1)
  runs.sort((a, b) => order(a) - order(b))
  return { runs, idleSeconds, loadBefore, loadAfter: round(os.loadavg()[0], 1) }
}

async function benchOne (overlay: OverlayName, join: SwarmJoin, peers: number, keys: CID[], secondKeys: CID[], idleSeconds: number, sustainedLookups: number, log: (s: string) => void): Promise<ScaleRun> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'shoal-bench-scale-'))
  const timeoutMs = process.env.SHOAL_BENCH_SCALE_TIMEOUT_S != null ? Number(process.env.SHOAL_BENCH_SCALE_TIMEOUT_S) * 1000 : 60_000 + 2_000 * peers
  const log2N = Math.log2(peers)
  const base = {
    overlay, join, peers, timeoutSeconds: timeoutMs / 1000, log2N: round(log2N, 2), halfLog2N: round(log2N / 2, 2), threeLog2N: round(3 * log2N, 1)
  }
  const failed = { processes: null, routableSeconds: null, rssMiBPerPeer: null, cpuSecondsPerPeerToRoutable: null, idleCpuPercentPerPeer: null, lookups: null, secondPass: null, sustained: null }
  try {
    let swarm
    try {
      swarm = await swarmUp({ peers, dir, overlay, join, timeoutMs, replicas: K })
    } catch (err) {
      log(`  not routable: ${(err as Error).message}`)
      return { ...base, ...failed, error: (err as Error).message }
    }
    log(`  routable in ${(swarm.routableMs / 1000).toFixed(1)} s`)
    const pids = [...new Set(swarm.peers.map(p => p.pid))]
    const atRoutable = await usageOf(pids)
    const idleFrom = performance.now()
    await new Promise(resolve => setTimeout(resolve, idleSeconds * 1000))
    const afterIdle = await usageOf(pids)
    const idleCpu = (afterIdle.cpuSeconds - atRoutable.cpuSeconds) / ((performance.now() - idleFrom) / 1000)
    const ids = swarm.peers.map(p => p.peerId)
    const clients = await Promise.all(swarm.peers.map(async p => ApiClient.fromRepo(p.repo)))
    const lookups = await measureLookups(overlay, clients, ids, keys, K)
    log(`  ${keys.length} lookups: hops mean ${lookups.hopsMean}, messages mean ${lookups.messagesMean}, p50 ${lookups.lookupMsP50} ms, ${Math.round(lookups.trueK * 100)}% true k`)
    const secondPass = await measureLookups(overlay, clients, ids, secondKeys, K)
    log(`  second pass: p50 ${secondPass.lookupMsP50} ms, p95 ${secondPass.lookupMsP95} ms, messages mean ${secondPass.messagesMean}, ${Math.round(secondPass.trueK * 100)}% true k`)
    const firstHost = clients.filter((_, i) => swarm.peers[i].pid === pids[0])
    const sustained = sustainedLookups > 0 ? await sustainedPass(overlay, firstHost, ids, pids, sustainedLookups) : null
    if (sustained != null) log(`  ${sustained.lookups} sustained lookups from ${firstHost.length} peers of one host: ${Math.round(sustained.trueK * 100)}% true k (worst round ${Math.round(sustained.worstRoundTrueK * 100)}%), at most ${sustained.maxOpenFiles} of ${sustained.openFileLimit} open files in a process`)
    return {
      ...base,
      processes: pids.length,
      routableSeconds: round(swarm.routableMs / 1000, 1),
      rssMiBPerPeer: round(afterIdle.rssBytes / 2 ** 20 / peers, 1),
      cpuSecondsPerPeerToRoutable: round(atRoutable.cpuSeconds / peers, 2),
      idleCpuPercentPerPeer: round(idleCpu / peers * 100, 2),
      lookups,
      secondPass,
      sustained
    }
  } finally {
    await swarmDown(dir).catch(() => {})
    await fs.rm(dir, { recursive: true, force: true })
  }
}

/** `count` lookups of random keys from `clients` (one host's peers), in rounds, counting every process's open files after each. */
async function sustainedPass (overlay: OverlayName, clients: ApiClient[], ids: string[], pids: number[], count: number): Promise<SustainedStats> {
  let exact = 0
  let worst = 1
  let maxOpenFiles = 0
  for (let done = 0; done < count; done += SUSTAINED_ROUND) {
    const keys = await randomKeys(Math.min(SUSTAINED_ROUND, count - done))
    const pass = await measureLookups(overlay, clients, ids, keys, K)
    exact += pass.trueK * keys.length
    worst = Math.min(worst, pass.trueK)
    for (const pid of pids) maxOpenFiles = Math.max(maxOpenFiles, (await fs.readdir(`/proc/${pid}/fd`).catch(() => [])).length)
  }
  return { lookups: count, trueK: round(exact / Math.max(1, count), 2), worstRoundTrueK: worst, maxOpenFiles, openFileLimit: openFileLimit() ?? null }
}

/** The markdown section for docs/benchmarks.md. */
export function renderScale (r: ScaleBenchResult): string[] {
  const dash = (v: number | null | undefined): string => v == null ? '-' : String(v)
  return [
    `### Both overlays as the swarm grows (\`swarm up --overlay\`, with the contact plan and with \`--join bootstrap\`; k = ${K}, the same random keys on every swarm of a size; machine load average ${r.loadBefore} before, ${r.loadAfter} after: other work shared the machine)`,
    '',
    '| peers | overlay | join | processes | routable in (s) | RSS per peer (MiB) | CPU to routable per peer (s) | idle CPU per peer (% of a core) | hops mean | hops p95 | ½ log2 N | log2 N | messages per lookup (mean / p95) | 3 log2 N | lookup p50 (ms) | lookup p95 (ms) | true k | second pass p50 / p95 (ms) | second pass true k | sustained: true k (worst round) | sustained: most open files in a process |',
    '| ---: | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
    ...r.runs.map(s => s.routableSeconds == null
      ? `| ${s.peers} | ${s.overlay} | ${s.join} | - | not routable in ${s.timeoutSeconds} s | - | - | - | - | - | ${s.halfLog2N} | ${s.log2N} | - | ${s.threeLog2N} | - | - | - | - | - | - | - |`
      : `| ${s.peers} | ${s.overlay} | ${s.join} | ${s.processes} | ${s.routableSeconds} | ${dash(s.rssMiBPerPeer)} | ${dash(s.cpuSecondsPerPeerToRoutable)} | ${dash(s.idleCpuPercentPerPeer)} | ${dash(s.lookups?.hopsMean)} | ${dash(s.lookups?.hopsP95)} | ${s.halfLog2N} | ${s.log2N} | ${dash(s.lookups?.messagesMean)} / ${dash(s.lookups?.messagesP95)} | ${s.threeLog2N} | ${dash(s.lookups?.lookupMsP50)} | ${dash(s.lookups?.lookupMsP95)} | ${Math.round((s.lookups?.trueK ?? 0) * 100)}% | ${dash(s.secondPass?.lookupMsP50)} / ${dash(s.secondPass?.lookupMsP95)} | ${s.secondPass == null ? '-' : `${Math.round(s.secondPass.trueK * 100)}%`} | ${s.sustained == null ? '-' : `${Math.round(s.sustained.trueK * 100)}% (${Math.round(s.sustained.worstRoundTrueK * 100)}%)`} | ${s.sustained == null ? '-' : `${s.sustained.maxOpenFiles} of ${s.sustained.openFileLimit ?? '?'}`} |`),
    '',
    `${r.runs[0]?.lookups?.lookups ?? 0} lookups per swarm, one at a time, key i from peer i mod N; then the second pass, as many lookups of other keys from the same peers (a fresh swarm's first lookups open most of their connections; in the second, the peers have looked something up before). Sustained: then ${r.runs.find(x => x.sustained != null)?.sustained?.lookups ?? 0} more lookups, one at a time, all from the peers of the swarm's first process, in rounds of ${SUSTAINED_ROUND}, counting every process's open files after each round (every lookup dials the peers it asks; idle connections are closed past a high watermark, docs/architecture.md). RSS: the swarm's processes summed after ${r.idleSeconds} s idle, per peer; CPU to routable: CPU time (user + system) of the swarm's processes from their start until routable, per peer; idle CPU: over those ${r.idleSeconds} s. \`--join bootstrap\`: every peer is given only the first 3 peers started and joins through the overlay.`,
    ...measuredTimes(r),
    '',
    '![Messages per lookup on both overlays against swarm size, next to 3 log2 N](plots/scale-messages.svg)'
  ]
}

/** A line saying when each row was measured, when the rows come from more than one run (SHOAL_BENCH_SCALE_KEEP). */
function measuredTimes (r: ScaleBenchResult): string[] {
  const byTime = new Map<string, string[]>()
  for (const run of r.runs) {
    if (run.measuredAt == null) continue
    const at = run.measuredAt.slice(0, 16).replace('T', ' ')
    byTime.set(at, [...(byTime.get(at) ?? []), `${run.peers} ${run.overlay} ${run.join}`])
  }
  if (byTime.size < 2) return []
  return ['', `Rows measured in separate runs (UTC): ${[...byTime].map(([at, rows]) => `${at}: ${rows.join(', ')}`).join('; ')}.`]
}

/** docs/plots/scale-messages.svg: messages per lookup (mean) by swarm size, each overlay with the contact plan, next to 3 log2 N. */
export function plotScaleMessages (r: ScaleBenchResult): string {
  const measured = (overlay: OverlayName): ScaleRun[] => r.runs.filter(s => s.overlay === overlay && s.join === 'plan' && s.lookups != null)
  const sizes = [...new Map(r.runs.map(s => [s.peers, s])).values()]
  return svgPlot({
    title: 'Messages per lookup (mean, k = 3) on Kademlia and on Chord by swarm size',
    xLabel: 'peers in the swarm',
    yLabel: 'messages per lookup',
    series: [
      ...OVERLAYS.map(overlay => ({ name: `${overlay} messages mean`, kind: 'bar' as const, decimals: 1, points: measured(overlay).map(s => ({ x: s.peers, y: s.lookups?.messagesMean ?? 0 })) })),
      { name: '3 log2 N', dashed: true, color: '#555', decimals: 1, points: sizes.map(s => ({ x: s.peers, y: s.threeLog2N })) }
    ]
  })
}

// `node bench/scale.ts` runs this benchmark alone and prints the section.
if (import.meta.main === true) {
  const result = await benchScale(s => { process.stderr.write(s + '\n') })
  process.stdout.write(renderScale(result).join('\n') + '\n')
}
