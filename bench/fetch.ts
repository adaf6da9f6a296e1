/**
 * Fetch benchmark, every peer its own process on loopback:
 *  - the ceiling: one raw libp2p stream (Shoal's TCP + Noise + Yamux) between
 *    two processes, bytes from memory (bench/stream-peer.ts): receiver MiB/s
 *    and receiver CPU-s per GiB. The two processes live as long as the swarm,
 *    are warmed up as the daemons are, and one stream runs right before each
 *    measured fetch: the machine moves too much between minutes for a
 *    ceiling measured apart from the fetches it is compared with;
 *  - `shoal fetch` of a random file from 1, 2, 4… holders, as a user runs it
 *    (the CLI, `--json`), with the MiB/s of the daemon's fetch, of the whole
 *    command (which also streams the file out of the daemon into PATH and
 *    fsyncs it), the ratio to the ceiling, and how many holders really sent
 *    bytes (the result's `peers`);
 *  - the same with 4 holders, one of them capped by `transfer.maxUploadRate`;
 *  - peak RSS of a freshly started fetcher daemon during a 1 GiB fetch;
 *  - a CPU profile of a fetcher daemon during one fetch from 4 holders,
 *    summarized by function and by package (bench/profile-summary.ts).
 *
 * Holders are made exactly: each shares the same file with `--replicas 0`
 * (kept on that peer only, announced as a provider), so the CID is the same
 * and the fetcher finds exactly those providers. Each measurement has a file
 * of its own: a fetcher announces what it fetched, and a stale provider
 * record from an earlier fetch must not add a holder to a later one. Between
 * runs the fetcher forgets the file (`rm` + `gc`) so every run downloads all
 * of it. Only the public CLI/API contract is used, so the bench measures
 * whichever fetch implementation the daemon runs.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { createHash, randomBytes } from 'node:crypto'
import { createReadStream } from 'node:fs'
import fs from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { ApiClient } from '../src/api/client.ts'
import { DAEMON_ENV, TS_ENTRY, type DaemonEntry } from '../src/swarm/daemon-bundle.ts'
import { swarmDown, swarmStopPeer, swarmUp, type SwarmUpResult } from '../src/swarm/process-swarm.ts'
import { renderProfile, summarizeProfile, type CpuProfile, type ProfileSummary } from './profile-summary.ts'
import { StreamPair, type StreamReceipt } from './stream-peer.ts'
import { svgPlot } from './svg-plot.ts'
import { cpuSecondsOf, median, procStatusKiB, round } from './stats.ts'

const MiB = 1024 * 1024
const GiB = 1024 * MiB
/** Swarm layout: fixed roles first, then the plain holders. */
const FETCHER = 0
const RSS_FETCHER = 1
const PROFILED_FETCHER = 2
const SLOW_HOLDER = 3
const FIRST_HOLDER = 4
/** The slow-holder, RSS and profile runs fetch from this many holders. */
const MIXED_HOLDERS = 4
const RSS_SAMPLE_MS = 100
/** The unmeasured first fetch, and the unmeasured first raw stream. */
const WARM_UP_MIB = 64

export interface StreamRun {
  mibs: number
  /** The receiver's. */
  cpuSecondsPerGiB: number
  /** Sender and receiver together (older results: absent). */
  pairCpuSecondsPerGiB?: number
}

export interface FetchRun {
  /** The daemon's fetch (the result's `seconds`). */
  seconds: number
  /** The whole `shoal fetch` command, as the user waits for it. */
  commandSeconds: number
  mibs: number
  /** Peers that sent bytes, and MiB from each. */
  holdersUsed: number
  peersMiB: Record<string, number>
  /** Blocks the fetcher already had (0 when the cleanup between runs worked). */
  local: number
  /** CPU of the fetcher daemon over the whole command, per GiB fetched. */
  fetcherCpuSecondsPerGiB: number
  /** CPU of the fetcher daemon during the download itself (its `timings.cpuMs`), per GiB (older results: absent). */
  fetchCpuSecondsPerGiB?: number
  /** CPU of the holder daemons over the whole command, per GiB fetched (older results: absent). */
  holdersCpuSecondsPerGiB?: number
  sameBytes: boolean
}

export interface HoldersResult {
  holders: number
  mibs: number
  commandMiBs: number
  /** Median of the raw streams run right before each of `runs` (older results: absent, the suite's ceiling). */
  ceilingMiBs?: number
  streams?: StreamRun[]
  ratioToCeiling: number
  fetcherCpuSecondsPerGiB: number
  /**
   * Medians of the CPU per GiB moved, of the fetch (fetcher and holders)
   * and of its streams (sender and receiver), and the fetch's MiB/s if it
   * kept all `cores` busy at its own cost: how close the ratio to one
   * stream can come on this machine (older results: absent).
   */
  cpu?: { fetchSecondsPerGiB: number, streamSecondsPerGiB: number, cores: number, boundMiBs: number, boundRatio: number }
  runs: FetchRun[]
}

export interface SmallFileResult {
  mib: number
  /** Medians, in ms: the daemon's fetch, its first block, and the whole `shoal fetch` command. */
  fetchMs: number
  firstBlockMs: number
  commandMs: number
  runs: Array<{ fetchMs: number, firstBlockMs: number, commandMs: number }>
}

export interface FetchBenchResult {
  fileMiB: number
  runs: number
  swarm: { peers: number, routableSeconds: number }
  /** Every raw stream run beside a fetch (older results: 5 runs before the swarm started). */
  ceiling: { mibs: number, cpuSecondsPerGiB: number, runs: StreamRun[], interleaved?: boolean }
  /** The same stream without the daemons' process settings (DAEMON_ENV), for context, before the swarm. */
  defaultEnvCeiling?: { mibs: number, cpuSecondsPerGiB: number }
  holders: HoldersResult[]
  /** Older results only: a fetcher with storage.sync off, from before fetched leaves were kept in the output file. */
  noSync?: HoldersResult[]
  slow: HoldersResult & { maxUploadRate: string, slowPeerMiB: number[] }
  /** Small files from one holder: how long a user waits (older results: absent). */
  small?: SmallFileResult[]
  rss: { fileMiB: number, holders: number, mibs: number, commandMiBs: number, sampledPeakMiB: number, hwmMiB: number, holdersUsed: number } | null
  profile: { fileMiB: number, holders: number, mibs: number, cpuSecondsPerGiB: number, holdersUsed: number, summary: ProfileSummary } | null
}

export async function benchFetch (log: (s: string) => void): Promise<FetchBenchResult> {
  const fileMiB = Number(process.env.SHOAL_BENCH_FETCH_MIB ?? 256)
  const runs = Number(process.env.SHOAL_BENCH_FETCH_RUNS ?? 5)
  const holderCounts = (process.env.SHOAL_BENCH_FETCH_HOLDERS ?? '1,2,4').split(',').map(Number).filter(n => Number.isInteger(n) && n > 0)
  const rssMiB = Number(process.env.SHOAL_BENCH_FETCH_RSS_MIB ?? 1024)
  const slowRate = process.env.SHOAL_BENCH_FETCH_SLOW_RATE ?? '2MiB'
  const smallMiB = (process.env.SHOAL_BENCH_FETCH_SMALL_MIB ?? '1,16').split(',').map(Number).filter(n => n > 0)
  const holders = Math.max(MIXED_HOLDERS, ...holderCounts)
  const work = await fs.mkdtemp(path.join(os.tmpdir(), 'shoal-bench-fetch-'))
  const dir = path.join(work, 'swarm')
  const profileDir = path.join(work, 'profile')
  let pair: StreamPair | undefined
  try {
    // for context: the same stream with Node's default process settings
    const plainPair = await StreamPair.start(streamEnv(null))
    const plainRuns: StreamRun[] = []
    try {
      await plainPair.run(WARM_UP_MIB)
      for (let i = 0; i < 3; i++) plainRuns.push(streamRun(await plainPair.run(fileMiB)))
    } finally {
      await plainPair.stop()
    }
    const defaultEnvCeiling = { mibs: round(median(plainRuns.map(r => r.mibs)), 1), cpuSecondsPerGiB: round(median(plainRuns.map(r => r.cpuSecondsPerGiB)), 2) }
    log(`  one libp2p stream, Node's default process settings: ${defaultEnvCeiling.mibs} MiB/s, receiver ${defaultEnvCeiling.cpuSecondsPerGiB} CPU-s per GiB`)

    const swarm = await swarmUp({
      peers: FIRST_HOLDER + holders,
      dir,
      peersPerProcess: 1,
      // no repair pass may start in the middle of a measurement
      config: { repair: { intervalSeconds: 86_400, maxPushesPerRun: 1024 } },
      peer: i => i === SLOW_HOLDER
        ? { config: { transfer: { maxUploadRate: slowRate } } }
        : i === PROFILED_FETCHER
          // from source: the profile then names our functions and files, not the bundle's minified ones
          ? { source: true, nodeArgs: ['--cpu-prof', `--cpu-prof-dir=${profileDir}`] }
          : undefined
    })
    log(`  ${swarm.peers.length} daemons routable in ${(swarm.routableMs / 1000).toFixed(1)} s`)
    // `shoal` as a user runs it (bin/shoal.mjs; the daemons run from the
    // bundle, which loads all of libp2p up front: ~0.1 s more per command)
    const entry: DaemonEntry = { script: TS_ENTRY, env: {} }
    // the ceiling's processes, with the daemons' settings, live beside the swarm
    pair = await StreamPair.start(streamEnv(DAEMON_ENV))
    const bench = new FetchBench(swarm, entry, work, runs, log, pair)
    const plain = (n: number): number[] => Array.from({ length: n }, (_, i) => FIRST_HOLDER + i)

    // every daemon's first fetch runs on cold code and new streams: one unmeasured fetch first; the raw stream likewise
    await bench.warmUp([SLOW_HOLDER, ...plain(holders)], WARM_UP_MIB)
    await pair.run(WARM_UP_MIB)

    const byHolders: HoldersResult[] = []
    for (const h of holderCounts) byHolders.push(await bench.series(`${h} holder${h === 1 ? '' : 's'}`, plain(h), fileMiB))

    const mixed = [SLOW_HOLDER, ...plain(MIXED_HOLDERS - 1)]
    const slowResult = await bench.series(`${MIXED_HOLDERS} holders, one capped at ${slowRate}/s`, mixed, fileMiB)
    const ceilingRuns = [...byHolders, slowResult].flatMap(h => h.streams ?? [])
    const ceiling = { mibs: round(median(ceilingRuns.map(r => r.mibs)), 1), cpuSecondsPerGiB: round(median(ceilingRuns.map(r => r.cpuSecondsPerGiB)), 2), runs: ceilingRuns, interleaved: true }
    const slow = {
      ...slowResult,
      maxUploadRate: slowRate,
      slowPeerMiB: slowResult.runs.map(r => r.peersMiB[`peer-${SLOW_HOLDER}`] ?? 0)
    }
    log(`    from the capped peer: ${slow.slowPeerMiB.join(', ')} MiB`)

    const small: SmallFileResult[] = []
    for (const mib of smallMiB) small.push(await bench.smallFile(plain(1), mib))

    const profile = await bench.profiled(PROFILED_FETCHER, plain(MIXED_HOLDERS), fileMiB, profileDir, dir)
    const rss = rssMiB > 0 ? await bench.memory(RSS_FETCHER, plain(MIXED_HOLDERS), rssMiB) : null
    return {
      fileMiB,
      runs,
      swarm: { peers: swarm.peers.length, routableSeconds: round(swarm.routableMs / 1000, 1) },
      ceiling,
      defaultEnvCeiling,
      holders: byHolders,
      slow,
      small,
      rss,
      profile
    }
  } finally {
    await pair?.stop()
    await swarmDown(dir).catch(() => {})
    await fs.rm(work, { recursive: true, force: true })
  }
}

/** The measurements that need the swarm. */
class FetchBench {
  private readonly swarm: SwarmUpResult
  private readonly entry: DaemonEntry
  private readonly work: string
  private readonly runs: number
  private readonly log: (s: string) => void
  private readonly pair: StreamPair
  private files = 0

  constructor (swarm: SwarmUpResult, entry: DaemonEntry, work: string, runs: number, log: (s: string) => void, pair: StreamPair) {
    this.swarm = swarm
    this.entry = entry
    this.work = work
    this.runs = runs
    this.log = log
    this.pair = pair
  }

  /**
   * Medians of `runs` CLI fetches by the fetcher of a new file held by
   * `holders`, each right after one raw stream of the same size: the ratio
   * is to the median of those streams.
   */
  async series (label: string, holders: number[], mib: number, fetcherIndex = FETCHER): Promise<HoldersResult> {
    const { cid, sha256 } = await this.seed(holders, mib)
    const fetcher = this.swarm.peers[fetcherIndex]
    const client = await ApiClient.fromRepo(fetcher.repo)
    const runs: FetchRun[] = []
    const streams: StreamRun[] = []
    try {
      for (let i = 0; i < this.runs; i++) {
        const stream = streamRun(await this.pair.run(mib))
        streams.push(stream)
        this.log(`  one libp2p stream: ${stream.mibs} MiB/s, receiver ${stream.cpuSecondsPerGiB} CPU-s per GiB, with the sender ${stream.pairCpuSecondsPerGiB}`)
        const out = path.join(this.work, 'fetched')
        const holdersCpu = (): number => holders.reduce((sum, i) => sum + cpuSecondsOf(this.swarm.peers[i].pid), 0)
        const cpuBefore = cpuSecondsOf(fetcher.pid)
        const holdersBefore = holdersCpu()
        const { result, seconds } = await this.cliFetch(fetcher.repo, cid, out, mib)
        const cpu = cpuSecondsOf(fetcher.pid) - cpuBefore
        const holdersCpuSeconds = holdersCpu() - holdersBefore
        const run: FetchRun = {
          seconds: result.seconds,
          commandSeconds: round(seconds, 2),
          mibs: round(mib / result.seconds, 1),
          holdersUsed: Object.values(result.peers).filter(b => b > 0).length,
          peersMiB: this.byLabel(result.peers),
          local: result.local,
          fetcherCpuSecondsPerGiB: round(cpu / (mib * MiB / GiB), 2),
          ...(result.timings?.cpuMs != null ? { fetchCpuSecondsPerGiB: round(result.timings.cpuMs / 1000 / (mib * MiB / GiB), 2) } : {}),
          holdersCpuSecondsPerGiB: round(holdersCpuSeconds / (mib * MiB / GiB), 2),
          sameBytes: await sha256Of(out) === sha256
        }
        runs.push(run)
        this.log(`  ${label}: fetch ${run.mibs} MiB/s (layout ${result.timings?.layoutMs} ms, first block ${result.timings?.firstBlockMs} ms, last ${result.timings?.lastBlockMs} ms), whole command ${round(mib / run.commandSeconds, 1)} MiB/s, ${run.holdersUsed} holder(s) sent bytes, fetcher ${run.fetcherCpuSecondsPerGiB} CPU-s/GiB (${run.fetchCpuSecondsPerGiB} during the download), holders ${run.holdersCpuSecondsPerGiB}${run.local > 0 ? `, ${run.local} blocks were already local` : ''}${run.sameBytes ? '' : ', WRONG BYTES'}`)
        // the next run must download everything again
        await fs.rm(out, { force: true })
        await client.remove(cid)
        await client.gc()
      }
    } finally {
      await this.unseed(holders, cid)
    }
    const mibs = round(mib / median(runs.map(r => r.seconds)), 1)
    const ceilingMiBs = round(median(streams.map(r => r.mibs)), 1)
    const fetchSecondsPerGiB = round(median(runs.map(r => (r.fetchCpuSecondsPerGiB ?? r.fetcherCpuSecondsPerGiB) + (r.holdersCpuSecondsPerGiB ?? 0))), 2)
    const cores = os.availableParallelism()
    const boundMiBs = round(cores / fetchSecondsPerGiB * 1024, 1)
    return {
      holders: holders.length,
      mibs,
      commandMiBs: round(mib / median(runs.map(r => r.commandSeconds)), 1),
      ceilingMiBs,
      streams,
      ratioToCeiling: round(mibs / ceilingMiBs, 2),
      fetcherCpuSecondsPerGiB: round(median(runs.map(r => r.fetcherCpuSecondsPerGiB)), 2),
      cpu: {
        fetchSecondsPerGiB,
        streamSecondsPerGiB: round(median(streams.map(r => r.pairCpuSecondsPerGiB ?? 0)), 2),
        cores,
        boundMiBs,
        boundRatio: round(boundMiBs / ceilingMiBs, 2)
      },
      runs
    }
  }

  /**
   * Fetches of a small file by the fetcher from `holders`, `runs` times
   * (forgotten between runs): at this size the fixed costs are the figure,
   * the daemon's (finding the holder, the first block, making the file
   * durable) and the command's (Node's start-up, the API call).
   */
  async smallFile (holders: number[], mib: number): Promise<SmallFileResult> {
    const { cid, sha256 } = await this.seed(holders, mib)
    const client = await ApiClient.fromRepo(this.swarm.peers[FETCHER].repo)
    const runs: SmallFileResult['runs'] = []
    try {
      for (let i = 0; i < this.runs; i++) {
        const out = path.join(this.work, 'small')
        const { result, seconds } = await this.cliFetch(this.swarm.peers[FETCHER].repo, cid, out, mib)
        if (await sha256Of(out) !== sha256) throw new Error(`the fetch of a ${mib} MiB file wrote wrong bytes`)
        runs.push({ fetchMs: Math.round(result.seconds * 1000), firstBlockMs: result.timings?.firstBlockMs ?? 0, commandMs: Math.round(seconds * 1000) })
        this.log(`  ${mib} MiB from ${holders.length} holder: fetch ${runs[i].fetchMs} ms (first block ${runs[i].firstBlockMs} ms), whole command ${runs[i].commandMs} ms`)
        await fs.rm(out, { force: true })
        await client.remove(cid)
        await client.gc()
      }
    } finally {
      await this.unseed(holders, cid)
    }
    const med = (k: 'fetchMs' | 'firstBlockMs' | 'commandMs'): number => Math.round(median(runs.map(r => r[k])))
    return { mib, fetchMs: med('fetchMs'), firstBlockMs: med('firstBlockMs'), commandMs: med('commandMs'), runs }
  }

  /** One unmeasured fetch by the fetcher from all of `holders`, then forgotten everywhere. */
  async warmUp (holders: number[], mib: number): Promise<void> {
    const { cid } = await this.seed(holders, mib)
    const fetcher = this.swarm.peers[FETCHER]
    try {
      const out = path.join(this.work, 'warm-up')
      await this.cliFetch(fetcher.repo, cid, out, mib)
      await fs.rm(out, { force: true })
      const client = await ApiClient.fromRepo(fetcher.repo)
      await client.remove(cid)
      await client.gc()
      this.log(`  warm-up: ${mib} MiB fetched from ${holders.length} holders, not measured`)
    } finally {
      await this.unseed(holders, cid)
    }
  }

  /**
   * One fetch through the API by a daemon started with --cpu-prof; the
   * daemon is then stopped so the profile is written, and only the samples
   * taken during the fetch are summarized.
   */
  async profiled (index: number, holders: number[], mib: number, profileDir: string, swarmDir: string): Promise<FetchBenchResult['profile']> {
    const { cid } = await this.seed(holders, mib)
    try {
      const peer = this.swarm.peers[index]
      const client = await ApiClient.fromRepo(peer.repo)
      const cpuBefore = cpuSecondsOf(peer.pid)
      const fromUs = Number(process.hrtime.bigint() / 1000n)
      // the same work as the measured runs: into the store and an output file
      const result = await client.fetch(cid, { path: path.join(swarmDir, 'profiled.out'), timeoutSeconds: timeoutSeconds(mib) })
      const toUs = Number(process.hrtime.bigint() / 1000n)
      const cpu = cpuSecondsOf(peer.pid) - cpuBefore
      await swarmStopPeer(swarmDir, index)
      const file = (await fs.readdir(profileDir)).find(f => f.endsWith('.cpuprofile'))
      if (file == null) {
        this.log(`  profile: the fetcher wrote no profile in ${profileDir}`)
        return null
      }
      const summary = summarizeProfile(JSON.parse(await fs.readFile(path.join(profileDir, file), 'utf8')) as CpuProfile, { fromUs, toUs })
      const profile = {
        fileMiB: mib,
        holders: holders.length,
        mibs: round(mib / result.seconds, 1),
        cpuSecondsPerGiB: round(cpu / (mib * MiB / GiB), 2),
        holdersUsed: Object.values(result.peers).filter(b => b > 0).length,
        summary
      }
      this.log(`  profiled fetch: ${profile.mibs} MiB/s, ${profile.cpuSecondsPerGiB} CPU-s/GiB; top: ${summary.functions.slice(0, 3).map(f => `${f.name} ${(f.share * 100).toFixed(0)}%`).join(', ')}`)
      return profile
    } finally {
      await this.unseed(holders, cid)
    }
  }

  /** Peak RSS of a fetcher daemon that has done nothing before this fetch. */
  async memory (index: number, holders: number[], mib: number): Promise<FetchBenchResult['rss']> {
    const { cid, sha256 } = await this.seed(holders, mib)
    try {
      const peer = this.swarm.peers[index]
      let sampledPeak = 0
      const timer = setInterval(() => { sampledPeak = Math.max(sampledPeak, procStatusKiB(peer.pid, 'VmRSS')) }, RSS_SAMPLE_MS)
      const out = path.join(this.work, 'fetched')
      let fetched
      try {
        fetched = await this.cliFetch(peer.repo, cid, out, mib)
      } finally {
        clearInterval(timer)
      }
      const same = await sha256Of(out) === sha256
      await fs.rm(out, { force: true })
      const rss = {
        fileMiB: mib,
        holders: holders.length,
        mibs: round(mib / fetched.result.seconds, 1),
        commandMiBs: round(mib / fetched.seconds, 1),
        sampledPeakMiB: Math.round(sampledPeak / 1024),
        hwmMiB: Math.round(procStatusKiB(peer.pid, 'VmHWM') / 1024),
        holdersUsed: Object.values(fetched.result.peers).filter(b => b > 0).length
      }
      this.log(`  ${mib} MiB from ${holders.length} holders: fetcher peak RSS ${rss.sampledPeakMiB} MiB sampled (VmHWM ${rss.hwmMiB} MiB), ${rss.mibs} MiB/s${same ? '' : ', WRONG BYTES'}`)
      return rss
    } finally {
      await this.unseed(holders, cid)
    }
  }

  /** Bytes per peer ID as MiB per swarm peer (`peer-4`: what swarm.json calls it). */
  byLabel (peers: Record<string, number>): Record<string, number> {
    const label = (id: string): string => `peer-${this.swarm.peers.find(p => p.peerId === id)?.index ?? id}`
    return Object.fromEntries(Object.entries(peers).map(([id, bytes]) => [label(id), round(bytes / MiB, 1)]))
  }

  /** A new random file, shared by each of `holders` with replicas 0: exactly those hold it. */
  private async seed (holders: number[], mib: number): Promise<{ cid: string, sha256: string }> {
    const file = path.join(this.work, `file-${this.files++}`)
    const sha256 = await writeRandomFile(file, mib)
    const shared = await Promise.all(holders.map(async i => (await ApiClient.fromRepo(this.swarm.peers[i].repo)).share({ path: file, replicas: 0 })))
    await fs.rm(file)
    const cids = new Set(shared.map(s => s.cid))
    if (cids.size !== 1) throw new Error(`holders got different CIDs for one file: ${[...cids].join(', ')}`)
    // the holders' imports must not be written back during the fetch
    spawnSync('sync')
    return { cid: shared[0].cid, sha256 }
  }

  /** Frees the holders' disk; a failure here is logged, never hides the measurement's own error. */
  private async unseed (holders: number[], cid: string): Promise<void> {
    await Promise.all(holders.map(async i => {
      const client = await ApiClient.fromRepo(this.swarm.peers[i].repo)
      await client.remove(cid)
      await client.gc()
    })).catch((err: Error) => { this.log(`  could not remove ${cid} from its holders: ${err.message}`) })
  }

  /** `shoal --json --repo REPO fetch CID -o OUT`, timed from spawn to exit. */
  private async cliFetch (repo: string, cid: string, out: string, mib: number): Promise<{ result: CliFetchResult, seconds: number }> {
    const started = performance.now()
    const child = spawn(process.execPath, [this.entry.script, '--json', '--repo', repo, 'fetch', cid, '-o', out, '--timeout', String(timeoutSeconds(mib))], {
      env: { ...process.env, ...this.entry.env }, stdio: ['ignore', 'pipe', 'pipe']
    })
    let stdout = ''
    let stderr = ''
    child.stdout!.on('data', (d: Buffer) => { stdout += d.toString() })
    child.stderr!.on('data', (d: Buffer) => { stderr += d.toString() })
    const code = await exitOf(child)
    const seconds = (performance.now() - started) / 1000
    if (code !== 0) throw new Error(`shoal fetch exited ${code}: ${stderr.trim()}`)
    return { result: JSON.parse(stdout) as CliFetchResult, seconds }
  }
}

/** What `shoal fetch --json` prints. */
interface CliFetchResult {
  cid: string
  path: string
  size: number
  seconds: number
  peers: Record<string, number>
  blocks: number
  local: number
  timings?: { layoutMs: number, firstBlockMs?: number, lastBlockMs?: number, cpuMs?: number }
}

/** Up to 1 s per MiB: any fetch slower than 1 MiB/s is broken, not slow. */
function timeoutSeconds (mib: number): number {
  return 60 + Math.ceil(mib)
}

/**
 * The environment of the raw-stream processes. `env`: the daemons' settings
 * (DAEMON_ENV; stream-peer.ts also applies their V8 flags), so the ceiling
 * is the same stack run the same way; `null`: Node's defaults (what
 * PRODUCT.md's reference figure measured), the daemons' settings taken out
 * of this process's environment if it has them.
 */
function streamEnv (env: Record<string, string> | null): Record<string, string | undefined> {
  const spawnEnv: Record<string, string | undefined> = { ...process.env, ...env }
  if (env == null) {
    for (const key of Object.keys(DAEMON_ENV)) delete spawnEnv[key]
    spawnEnv.SHOAL_BENCH_NODE_DEFAULTS = '1'
  }
  return spawnEnv
}

function streamRun (receipt: StreamReceipt & { pairCpuSeconds?: number }): StreamRun {
  return {
    mibs: round(receipt.bytes / MiB / receipt.seconds, 1),
    cpuSecondsPerGiB: round(receipt.cpuSeconds / (receipt.bytes / GiB), 2),
    ...(receipt.pairCpuSeconds != null ? { pairCpuSecondsPerGiB: round(receipt.pairCpuSeconds / (receipt.bytes / GiB), 2) } : {})
  }
}

/** The markdown section for docs/benchmarks.md. */
export function renderFetch (r: FetchBenchResult): string[] {
  const target = r.holders.find(h => h.holders === 4)
  const share = (run: FetchRun): string => {
    const total = Object.values(run.peersMiB).reduce((a, b) => a + b, 0)
    return total > 0 ? `${Math.round(Math.max(...Object.values(run.peersMiB)) / total * 100)}%` : '-'
  }
  const row = (label: string, h: HoldersResult): string =>
    `| ${label} | **${h.mibs}** | ${h.ceilingMiBs ?? r.ceiling.mibs} | ${h.ratioToCeiling} | ${h.commandMiBs} | ${h.runs.map(x => x.holdersUsed).join(', ')} | ${h.runs.map(share).join(', ')} | ${h.fetcherCpuSecondsPerGiB} |`
  const wrong = [...r.holders, r.slow].flatMap(h => h.runs).filter(x => !x.sameBytes || x.local > 0).length
  const lines = [
    `### Fetch (\`shoal fetch\` of a ${r.fileMiB} MiB random file, every peer its own daemon, median of ${r.runs})`,
    '',
    r.ceiling.interleaved === true
      ? `Ceiling, measured beside the fetches: one libp2p stream (TCP + Noise + Yamux) between two processes that live as long as the swarm, run with the daemons' process settings (\`DAEMON_ENV\`: malloc on huge pages, no io_uring; their V8 flags), warmed up by one unmeasured stream as the daemons are by one fetch; one ${r.fileMiB} MiB stream runs right before each measured fetch, and each row's ratio is to the median of its own ${r.runs} streams. Over all ${r.ceiling.runs.length} streams: median **${r.ceiling.mibs} MiB/s** (${Math.min(...r.ceiling.runs.map(x => x.mibs))}-${Math.max(...r.ceiling.runs.map(x => x.mibs))}); the receiver spends **${r.ceiling.cpuSecondsPerGiB} CPU-s per GiB**.${r.defaultEnvCeiling != null ? ` With Node's default settings (a pair of its own, warmed up the same way, before the swarm starts) the same stream moves ${r.defaultEnvCeiling.mibs} MiB/s (receiver ${r.defaultEnvCeiling.cpuSecondsPerGiB} CPU-s per GiB).` : ''}`
      : `Ceiling in the same run: one libp2p stream (TCP + Noise + Yamux) between two processes, run with the daemons' process settings (\`DAEMON_ENV\`: malloc on huge pages, no io_uring), moves **${r.ceiling.mibs} MiB/s**; its receiver spends **${r.ceiling.cpuSecondsPerGiB} CPU-s per GiB**.${r.defaultEnvCeiling != null ? ` With Node's default settings the same stream moves ${r.defaultEnvCeiling.mibs} MiB/s (receiver ${r.defaultEnvCeiling.cpuSecondsPerGiB} CPU-s per GiB).` : ''}`,
    `Swarm: ${r.swarm.peers} daemons (routable in ${r.swarm.routableSeconds} s), holders share with \`--replicas 0\`.`,
    '',
    '![fetch MiB/s against holders, with the one-stream ceiling](plots/fetch-throughput.svg)',
    '',
    '"fetch" is the daemon\'s fetch (the result\'s `seconds`); "whole command" is `shoal fetch` from start to exit (the start-up of Node, the API call; the daemon itself writes PATH, through a temporary file it fsyncs and renames). "holders used": peers that sent bytes, per run; "busiest": its share of the bytes, per run. Fetcher CPU is the daemon\'s over the whole command.',
    '',
    '| holders | fetch MiB/s | one stream, alongside, MiB/s | fetch / one stream | whole command MiB/s | holders used | busiest | fetcher CPU-s per GiB |',
    '| --- | ---: | ---: | ---: | ---: | --- | --- | ---: |',
    ...r.holders.map(h => row(String(h.holders), h)),
    row(`${r.slow.holders}, one capped at ${r.slow.maxUploadRate}/s`, r.slow),
    ...(r.noSync ?? []).map(h => row(`${h.holders}, fetcher with \`storage.sync\` off`, h)),
    '',
    `With one of ${r.slow.holders} holders capped (\`transfer.maxUploadRate\` = ${r.slow.maxUploadRate}): **${r.slow.mibs} MiB/s**${target != null ? ` (${round(r.slow.mibs / target.mibs, 2)} of 4 even holders)` : ''}; taken from the capped peer per run: ${r.slow.slowPeerMiB.join(', ')} MiB of ${r.fileMiB}.`,
    ...renderCpuBound([...r.holders, r.slow]),
    ...(wrong > 0 ? ['', `**${wrong} run(s) wrote wrong bytes or found blocks already local: those figures are not to be trusted.**`] : [])
  ]
  if (r.small != null && r.small.length > 0) {
    lines.push('',
      `Small files from 1 holder (median of ${r.runs}; ms): what a user waits for when the size is not the figure.`,
      '',
      '| file | daemon\'s fetch | its first block | whole `shoal fetch` command |',
      '| --- | ---: | ---: | ---: |',
      ...r.small.map(x => `| ${x.mib} MiB | ${x.fetchMs} | ${x.firstBlockMs} | ${x.commandMs} |`))
  }
  if (r.rss != null) {
    lines.push('', `Memory: a fetcher daemon started fresh with the swarm, fetching ${r.rss.fileMiB} MiB from ${r.rss.holders} holders (${r.rss.holdersUsed} sent bytes) at ${r.rss.mibs} MiB/s (whole command ${r.rss.commandMiBs}): peak RSS **${r.rss.sampledPeakMiB} MiB** sampled every ${RSS_SAMPLE_MS} ms, VmHWM ${r.rss.hwmMiB} MiB (target: under 300 MiB).`)
  }
  if (r.profile != null) {
    const p = r.profile
    lines.push('',
      `#### Where the fetcher's CPU goes (one ${p.fileMiB} MiB fetch from ${p.holders} holders, ${p.holdersUsed} sent bytes)`,
      '',
      `\`--cpu-prof\` on a fetcher daemon run from source, samples cut to the fetch (\`POST /api/v1/fetch\`): ${p.mibs} MiB/s with the profiler on, ${p.cpuSecondsPerGiB} CPU-s per GiB (one stream's receiver: ${r.ceiling.cpuSecondsPerGiB}); busy ${round(p.summary.busyMs / 1000, 1)} s of ${round(p.summary.sampledMs / 1000, 1)} s on the main thread. Self time, shares of busy time:`,
      '',
      ...renderProfile(p.summary))
  }
  return lines
}

/**
 * What the ratio to one stream can reach on this machine: the CPU each
 * moves a GiB with, and the fetch's speed if it kept every core busy.
 */
function renderCpuBound (rows: HoldersResult[]): string[] {
  const measured = rows.filter(h => h.cpu != null)
  if (measured.length === 0) return []
  const cores = measured[0].cpu!.cores
  return [
    '',
    `CPU per GiB moved (every thread): the fetch's is the fetcher daemon's during the download (its \`timings.cpuMs\`) and the holders' over the whole command (from /proc; they do nothing else meanwhile), the stream's is its sender's and receiver's (from /proc, request to report). Both ends run on the same ${cores} cores, so a fetch that kept them all busy at its own cost would move ${cores} / (its CPU-s per GiB) GiB/s; that is as close to one stream as it can come here, whatever the scheduling.`,
    '',
    `| holders | fetch: fetcher + holders CPU-s per GiB | one stream: sender + receiver CPU-s per GiB | fetch MiB/s with ${cores} cores busy | that / one stream |`,
    '| --- | ---: | ---: | ---: | ---: |',
    ...measured.map(h => `| ${h.holders}${h === rows[rows.length - 1] ? ' (one capped)' : ''} | ${h.cpu!.fetchSecondsPerGiB} | ${h.cpu!.streamSecondsPerGiB} | ${h.cpu!.boundMiBs} | ${h.cpu!.boundRatio} |`)
  ]
}

/** docs/plots/fetch-throughput.svg: fetch MiB/s by holders, under the one-stream ceiling. */
export function plotFetch (r: FetchBenchResult): string {
  return svgPlot({
    title: `shoal fetch of a ${r.fileMiB} MiB file, peers in own processes (median of ${r.runs})`,
    xLabel: 'holders',
    yLabel: 'MiB/s',
    xScale: 'category',
    series: [
      { name: 'shoal fetch (daemon)', points: r.holders.map(h => ({ x: h.holders, y: h.mibs })) },
      { name: 'whole command', points: r.holders.map(h => ({ x: h.holders, y: h.commandMiBs })), color: '#7f7f7f', valueLabels: false },
      ...(r.ceiling.interleaved === true ? [{ name: 'one stream, alongside', points: r.holders.map(h => ({ x: h.holders, y: h.ceilingMiBs ?? r.ceiling.mibs })), color: '#d62728', valueLabels: false }] : [])
    ],
    references: [
      ...(r.ceiling.interleaved === true ? [] : [{ y: r.ceiling.mibs, label: 'one libp2p stream', color: '#d62728', dashed: false }]),
      { y: round((r.holders.find(h => h.holders === 4)?.ceilingMiBs ?? r.ceiling.mibs) * 0.8, 1), label: 'target with 4 holders: 0.8 of one stream' }
    ]
  })
}

async function writeRandomFile (file: string, mib: number): Promise<string> {
  const hash = createHash('sha256')
  const handle = await fs.open(file, 'w')
  try {
    for (let left = mib * MiB; left > 0; left -= 16 * MiB) {
      const piece = randomBytes(Math.min(16 * MiB, left))
      hash.update(piece)
      await handle.write(piece)
    }
  } finally {
    await handle.close()
  }
  return hash.digest('hex')
}

async function sha256Of (file: string): Promise<string> {
  const hash = createHash('sha256')
  for await (const piece of createReadStream(file, { highWaterMark: 4 * MiB })) hash.update(piece as Buffer)
  return hash.digest('hex')
}

async function exitOf (child: ChildProcess): Promise<number | null> {
  if (child.exitCode != null || child.signalCode != null) return child.exitCode
  return new Promise(resolve => child.once('exit', code => { resolve(code) }))
}

// `node bench/fetch.ts` runs this benchmark alone and prints the section.
if (import.meta.main === true) {
  const result = await benchFetch(s => { process.stderr.write(s + '\n') })
  process.stdout.write(renderFetch(result).join('\n') + '\n')
}
