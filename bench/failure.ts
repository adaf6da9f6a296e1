/**
 * The Chord paper's failure experiment (`SHOAL_BENCH=failure`; Stoica et
 * al., ToN 2003, "Simultaneous node failures"), on both overlays: a swarm
 * of daemons (`swarm up`, the contact plan) in hosts of PER_PROCESS peers.
 * Peer IDs are random, so each host's peers are a random sample of the
 * ring, and killing a host with SIGKILL is the real death of that share of
 * the swarm at once.
 *
 * 1. A FILE_MIB file shared on peer 0 (k = 3: import and placement) and
 *    fetched by the last peer, before any failure: the time of each, and
 *    whether every block is held by its true k (the overlay's order over
 *    every peer).
 * 2. Every peer's periodic maintenance paused (`POST /api/v1/routing/maintenance`):
 *    no stabilization after the failures, as in the paper.
 * 3. For each share p of STEPS, hosts killed until p of the peers are dead
 *    (cumulatively: with maintenance paused, killing 20 % in two steps
 *    leaves the state killing 20 % at once does), then LOOKUPS lookups of
 *    random keys from random live peers (INFLIGHT at a time), each checked
 *    against the true k over the live peers: failed lookups (an error, or
 *    responsible peers other than the true k), timeouts per lookup (queries
 *    that failed: `path[].ok` false), hops, messages and latency.
 *
 *   SHOAL_BENCH_FAILURE_PEERS=1000
 *   SHOAL_BENCH_FAILURE_PER_PROCESS=100   peers per host (peers / hosts)
 *   SHOAL_BENCH_FAILURE_LOOKUPS=10000     lookups per step
 *   SHOAL_BENCH_FAILURE_STEPS=10,20,30,40,50   shares killed, percent
 *   SHOAL_BENCH_FAILURE_OVERLAYS=kademlia,chord
 *   SHOAL_BENCH_FAILURE_INFLIGHT=24       lookups in flight
 *   SHOAL_BENCH_FAILURE_FILE_MIB=256      file shared and fetched first (0: none)
 *   SHOAL_BENCH_FAILURE_SUCCESSORS=20     Chord's successor list length r
 *   SHOAL_BENCH_FAILURE_KEEP=1            keep the last result's runs of the overlays not run now (bench/results/failure.json)
 */
import { randomBytes } from 'node:crypto'
import fs from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { CID } from 'multiformats/cid'
import { ApiClient } from '../src/api/client.ts'
import type { OverlayName } from '../src/routing/index.ts'
import { swarmDown, swarmUp } from '../src/swarm/process-swarm.ts'
import { killProcesses } from '../src/swarm/peer-process.ts'
import { mapConcurrent } from '../src/utils/wait.ts'
import { mean, quantile, TruthTable } from './overlay-lookups.ts'
import { median, round } from './stats.ts'
import { svgPlot } from './svg-plot.ts'

const K = 3

export interface FailureStep {
  /** Share of the peers killed so far, percent (whole hosts). */
  killedPercent: number
  killedPeers: number
  livePeers: number
  lookups: number
  /** Lookups that failed as the paper counts them: an error, or a first responsible peer (Chord: the key's successor) other than the true one among the live peers. */
  failed: number
  /** Lookups that gave an error, or responsible peers other than the true k of the live peers, in order. */
  failedK: number
  failedErrors: number
  /** The first few distinct error messages. */
  errorSamples: string[]
  /** Up to 3 lookups that named a wrong first responsible peer without an error. */
  wrongSamples?: string[]
  /** Failed queries per lookup (the paper's timeouts): mean and p95. */
  timeoutsMean: number
  timeoutsP95: number
  hopsMean: number
  messagesMean: number
  lookupMsP50: number
  lookupMsP95: number
  /** Wall time of the step's lookups. */
  seconds: number
}

export interface FailureShare {
  fileMiB: number
  blocks: number
  /** Blocks held by every one of their true k (before any failure). */
  blocksOnTrueK: number
  shareSeconds: number
  fetchSeconds: number
}

export interface FailureRun {
  overlay: OverlayName
  peers: number
  processes: number | null
  /** null: not routable within `timeoutSeconds` (see `error`). */
  routableSeconds: number | null
  timeoutSeconds: number
  error?: string
  share: FailureShare | null
  steps: FailureStep[]
  /** When this run was measured (runs kept from an earlier run keep theirs). */
  measuredAt?: string
}

export interface FailureBenchResult {
  peers: number
  peersPerProcess: number
  lookupsPerStep: number
  inflight: number
  successorListLength: number
  runs: FailureRun[]
  /** 1-minute load average of the machine before and after the suite (other work may share it). */
  loadBefore: number
  loadAfter: number
}

const env = (name: string, fallback: string): string => process.env[`SHOAL_BENCH_FAILURE_${name}`] ?? fallback
const list = (name: string, fallback: string): string[] => env(name, fallback).split(',').map(s => s.trim()).filter(s => s !== '')

export async function benchFailure (log: (s: string) => void): Promise<FailureBenchResult> {
  const loadBefore = round(os.loadavg()[0], 1)
  const peers = Number(env('PEERS', '1000'))
  const settings = {
    peers,
    peersPerProcess: Number(env('PER_PROCESS', String(Math.max(1, Math.round(peers / 10))))),
    lookupsPerStep: Number(env('LOOKUPS', '10000')),
    inflight: Number(env('INFLIGHT', '24')),
    successorListLength: Number(env('SUCCESSORS', '20'))
  }
  const steps = list('STEPS', '10,20,30,40,50').map(Number)
  const fileMiB = Number(env('FILE_MIB', '256'))
  const overlays = list('OVERLAYS', 'kademlia,chord') as OverlayName[]
  const runs: FailureRun[] = []
  if (env('KEEP', '0') === '1') {
    // the other overlays' runs of the last result, with their own settings and time
    const last = JSON.parse(await fs.readFile(new URL('./results/failure.json', import.meta.url), 'utf8')) as { runs: FailureRun[], machine?: { date?: string } }
    for (const run of last.runs) if (!overlays.includes(run.overlay)) runs.push({ ...run, measuredAt: run.measuredAt ?? last.machine?.date })
  }
  const now = new Date().toISOString()
  for (const overlay of overlays) {
    log(`${overlay} swarm of ${peers} in hosts of ${settings.peersPerProcess}`)
    runs.push({ ...await benchOne(overlay, settings, steps, fileMiB, log), measuredAt: now })
  }
  const order: OverlayName[] = ['kademlia', 'chord']
  runs.sort((a, b) => order.indexOf(a.overlay) - order.indexOf(b.overlay))
  return { ...settings, runs, loadBefore, loadAfter: round(os.loadavg()[0], 1) }
}

async function benchOne (overlay: OverlayName, s: Omit<FailureBenchResult, 'runs' | 'loadBefore' | 'loadAfter'>, steps: number[], fileMiB: number, log: (s: string) => void): Promise<FailureRun> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'shoal-bench-failure-'))
  const timeoutMs = 120_000 + 1_000 * s.peers
  const base = { overlay, peers: s.peers, timeoutSeconds: timeoutMs / 1000 }
  try {
    let swarm
    try {
      swarm = await swarmUp({
        peers: s.peers,
        dir,
        overlay,
        timeoutMs,
        replicas: K,
        peersPerProcess: s.peersPerProcess,
        config: overlay === 'chord' ? { chord: { successorListLength: s.successorListLength } } : {}
      })
    } catch (err) {
      log(`  not routable: ${(err as Error).message}`)
      return { ...base, processes: null, routableSeconds: null, error: (err as Error).message, share: null, steps: [] }
    }
    log(`  routable in ${(swarm.routableMs / 1000).toFixed(1)} s`)
    const ids = swarm.peers.map(p => p.peerId)
    const clients = await Promise.all(swarm.peers.map(async p => ApiClient.fromRepo(p.repo)))
    const share = fileMiB > 0 ? await shareAndFetch(overlay, clients, ids, fileMiB, dir, log) : null

    await mapConcurrent(clients, 32, async c => { await c.pauseMaintenance(true) })
    log('  maintenance paused on every peer')
    const hosts = [...new Set(swarm.peers.map(p => p.pid))]
    // a random order of the hosts: each is a random sample of the ring already
    const order = hosts.map(pid => ({ pid, r: Math.random() })).sort((a, b) => a.r - b.r).map(h => h.pid)
    const dead = new Set<number>()
    const results: FailureStep[] = []
    for (const percent of steps) {
      const kill = order.filter(pid => !dead.has(pid)).slice(0, Math.max(0, Math.round(percent / 100 * hosts.length) - dead.size))
      await killProcesses(kill)
      for (const pid of kill) dead.add(pid)
      const live = swarm.peers.flatMap((p, i) => dead.has(p.pid) ? [] : [i])
      const step = await lookupStep(overlay, clients, ids, live, s.lookupsPerStep, s.inflight)
      const result = { killedPercent: round((s.peers - live.length) / s.peers * 100, 1), killedPeers: s.peers - live.length, livePeers: live.length, ...step }
      results.push(result)
      if (result.errorSamples.length > 0) log(`    errors: ${result.errorSamples.join(' | ')}`)
      if ((result.wrongSamples ?? []).length > 0) log(`    wrong: ${result.wrongSamples!.join(' | ')}`)
      log(`  ${result.killedPercent}% killed (${dead.size} of ${hosts.length} hosts): ${result.failed} of ${result.lookups} lookups failed (${result.failedErrors} errors; ${result.failedK} without the true ${K}), timeouts per lookup ${result.timeoutsMean} (p95 ${result.timeoutsP95}), hops ${result.hopsMean}, p50 ${result.lookupMsP50} ms, ${result.seconds} s`)
    }
    return { ...base, processes: hosts.length, routableSeconds: round(swarm.routableMs / 1000, 1), share, steps: results }
  } finally {
    await swarmDown(dir).catch(() => {})
    await fs.rm(dir, { recursive: true, force: true })
  }
}

/** Shares a file on peer 0, checks every block is on its true k, fetches it on the last peer. */
async function shareAndFetch (overlay: OverlayName, clients: ApiClient[], ids: string[], fileMiB: number, dir: string, log: (s: string) => void): Promise<FailureShare> {
  const file = path.join(dir, 'file.bin')
  await fs.writeFile(file, randomBytes(fileMiB * 2 ** 20))
  let started = performance.now()
  const shared = await clients[0].share({ path: file, replicas: K })
  const shareSeconds = round((performance.now() - started) / 1000, 1)
  const truth = new TruthTable(overlay, ids)
  const stat = await clients[0].stat(shared.cid, K, { timeoutMs: 600_000 })
  const blocksOnTrueK = stat.blocks.filter(b => truth.responsible(CID.parse(b.cid).multihash.bytes, K).every(id => b.holders.includes(id))).length
  started = performance.now()
  await clients[clients.length - 1].fetch(shared.cid, { path: path.join(dir, 'fetched.bin'), timeoutSeconds: 600 })
  const fetchSeconds = round((performance.now() - started) / 1000, 1)
  await fs.rm(file, { force: true })
  await fs.rm(path.join(dir, 'fetched.bin'), { force: true })
  log(`  ${fileMiB} MiB: share ${shareSeconds} s, ${blocksOnTrueK} of ${stat.blocks.length} blocks on their true ${K}, fetch ${fetchSeconds} s`)
  return { fileMiB, blocks: stat.blocks.length, blocksOnTrueK, shareSeconds, fetchSeconds }
}

/** `count` lookups of random keys, each from a random live peer, `inflight` at a time, against the truth over the live peers. */
async function lookupStep (overlay: OverlayName, clients: ApiClient[], ids: string[], live: number[], count: number, inflight: number): Promise<Omit<FailureStep, 'killedPercent' | 'killedPeers' | 'livePeers'>> {
  const truth = new TruthTable(overlay, live.map(i => ids[i]))
  const timeouts: number[] = []
  const hops: number[] = []
  const messages: number[] = []
  const ms: number[] = []
  let failed = 0
  let failedK = 0
  let errors = 0
  const samples = new Set<string>()
  const wrong: string[] = []
  const started = performance.now()
  await mapConcurrent(Array.from({ length: count }, (_, i) => i), inflight, async () => {
    const key = randomBytes(32)
    const from = live[Math.floor(Math.random() * live.length)]
    try {
      const r = await clients[from].lookup(key.toString('hex'), { replicas: K, timeoutMs: 60_000 })
      timeouts.push(r.path.filter(h => !h.ok).length)
      hops.push(r.hops)
      messages.push(r.messages)
      ms.push(r.ms)
      const want = truth.responsible(key, K)
      if (r.responsible[0] !== want[0]) {
        failed++
        // what went wrong, for the log and the results (the table only counts)
        if (wrong.length < 3) wrong.push(`key ${key.toString('hex').slice(0, 12)} from peer ${from}: ${r.responsible[0] ?? 'none'}${live.some(i => ids[i] === r.responsible[0]) ? '' : ' (dead or unknown)'} instead of ${want[0]}, ${r.hops} hops`)
      }
      if (r.responsible.length !== want.length || want.some((id, j) => r.responsible[j] !== id)) failedK++
    } catch (err) {
      failed++
      failedK++
      errors++
      if (samples.size < 3) samples.add((err as Error).message)
    }
  })
  return {
    lookups: count,
    failed,
    failedK,
    failedErrors: errors,
    errorSamples: [...samples],
    wrongSamples: wrong,
    timeoutsMean: round(mean(timeouts), 2),
    timeoutsP95: timeouts.length > 0 ? quantile(timeouts, 0.95) : 0,
    hopsMean: round(mean(hops), 2),
    messagesMean: round(mean(messages), 1),
    lookupMsP50: ms.length > 0 ? round(median(ms), 0) : 0,
    lookupMsP95: ms.length > 0 ? round(quantile(ms, 0.95), 0) : 0,
    seconds: round((performance.now() - started) / 1000, 1)
  }
}

/** The markdown section for docs/benchmarks.md. */
export function renderFailure (r: FailureBenchResult): string[] {
  const rows = r.runs.flatMap(run => run.routableSeconds == null
    ? [`| ${run.overlay} | not routable in ${run.timeoutSeconds} s | - | - | - | - | - | - | - | - | - |`]
    : run.steps.map(s => `| ${run.overlay} | ${s.killedPercent}% (${s.killedPeers}) | ${s.lookups} | **${s.failed}** | ${s.failedErrors} | ${s.failedK} | ${s.timeoutsMean} | ${s.timeoutsP95} | ${s.hopsMean} | ${s.messagesMean} | ${s.lookupMsP50} / ${s.lookupMsP95} |`))
  const shares = r.runs.filter(run => run.share != null)
  return [
    `### Simultaneous failures without stabilization (the Chord paper's experiment: ${r.peers} peers in hosts of ${r.peersPerProcess}, Chord successor list r = ${r.successorListLength}, Kademlia k = 20; machine load average ${r.loadBefore} before, ${r.loadAfter} after)`,
    '',
    `Every peer's periodic maintenance paused (\`POST /api/v1/routing/maintenance\`), then whole hosts killed with SIGKILL (each host's peers are a random sample of the ring) until the share shown is dead, then the lookups shown (k = ${K}) of random keys from random live peers, ${r.inflight} in flight. The kills add up from step to step: with maintenance paused, killing 20 % in two steps leaves the state killing 20 % at once does (lookups drop the peers they find dead from the asking peer's routing state, as the paper's lookups do). A lookup failed, as the paper counts it, when it gave an error or a first responsible peer (Chord: the key's successor; Kademlia: the closest peer) other than the true one among the live peers; without the true k: an error, or responsible peers other than the true ${K} live ones, in order (a dead peer still named counts); timeouts: queries of a lookup that failed (a dead peer asked).`,
    '',
    '| overlay | killed | lookups | failed lookups | of them errors | without the true k | timeouts per lookup (mean) | timeouts p95 | hops mean | messages mean | lookup p50 / p95 (ms) |',
    '| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
    ...rows,
    '',
    ...(shares.length > 0
      ? [
          `Before the failures, on the same swarms: a ${shares[0].share?.fileMiB} MiB file shared on peer 0 (k = ${K}) and fetched by the last peer.`,
          '',
          '| overlay | routable in (s) | share (s) | blocks on their true k | fetch (s) |',
          '| --- | ---: | ---: | ---: | ---: |',
          ...shares.map(run => `| ${run.overlay} | ${run.routableSeconds} | ${run.share?.shareSeconds} | ${run.share?.blocksOnTrueK} of ${run.share?.blocks} | ${run.share?.fetchSeconds} |`),
          ''
        ]
      : []),
    ...measuredTimes(r),
    '![Failed lookups and timeouts per lookup against the share of peers killed, both overlays](plots/failure-lookups.svg)'
  ]
}

/** When each overlay's run was measured, when they come from separate runs (SHOAL_BENCH_FAILURE_KEEP). */
function measuredTimes (r: FailureBenchResult): string[] {
  const times = r.runs.filter(run => run.measuredAt != null).map(run => `${run.overlay} ${run.measuredAt!.slice(0, 16).replace('T', ' ')}`)
  if (new Set(r.runs.map(run => run.measuredAt?.slice(0, 16))).size < 2) return []
  return [`Runs measured separately (UTC): ${times.join('; ')}.`, '']
}

/** docs/plots/failure-lookups.svg: failed lookups (percent) and timeouts per lookup by share killed, both overlays. */
export function plotFailure (r: FailureBenchResult): string {
  const measured = r.runs.filter(run => run.steps.length > 0)
  return svgPlot({
    title: `Failed lookups (% of each step's) and timeouts per lookup, ${r.peers} peers, maintenance paused`,
    xLabel: 'peers killed (%)',
    yLabel: 'failed lookups (%) / timeouts per lookup',
    xScale: 'category',
    series: measured.flatMap(run => [
      { name: `${run.overlay} failed lookups (%)`, kind: 'bar' as const, decimals: 2, points: run.steps.map(s => ({ x: s.killedPercent, y: round(s.failed / Math.max(1, s.lookups) * 100, 2) })) },
      { name: `${run.overlay} timeouts per lookup`, decimals: 2, points: run.steps.map(s => ({ x: s.killedPercent, y: s.timeoutsMean })) }
    ])
  })
}

// `node bench/failure.ts` runs this benchmark alone and prints the section.
if (import.meta.main === true) {
  const result = await benchFailure(s => { process.stderr.write(s + '\n') })
  process.stdout.write(renderFailure(result).join('\n') + '\n')
}
