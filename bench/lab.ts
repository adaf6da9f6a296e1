/**
 * The lab benchmark (`SHOAL_BENCH=lab`): fetches, lookups, healing and churn
 * on a lab swarm (`swarm up --netns`), every peer its own host with a real
 * rate cap and delay on its link (docs/lab.md). Needs root.
 *
 *   SHOAL_BENCH_LAB_PEERS=20          peers in the lab
 *   SHOAL_BENCH_LAB_MIB=64            file fetched in the aggregation, slow-holder and distance runs
 *   SHOAL_BENCH_LAB_UPLINK_MIB=16     holders' uplink, MiB/s
 *   SHOAL_BENCH_LAB_LATENCY_MS=25     one-way delay of the distance runs
 *   SHOAL_BENCH_LAB_RUNS=3            fetches per figure (the median; the fetcher drops the file in between)
 *   SHOAL_BENCH_LAB_LOOKUPS=40        DHT lookups per figure
 *   SHOAL_BENCH_LAB_DHT_PEERS=100     a second lab for lookups only (its default host layout); empty: skip
 *   SHOAL_BENCH_LAB_CHURN=0,0.1,0.3   churn rates (fraction of the peers per minute); empty: skip
 *   SHOAL_BENCH_LAB_CHURN_SECONDS=60  how long each churn rate runs
 *
 * Every goal is a ratio to something measured or configured in the same run:
 * the holders' configured uplinks, the same fetch without delay, the other
 * holders' sum, the true k closest of the whole swarm.
 */
import { spawn } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import fs from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { peerIdFromString } from '@libp2p/peer-id'
import { CID } from 'multiformats/cid'
import * as raw from 'multiformats/codecs/raw'
import { sha256 } from 'multiformats/hashes/sha2'
import { ApiClient } from '../src/api/client.ts'
import type { FetchResult } from '../src/exchange/fetcher.ts'
import { closestByXor } from '../src/routing/kademlia/kad-distance.ts'
import { swarmChurn, type ChurnEvent } from '../src/swarm/lab/churn.ts'
import { swarmHeal, swarmLink, swarmPartition } from '../src/swarm/lab/lab-swarm.ts'
import { swarmKillPeer, swarmStartPeer } from '../src/swarm/peer-restart.ts'
import { swarmDown, swarmUp, type SwarmUpResult } from '../src/swarm/process-swarm.ts'
import { round } from './stats.ts'
import { svgPlot } from './svg-plot.ts'

const MiB = 1024 * 1024
const GiB = 1024 * MiB
const env = (name: string, fallback: string): string => process.env[name] ?? fallback
const PEERS = Number(env('SHOAL_BENCH_LAB_PEERS', '20'))
const FILE_MIB = Number(env('SHOAL_BENCH_LAB_MIB', '64'))
const UPLINK = Number(env('SHOAL_BENCH_LAB_UPLINK_MIB', '16')) * MiB
const FETCHER_DOWNLINK = GiB
const SLOW_UPLINK = MiB
const LATENCY_MS = Number(env('SHOAL_BENCH_LAB_LATENCY_MS', '25'))
const RUNS = Number(env('SHOAL_BENCH_LAB_RUNS', '3'))
const LOOKUPS = Number(env('SHOAL_BENCH_LAB_LOOKUPS', '40'))
const DHT_PEERS = env('SHOAL_BENCH_LAB_DHT_PEERS', '100').split(',').filter(s => s.trim() !== '').map(Number)
const CHURN_RATES = env('SHOAL_BENCH_LAB_CHURN', '0,0.1,0.3').split(',').filter(s => s.trim() !== '').map(Number)
const CHURN_SECONDS = Number(env('SHOAL_BENCH_LAB_CHURN_SECONDS', '60'))
const HOLDER_COUNTS = [1, 2, 4, 8]
const BIG_FILE_FACTOR = 4
/** Holders are peers 1..8, the fetcher peer 0. */
const FETCHER = 0
const HEAL_FILE_MIB = 8
const HEAL_TIMEOUT_MS = 180_000
/** How long the share inside the partition may take before the heal. */
const HEAL_SHARE_WAIT_MS = 45_000
const CHURN_FILE_MIB = 16
const CHURN_UPLINK = 2 * MiB
/** Fetchers of the churn runs (never killed), each fetching its own file again and again. */
const CHURN_FETCHERS = [0, 1, 2]
const CHURN_REPAIR_TIMEOUT_MS = 180_000
/** The fetch through kills and a cut: its file, the fetcher's downlink, how long the cut lasts. */
const SURVIVE_FILE_MIB = 16
const SURVIVE_DOWNLINK = MiB
const SURVIVE_CUT_MS = 10_000
const RAW_PORT = 5001

export interface LabFetch {
  holders: number
  /** The ideal: the sum of the holders' configured uplinks, MiB/s. */
  idealMiBs: number
  /** Payload over the transfer: from the first request to the last block, MiB/s. */
  mibs: number
  /** The whole fetch (the result's seconds), MiB/s. */
  wholeMiBs: number
  seconds: number
  /** MiB each holder sent, by holder index. */
  sentMiB: Record<string, number>
  /** Each holder's rate while busy, as the fetcher measured it, MiB/s. */
  holderMiBs: Record<string, number>
  /** The fetcher's CPU time over the fetch's wall time (its `timings.cpuMs`; 1 = one core busy throughout). */
  fetcherCpuShare: number | null
  /** CPU time of every lab daemon (fetcher and holders) over the fetch's wall time, in cores. */
  daemonsCpuCores: number | null
  /** The holders' share of that. */
  holdersCpuCores: number | null
  /** How busy the whole machine was during the fetch (every process, other users' too), of all its cores (1: saturated). */
  machineBusy: number | null
  fileMiB: number
  sameSize: boolean
  /** Transfer MiB/s of every run (this row is the median one). */
  runs: number[]
}

export interface LabBenchResult {
  peers: number
  fileMiB: number
  uplinkMiBs: number
  fetcherDownlinkMiBs: number
  latencyMs: number
  routableSeconds: number
  loadAverage: number[]
  /** One TCP flow through one holder's uplink cap, MiB/s (null: not measured). */
  rawFlowMiBs: number | null
  aggregation: LabFetch[]
  /** The most holders with a larger file (one run). */
  bigFile: LabFetch
  /** The same 4-holder fetch with no cap on any link: what this machine moves in this run. */
  uncapped: LabFetch
  slow: { fetch: LabFetch, othersMiBs: number, slowMiBs: number }
  distance: { without: LabFetch, with: LabFetch }
  lookups: Array<{ latencyMs: number, peers: number, hosts?: number, lookups: number, msP50: number, msP95: number, hopsP50: number, hopsP95: number, hopsMax: number }>
  heal: { groups: string, sharer: number, blocks: number, k: number, shareSecondsInPartition: number | null, shareSeconds: number | null, shareWaitSeconds: number, onTrueClosestAtHeal: number, statSecondsAtHeal: number, seconds: number | null, passes: number, onTrueClosestAtEnd: number, repairPushed: number }
  /** A fetch through two holder kills and a partition that cuts the fetcher off. */
  survive: { fileMiB: number, downlinkMiBs: number, killed: number[], cutSeconds: number, bytesAtCut: number, bytesAtHeal: number, seconds: number | null, afterHealSeconds: number | null, exact: boolean, error: string | null }
  churn: Array<{ ratePerMinute: number, seconds: number, kills: number, starts: number, fetches: number, completed: number, exact: number, secondsP50: number | null, secondsMax: number | null, errors: string[], repairSeconds: number | null, repairPasses: number, onTrueKAtEnd: number, blocks: number }>
}

export async function benchLab (log: (s: string) => void): Promise<LabBenchResult> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'shoal-bench-lab-'))
  const swarmDir = path.join(dir, 'swarm')
  const files = path.join(dir, 'files')
  await fs.mkdir(files)
  let down = false
  try {
    const swarm = await swarmUp({
      peers: PEERS,
      dir: swarmDir,
      peersPerProcess: 1,
      lab: {},
      peer: i => i === FETCHER ? { link: { downlink: FETCHER_DOWNLINK } } : i <= 8 ? { link: { uplink: UPLINK } } : undefined
    })
    log(`  ${PEERS} lab peers routable in ${(swarm.routableMs / 1000).toFixed(1)} s`)
    const clients = await Promise.all(swarm.peers.map(async p => ApiClient.fromRepo(p.repo)))
    const byId = new Map(swarm.peers.map(p => [p.peerId, p.index]))
    const newFile = async (mib: number): Promise<string> => {
      const file = path.join(files, `${randomBytes(6).toString('hex')}.bin`)
      await fs.writeFile(file, randomBytes(mib * MiB))
      return file
    }
    /** A file shared with replicas 0 on exactly these holders, fetched by the fetcher. */
    const fetchFrom = async (holders: number[], idealMiBs: number, label: string, mib = FILE_MIB, runCount = RUNS): Promise<LabFetch> => {
      const file = await newFile(mib)
      let cid = ''
      for (const h of holders) cid = (await clients[h].share({ path: file, replicas: 0 })).cid
      await fs.rm(file)
      const runs: LabFetch[] = []
      for (let run = 0; run < runCount; run++) {
        const cpu = await cpuSample(swarm.peers.map(p => p.pid))
        const result = await clients[FETCHER].fetch(cid, { path: path.join(dir, 'out.bin'), force: true, timeoutSeconds: 120 })
        const used = cpuUsed(cpu, await cpuSample(swarm.peers.map(p => p.pid)), holders)
        await fs.rm(path.join(dir, 'out.bin'), { force: true })
        // the fetcher is no holder (replicas 0 elsewhere): dropping the file makes the next run fetch it all again
        await clients[FETCHER].remove(cid)
        await clients[FETCHER].gc()
        runs.push({ ...summarize(result, holders.length, idealMiBs, byId, mib), ...used })
      }
      const f = { ...[...runs].sort((a, b) => a.mibs - b.mibs)[Math.floor(runs.length / 2)], runs: runs.map(x => x.mibs) }
      log(`  ${label}: ${f.mibs} MiB/s over the transfer (runs ${f.runs.join(', ')}; ideal ${f.idealMiBs}), whole fetch ${f.wholeMiBs} MiB/s, fetcher CPU ${f.fetcherCpuShare}, daemons ${f.daemonsCpuCores} cores (holders ${f.holdersCpuCores}), machine busy ${f.machineBusy}, sent ${JSON.stringify(f.sentMiB)} MiB at ${JSON.stringify(f.holderMiBs)} MiB/s${f.sameSize ? '' : ', WRONG SIZE'}`)
      return f
    }
    const holderList = (n: number): number[] => Array.from({ length: n }, (_, i) => i + 1)
    const uplinkMiBs = UPLINK / MiB

    const rawFlowMiBs = await rawFlow(swarm, 1, FETCHER, 4 * UPLINK).catch((err: Error) => { log(`  raw flow: ${err.message}`); return null })
    log(`  one TCP flow through a ${uplinkMiBs} MiB/s uplink: ${rawFlowMiBs} MiB/s`)

    const aggregation: LabFetch[] = []
    for (const n of HOLDER_COUNTS) aggregation.push(await fetchFrom(holderList(n), n * uplinkMiBs, `${n} holder(s)`))
    // the largest count again with a file BIG_FILE_FACTOR times larger: how much of the shortfall is the start of the transfer
    const most = HOLDER_COUNTS[HOLDER_COUNTS.length - 1]
    const bigFile = await fetchFrom(holderList(most), most * uplinkMiBs, `${most} holders, ${BIG_FILE_FACTOR * FILE_MIB} MiB`, BIG_FILE_FACTOR * FILE_MIB, 1)

    // no cap anywhere: what the processes move on this machine right now
    await swarmLink(swarmDir, 'all', { uplink: null })
    const uncapped = await fetchFrom(holderList(4), 0, '4 holders, no cap')
    for (const h of holderList(8)) await swarmLink(swarmDir, h, { uplink: UPLINK })

    // one of four holders at 1 MiB/s
    await swarmLink(swarmDir, 4, { uplink: SLOW_UPLINK })
    const slowFetch = await fetchFrom(holderList(4), 3 * uplinkMiBs + SLOW_UPLINK / MiB, 'one slow holder of 4')
    await swarmLink(swarmDir, 4, { uplink: UPLINK })

    // distance: the same 4-holder fetch without and with the delay on every link
    const without = await fetchFrom(holderList(4), 4 * uplinkMiBs, '4 holders, no delay')
    const lookups: LabBenchResult['lookups'] = []
    lookups.push(await lookupRun(swarm, clients, 0, log))
    await swarmLink(swarmDir, 'all', { latencyMs: LATENCY_MS })
    await sleep(1000) // each daemon follows its link file within a fraction of a second
    const withDelay = await fetchFrom(holderList(4), 4 * uplinkMiBs, `4 holders, ${LATENCY_MS} ms one-way`)
    lookups.push(await lookupRun(swarm, clients, LATENCY_MS, log))
    await swarmLink(swarmDir, 'all', { latencyMs: 0 })
    await sleep(1000)

    const heal = await healRun(swarm, swarmDir, clients, newFile, log)
    await swarmLink(swarmDir, 'all', { uplink: CHURN_UPLINK })
    const survive = await surviveRun(swarm, swarmDir, clients, log)
    const churn: LabBenchResult['churn'] = []
    for (const rate of CHURN_RATES) churn.push(await churnRun(swarm, swarmDir, clients, rate, log))

    await swarmDown(swarmDir)
    down = true
    for (const n of DHT_PEERS) lookups.push(...await lookupLab(n, path.join(dir, `dht-${n}`), log))

    return {
      peers: PEERS,
      fileMiB: FILE_MIB,
      uplinkMiBs,
      fetcherDownlinkMiBs: FETCHER_DOWNLINK / MiB,
      latencyMs: LATENCY_MS,
      routableSeconds: round(swarm.routableMs / 1000, 1),
      loadAverage: os.loadavg().map(x => round(x, 1)),
      rawFlowMiBs,
      aggregation,
      bigFile,
      uncapped,
      slow: { fetch: slowFetch, othersMiBs: 3 * uplinkMiBs, slowMiBs: SLOW_UPLINK / MiB },
      distance: { without, with: withDelay },
      lookups,
      heal,
      survive,
      churn
    }
  } finally {
    if (!down) await swarmDown(swarmDir).catch((err: Error) => { log(`  swarm down: ${err.message}`) })
    await fs.rm(dir, { recursive: true, force: true })
  }
}

function summarize (result: FetchResult, holders: number, idealMiBs: number, byId: Map<string, number>, mib: number): LabFetch {
  const transferMs = (result.timings.lastBlockMs ?? result.seconds * 1000) - (result.timings.firstSourceMs ?? 0)
  const sentMiB: Record<string, number> = {}
  for (const [id, bytes] of Object.entries(result.peers)) sentMiB[String(byId.get(id) ?? id)] = round(bytes / MiB, 1)
  const holderMiBs: Record<string, number> = {}
  for (const [id, report] of Object.entries(result.sources)) if (report.bytes > 0) holderMiBs[String(byId.get(id) ?? id)] = round(report.rate / MiB, 1)
  return {
    holders,
    idealMiBs: round(idealMiBs, 2),
    mibs: round(result.size / MiB / (transferMs / 1000), 2),
    wholeMiBs: round(result.size / MiB / result.seconds, 2),
    seconds: round(result.seconds, 2),
    sentMiB,
    holderMiBs,
    fetcherCpuShare: result.timings.cpuMs != null ? round(result.timings.cpuMs / (result.seconds * 1000), 2) : null,
    daemonsCpuCores: null,
    holdersCpuCores: null,
    machineBusy: null,
    runs: [],
    fileMiB: mib,
    sameSize: result.size === mib * MiB
  }
}

/** One raw TCP flow from peer `from`'s host to peer `to`'s: what the uplink cap lets through, MiB/s. */
async function rawFlow (swarm: SwarmUpResult, from: number, to: number, bytes: number): Promise<number> {
  const ns = (i: number): string => swarm.lab!.hosts[swarm.peers[i].host!].namespace
  const address = swarm.peers[to].address!
  const receiver = `const s=require('net').createServer(c=>{let n=0,t0=0;c.on('data',d=>{if(t0===0)t0=performance.now();n+=d.length});c.on('end',()=>{process.stdout.write(JSON.stringify({n,ms:performance.now()-t0}));s.close()})});s.listen(${RAW_PORT},'${address}',()=>process.stdout.write('ready\\n'))`
  const sender = `const c=require('net').connect(${RAW_PORT},'${address}',()=>{const b=Buffer.alloc(1<<20);let left=${bytes};const go=()=>{while(left>0){left-=b.length;if(!c.write(b))return c.once('drain',go)}c.end()};go()})`
  const rx = spawn('ip', ['netns', 'exec', ns(to), process.execPath, '-e', receiver], { stdio: ['ignore', 'pipe', 'inherit'] })
  let out = ''
  rx.stdout.on('data', (d: Buffer) => { out += d.toString() })
  await waitUntil(() => out.startsWith('ready'), 10_000)
  const tx = spawn('ip', ['netns', 'exec', ns(from), process.execPath, '-e', sender], { stdio: 'inherit' })
  await new Promise(resolve => rx.once('exit', resolve))
  await new Promise(resolve => tx.exitCode != null ? resolve(null) : tx.once('exit', resolve))
  const { n, ms } = JSON.parse(out.slice('ready\n'.length)) as { n: number, ms: number }
  return round(n / MiB / (ms / 1000), 2)
}

async function lookupRun (swarm: SwarmUpResult, clients: ApiClient[], latencyMs: number, log: (s: string) => void): Promise<LabBenchResult['lookups'][number]> {
  const ms: number[] = []
  const hops: number[] = []
  for (let i = 0; i < LOOKUPS; i++) {
    const cid = CID.createV1(raw.code, await sha256.digest(randomBytes(32)))
    const r = await clients[i % clients.length].closestPeers(cid.toString(), { timeoutMs: 60_000 })
    ms.push(r.ms)
    hops.push(r.hops)
  }
  const row = { latencyMs, peers: swarm.peers.length, lookups: LOOKUPS, msP50: round(quantile(ms, 0.5), 0), msP95: round(quantile(ms, 0.95), 0), hopsP50: quantile(hops, 0.5), hopsP95: quantile(hops, 0.95), hopsMax: Math.max(...hops) }
  log(`  lookups at ${latencyMs} ms: p50 ${row.msP50} ms, p95 ${row.msP95} ms, hops p50 ${row.hopsP50}, max ${row.hopsMax}`)
  return row
}

/** A lab of `peers` (its default host layout) for lookups only, without and with the delay. */
async function lookupLab (peers: number, swarmDir: string, log: (s: string) => void): Promise<LabBenchResult['lookups']> {
  try {
    const swarm = await swarmUp({ peers, dir: swarmDir, lab: {}, timeoutMs: 60_000 + 5_000 * peers })
    log(`  ${peers} lab peers (${swarm.lab!.hosts.length} hosts) routable in ${(swarm.routableMs / 1000).toFixed(1)} s`)
    const clients = await Promise.all(swarm.peers.map(async p => ApiClient.fromRepo(p.repo)))
    const rows = [await lookupRun(swarm, clients, 0, log)]
    await swarmLink(swarmDir, 'all', { latencyMs: LATENCY_MS })
    await sleep(1000)
    rows.push(await lookupRun(swarm, clients, LATENCY_MS, log))
    return rows.map(r => ({ ...r, hosts: swarm.lab!.hosts.length }))
  } catch (err) {
    log(`  lookups at ${peers} peers: ${(err as Error).message}`)
    return []
  } finally {
    await swarmDown(swarmDir).catch(() => {})
  }
}

/** A file shared inside one half of a partition; after heal, repair passes until every block is on its true k closest. */
async function healRun (swarm: SwarmUpResult, swarmDir: string, clients: ApiClient[], newFile: (mib: number) => Promise<string>, log: (s: string) => void): Promise<LabBenchResult['heal']> {
  const half = Math.floor(swarm.peers.length / 2)
  const groups = `0-${half - 1}|${half}-${swarm.peers.length - 1}`
  const sharer = half + 1
  const k = swarm.replicas
  const ids = swarm.peers.map(p => peerIdFromString(p.peerId))
  await swarmPartition(swarmDir, groups)
  const file = await newFile(HEAL_FILE_MIB)
  const heldBefore = new Set((await clients[sharer].holdings()).holdings.map(h => h.cid))
  // placement inside a partition may wait on peers across the cut: the heal comes after the import, whether placement returned or not
  const shareStarted = performance.now()
  let shareSeconds: number | null = null
  // a share still placing at the heal is cut off, so that the repair passes, not the share, put the blocks where they belong
  const cutOff = new AbortController()
  const sharing = clients[sharer].share({ path: file, chunkSize: 256 * 1024, signal: cutOff.signal }).then(r => { shareSeconds = round((performance.now() - shareStarted) / 1000, 1); return r })
  sharing.catch(() => {})
  await Promise.race([sharing, sleep(HEAL_SHARE_WAIT_MS)])
  let cid = ''
  await waitUntilAsync(async () => {
    cid = (await clients[sharer].holdings()).holdings.find(h => !heldBefore.has(h.cid) && h.reason === 'shared')?.cid ?? ''
    return cid !== ''
  }, 60_000)
  const shareReturned = shareSeconds
  if (shareReturned == null) cutOff.abort()
  log(`  heal: ${shareReturned != null ? `share returned in ${shareReturned} s inside the partition` : `share still placing after ${HEAL_SHARE_WAIT_MS / 1000} s inside the partition`}`)
  const onTrueClosest = async (): Promise<{ ok: number, blocks: number }> => {
    const stat = await clients[sharer].stat(cid, k, { timeoutMs: 60_000 })
    let ok = 0
    for (const b of stat.blocks) {
      const truth = closestByXor(CID.parse(b.cid).multihash.bytes, ids, k).map(String)
      if (truth.every(id => b.holders.includes(id))) ok++
    }
    return { ok, blocks: stat.blocks.length }
  }
  await swarmHeal(swarmDir)
  const t0 = performance.now()
  const atHeal = await onTrueClosest()
  const statSeconds = round((performance.now() - t0) / 1000, 1)
  log(`  heal: ${atHeal.ok} of ${atHeal.blocks} blocks on their true ${k} closest at the heal (stat took ${statSeconds} s; ${groups}, shared by peer ${sharer})`)
  let passes = 0
  let pushed = 0
  let state = atHeal
  let seconds: number | null = null
  while (performance.now() - t0 < HEAL_TIMEOUT_MS) {
    passes++
    const reports = await Promise.allSettled(clients.map(async c => c.repair({ timeoutMs: 120_000 })))
    for (const r of reports) if (r.status === 'fulfilled') pushed += r.value.pushed
    state = await onTrueClosest()
    log(`  heal: pass ${passes} at ${((performance.now() - t0) / 1000).toFixed(1)} s: ${state.ok} of ${state.blocks} blocks on their true ${k} closest${reports.some(r => r.status === 'rejected') ? ' (some repairs failed)' : ''}`)
    if (state.ok === state.blocks) { seconds = round((performance.now() - t0) / 1000, 1); break }
  }
  return { groups, sharer, blocks: atHeal.blocks, k, shareSecondsInPartition: shareReturned, shareSeconds, shareWaitSeconds: HEAL_SHARE_WAIT_MS / 1000, onTrueClosestAtHeal: atHeal.ok, statSecondsAtHeal: statSeconds, seconds, passes, onTrueClosestAtEnd: state.ok, repairPushed: pushed }
}

/** A file on `k` closest: `stat` through `via`, every block checked against its true k closest of the whole swarm (XOR over every ID). */
async function onTrueClosest (swarm: SwarmUpResult, client: ApiClient, cid: string, k: number): Promise<{ ok: number, blocks: number }> {
  const ids = swarm.peers.map(p => peerIdFromString(p.peerId))
  const stat = await client.stat(cid, k, { timeoutMs: 60_000 })
  let ok = 0
  for (const b of stat.blocks) {
    const truth = closestByXor(CID.parse(b.cid).multihash.bytes, ids, k).map(String)
    if (truth.every(id => b.holders.includes(id))) ok++
  }
  return { ok, blocks: stat.blocks.length }
}

/** A new random file of `mib` MiB shared by `client` with the swarm's k; its CID and bytes. */
async function shareNew (client: ApiClient, mib: number): Promise<{ cid: string, data: Buffer }> {
  const data = randomBytes(mib * MiB)
  const file = path.join(os.tmpdir(), `shoal-lab-${process.pid}-${randomBytes(4).toString('hex')}.bin`)
  await fs.writeFile(file, data)
  try {
    const { cid } = await client.share({ path: file })
    return { cid, data }
  } finally {
    await fs.rm(file, { force: true })
  }
}

/** Fetches `cid` through `client` to a scratch file; whether its bytes are exactly `data`. */
async function fetchExact (client: ApiClient, cid: string, data: Buffer, timeoutSeconds: number, onProgress?: (bytes: number) => void): Promise<boolean> {
  const out = path.join(os.tmpdir(), `shoal-lab-out-${process.pid}-${randomBytes(4).toString('hex')}.bin`)
  try {
    await client.fetch(cid, { path: out, force: true, timeoutSeconds, onProgress: onProgress == null ? undefined : p => { onProgress(p.bytes) } })
    return (await fs.readFile(out)).equals(data)
  } finally {
    await fs.rm(out, { force: true })
  }
}

/**
 * A fetch through faults: the fetcher's downlink capped so it lasts, two of
 * the file's replica holders SIGKILLed once bytes flow, then the fetcher cut
 * off from every other peer for SURVIVE_CUT_MS, then the heal.
 */
async function surviveRun (swarm: SwarmUpResult, swarmDir: string, clients: ApiClient[], log: (s: string) => void): Promise<LabBenchResult['survive']> {
  const sharer = swarm.peers.length - 2
  const k = swarm.replicas
  const { cid, data } = await shareNew(clients[sharer], SURVIVE_FILE_MIB)
  // the two replica holders with the most of its blocks (the sharer, which holds them all, stays)
  const stat = await clients[sharer].stat(cid, k, { timeoutMs: 60_000 })
  const counts = new Map<string, number>()
  for (const b of stat.blocks) for (const h of b.holders) counts.set(h, (counts.get(h) ?? 0) + 1)
  const victims = [...counts].sort((a, b) => b[1] - a[1]).map(([id]) => swarm.peers.findIndex(p => p.peerId === id))
    .filter(i => i !== sharer && i !== FETCHER).slice(0, 2)
  await swarmLink(swarmDir, FETCHER, { downlink: SURVIVE_DOWNLINK })
  const killed: number[] = []
  let bytes = 0
  let bytesAtCut = 0
  let bytesAtHeal = 0
  let healedAt = 0
  const t0 = performance.now()
  let done: number | null = null
  const fetching = fetchExact(clients[FETCHER], cid, data, 300, b => { bytes = b }).then(exact => { done = performance.now(); return exact })
  fetching.catch(() => {})
  let exact = false
  let error: string | null = null
  try {
    await waitUntil(() => bytes > 0, 60_000)
    for (const v of victims) { await swarmKillPeer(swarmDir, v); killed.push(v) }
    bytesAtCut = bytes
    await swarmPartition(swarmDir, String(FETCHER))
    await sleep(SURVIVE_CUT_MS)
    bytesAtHeal = bytes
    await swarmHeal(swarmDir)
    healedAt = performance.now()
    exact = await fetching
  } catch (err) {
    error = (err as Error).message
  } finally {
    await swarmHeal(swarmDir).catch(() => {})
    await swarmLink(swarmDir, FETCHER, { downlink: FETCHER_DOWNLINK })
    for (const v of killed) await swarmStartPeer(swarmDir, v).catch((err: Error) => { log(`  restarting peer ${v}: ${err.message}`) })
    await clients[FETCHER].remove(cid).catch(() => {})
    await clients[FETCHER].gc().catch(() => {})
  }
  const row = {
    fileMiB: SURVIVE_FILE_MIB,
    downlinkMiBs: SURVIVE_DOWNLINK / MiB,
    killed,
    cutSeconds: SURVIVE_CUT_MS / 1000,
    bytesAtCut,
    bytesAtHeal,
    seconds: done != null ? round((done - t0) / 1000, 1) : null,
    afterHealSeconds: done != null && healedAt > 0 ? round((done - healedAt) / 1000, 1) : null,
    exact,
    error
  }
  log(`  kills + cut: peers ${killed.join(', ')} killed at ${round(bytesAtCut / MiB, 1)} MiB, ${round(bytesAtHeal / MiB, 1)} MiB at the heal; ${row.seconds != null ? `done in ${row.seconds} s (${row.afterHealSeconds} s after the heal), ${exact ? 'exact' : 'WRONG BYTES'}` : `failed: ${error}`}`)
  return row
}

/**
 * Churn at `rate`: CHURN_FETCHERS (never killed) each fetch a file of their
 * own, placed with the swarm's k, again and again (removed in between, every
 * output compared byte for byte) while peers are killed and restarted; then
 * every peer runs repair passes until every block of the three files is on
 * its true k closest.
 */
async function churnRun (swarm: SwarmUpResult, swarmDir: string, clients: ApiClient[], rate: number, log: (s: string) => void): Promise<LabBenchResult['churn'][number]> {
  const k = swarm.replicas
  const sharers = CHURN_FETCHERS.map((_, i) => swarm.peers.length - 1 - i)
  const files = await Promise.all(sharers.map(async s => ({ via: s, ...await shareNew(clients[s], CHURN_FILE_MIB) })))
  const events: ChurnEvent[] = []
  const churn = rate > 0
    ? swarmChurn({ dir: swarmDir, ratePerMinute: rate, forSeconds: CHURN_SECONDS, seed: 7, spare: CHURN_FETCHERS, onEvent: e => { events.push(e) } })
    : sleep(CHURN_SECONDS * 1000).then(() => undefined)
  let churning = true
  void churn.finally(() => { churning = false })
  const times: number[] = []
  const errors: string[] = []
  let fetches = 0
  let exact = 0
  await Promise.all(CHURN_FETCHERS.map(async (f, i) => {
    while (churning) {
      fetches++
      const t0 = performance.now()
      try {
        if (await fetchExact(clients[f], files[i].cid, files[i].data, 120)) exact++
        times.push((performance.now() - t0) / 1000)
      } catch (err) {
        errors.push((err as Error).message)
      }
      await clients[f].remove(files[i].cid).catch(() => {})
      await clients[f].gc().catch(() => {})
    }
  }))
  const result = await churn
  // after the churn: repair passes on every peer, all at once, until every block is on its true k
  const t0 = performance.now()
  let passes = 0
  let state = { ok: 0, blocks: 0 }
  let repairSeconds: number | null = null
  while (performance.now() - t0 < CHURN_REPAIR_TIMEOUT_MS) {
    passes++
    await Promise.allSettled(clients.map(async c => c.repair({ timeoutMs: 120_000 })))
    const each = await Promise.all(files.map(async f => onTrueClosest(swarm, clients[f.via], f.cid, k).catch(() => ({ ok: 0, blocks: 0 }))))
    state = { ok: each.reduce((n, e) => n + e.ok, 0), blocks: each.reduce((n, e) => n + e.blocks, 0) }
    if (state.blocks > 0 && state.ok === state.blocks) { repairSeconds = round((performance.now() - t0) / 1000, 1); break }
  }
  const row = {
    ratePerMinute: rate,
    seconds: CHURN_SECONDS,
    kills: result?.kills ?? 0,
    starts: result?.starts ?? 0,
    fetches,
    completed: times.length,
    exact,
    secondsP50: times.length > 0 ? round(quantile(times, 0.5), 1) : null,
    secondsMax: times.length > 0 ? round(Math.max(...times), 1) : null,
    errors: [...new Set(errors)].slice(0, 3),
    repairSeconds,
    repairPasses: passes,
    onTrueKAtEnd: state.ok,
    blocks: state.blocks
  }
  log(`  churn ${rate * 100}%/min: ${row.kills} kills, ${row.completed} of ${row.fetches} fetches completed (${row.exact} exact), p50 ${row.secondsP50} s, max ${row.secondsMax} s${errors.length > 0 ? `; ${errors[0]}` : ''}; then ${state.ok} of ${state.blocks} blocks on their true ${k} after ${passes} repair pass(es)${repairSeconds != null ? ` in ${repairSeconds} s` : ''}`)
  return row
}

const ratio = (a: number, b: number): number => round(a / b, 2)
const verdict = (ok: boolean): string => ok ? 'met' : '**missed**'

export function renderLab (r: LabBenchResult): string[] {
  const lines = [
    `### The lab (${r.peers} peers, each its own host; holders' uplinks ${r.uplinkMiBs} MiB/s, the fetcher's downlink ${r.fetcherDownlinkMiBs / 1024} GiB/s, a ${r.fileMiB} MiB file)`,
    '',
    `Routable in ${r.routableSeconds} s. Load average at the end: ${r.loadAverage.join(', ')} (2 cores, shared). ${r.rawFlowMiBs != null ? `One raw TCP flow through one ${r.uplinkMiBs} MiB/s uplink cap moves **${r.rawFlowMiBs} MiB/s** of payload (${ratio(r.rawFlowMiBs, r.uplinkMiBs)} of the cap: tbf counts whole frames).` : ''}`,
    '',
    '![fetch MiB/s against holders, with the sum of their uplinks](plots/lab-aggregation.svg)',
    '',
    `Rates are payload over the transfer, from the first request to the last block, the median of ${r.aggregation[0]?.runs.length} fetches of the same file (the fetcher drops it in between; every run's rate in brackets); "whole" is the fetch's own time, lookup and layout included. "fetcher CPU" is the fetcher daemon's CPU time over the fetch's wall time (1: one core busy throughout). The same 4-holder fetch with no cap on any link moves **${r.uncapped.mibs} MiB/s** (${r.uncapped.runs.join(', ')}; fetcher CPU ${r.uncapped.fetcherCpuShare}): what the daemons move on this machine's shared cores in this run, whatever the links allow.`,
    '',
    '| run | figure | goal | ratio | verdict |',
    '| --- | --- | --- | --- | --- |'
  ]
  for (const f of r.aggregation) {
    lines.push(`| aggregation, ${f.holders} holder(s) | ${f.mibs} MiB/s (${f.runs.join(', ')}; whole ${f.wholeMiBs}; ${Object.keys(f.sentMiB).length} of ${f.holders} holders sent bytes; fetcher CPU ${f.fetcherCpuShare}) | >= 0.85 x ${f.idealMiBs} MiB/s (sum of uplinks) | ${ratio(f.mibs, f.idealMiBs)} | ${verdict(f.mibs >= 0.85 * f.idealMiBs)} |`)
  }
  const b = r.bigFile
  lines.push(`| aggregation, ${b.holders} holders, a ${b.fileMiB} MiB file (one run) | ${b.mibs} MiB/s (whole ${b.wholeMiBs}; ${Object.keys(b.sentMiB).length} of ${b.holders} holders sent bytes; fetcher CPU ${b.fetcherCpuShare}) | >= 0.85 x ${b.idealMiBs} MiB/s | ${ratio(b.mibs, b.idealMiBs)} | ${verdict(b.mibs >= 0.85 * b.idealMiBs)} |`)
  const s = r.slow
  lines.push(`| one holder at ${s.slowMiBs} MiB/s among 4 | ${s.fetch.mibs} MiB/s (${s.fetch.runs.join(', ')}; whole ${s.fetch.wholeMiBs}; MiB sent by holder: ${Object.entries(s.fetch.sentMiB).map(([p, m]) => `${p}: ${m}`).join(', ')}) | >= 0.85 x ${s.othersMiBs} MiB/s (the other three's sum) | ${ratio(s.fetch.mibs, s.othersMiBs)} | ${verdict(s.fetch.mibs >= 0.85 * s.othersMiBs)} |`)
  const d = r.distance
  lines.push(`| 4 holders, ${r.latencyMs} ms one-way on every link | ${d.with.mibs} MiB/s (${d.with.runs.join(', ')}; whole ${d.with.wholeMiBs}; per holder while busy: ${Object.values(d.with.holderMiBs).join(', ')}; without delay: ${Object.values(d.without.holderMiBs).join(', ')}) | >= 0.85 x ${d.without.mibs} MiB/s (same fetch, no delay) | ${ratio(d.with.mibs, d.without.mibs)} | ${verdict(d.with.mibs >= 0.85 * d.without.mibs)} |`)
  const h = r.heal
  lines.push(`| heal (${h.groups}, k = ${h.k}) | ${h.seconds != null ? `${h.seconds} s, ${h.passes} repair pass(es)` : `not reached in ${HEAL_TIMEOUT_MS / 1000} s (${h.onTrueClosestAtEnd} of ${h.blocks} blocks)`} | every block on its true ${h.k} closest | ${h.onTrueClosestAtEnd} / ${h.blocks} blocks | ${verdict(h.seconds != null)} |`)
  lines.push('',
    'CPU during the aggregation fetches (the median run of each; from /proc: the lab daemons\' CPU time over the fetch\'s wall time, in cores, and how busy the whole machine was, every process of every user, of its cores):',
    '',
    '| holders | MiB/s | of the ideal | fetcher CPU (cores) | holders\' CPU (cores) | all lab daemons (cores) | machine busy |',
    '| --- | --- | --- | --- | --- | --- | --- |',
    ...[...r.aggregation, r.bigFile].map(f => `| ${f.holders}${f === r.bigFile ? ` (${f.fileMiB} MiB)` : ''} | ${f.mibs} | ${ratio(f.mibs, f.idealMiBs)} | ${f.fetcherCpuShare ?? '-'} | ${f.holdersCpuCores ?? '-'} | ${f.daemonsCpuCores ?? '-'} | ${f.machineBusy ?? '-'} |`))
  lines.push('',
    `DHT lookups (\`GET /api/v1/dht/closest-peers\`, ${r.lookups[0]?.lookups} random keys from every peer in turn):`,
    '',
    '| peers | hosts | one-way delay | p50 ms | p95 ms | hops p50 | hops p95 | hops max |',
    '| --- | --- | --- | --- | --- | --- | --- | --- |',
    ...r.lookups.map(l => `| ${l.peers} | ${l.hosts ?? l.peers} | ${l.latencyMs} ms | ${l.msP50} | ${l.msP95} | ${l.hopsP50} | ${l.hopsP95} | ${l.hopsMax} |`),
    '',
    `Heal: the file (${h.blocks} blocks) is shared by peer ${h.sharer} while the lab is cut into ${h.groups}; ${h.shareSecondsInPartition != null ? `the share returned in ${h.shareSecondsInPartition} s inside the partition` : `the share had not returned after ${h.shareWaitSeconds} s inside the partition (its placement waits on peers across the cut): the request was cut off then (its import was done, the file pinned), and the heal came right after`}. At the heal ${h.onTrueClosestAtHeal} of its blocks are on their true ${h.k} closest of the whole swarm (XOR over all ${r.peers} IDs; the sharer's \`stat\` took ${h.statSecondsAtHeal} s). Then every peer runs a repair pass, all at once, and the sharer's \`stat\` is checked, until every block is; the repair passes pushed ${h.repairPushed} copies${h.repairPushed === 0 ? ' (so the blocks reached their true closest through the share\'s own placement, which the daemon carries on once the cut is healed)' : ''}.`)
  const v = r.survive
  lines.push('',
    `Kills and a cut: every uplink at ${CHURN_UPLINK / MiB} MiB/s, the fetcher's downlink at ${v.downlinkMiBs} MiB/s, a ${v.fileMiB} MiB file placed with k = ${h.k}. Once its bytes flow, two of its replica holders (peers ${v.killed.join(' and ')}) are SIGKILLed, then the fetcher is cut off from every other peer for ${v.cutSeconds} s, then the cut heals: ${v.seconds != null ? `the fetch completed in **${v.seconds} s**, ${v.afterHealSeconds} s after the heal, ${v.exact ? '**every byte exact**' : '**with wrong bytes**'}` : `**the fetch failed**: ${v.error ?? ''}`} (${round(v.bytesAtCut / MiB, 1)} MiB had arrived at the kills, ${round(v.bytesAtHeal / MiB, 1)} MiB at the heal).`)
  if (r.churn.length > 0) {
    lines.push('',
      `Churn: every uplink at ${CHURN_UPLINK / MiB} MiB/s; three peers never killed each fetch a ${CHURN_FILE_MIB} MiB file of their own, placed with k = ${h.k}, again and again (removed in between, every output compared byte for byte with the file) for ${r.churn[0].seconds} s at each rate, while the other peers are killed (SIGKILL) and restarted 5 s later on their repos; when the churn ends every peer runs repair passes, all at once, until every block of the three files is on its true ${h.k} closest of the whole swarm.`,
      '',
      '| churn per minute | kills | fetches completed | exact | p50 s | max s | errors | after the churn: blocks on their true k | repair |',
      '| --- | --- | --- | --- | --- | --- | --- | --- | --- |',
      ...r.churn.map(c => `| ${Math.round(c.ratePerMinute * 100)}% | ${c.kills} | ${c.completed} of ${c.fetches} | ${c.exact} | ${c.secondsP50 ?? '-'} | ${c.secondsMax ?? '-'} | ${c.errors.join('; ') || '-'} | ${c.onTrueKAtEnd} of ${c.blocks} | ${c.repairSeconds != null ? `${c.repairSeconds} s, ${c.repairPasses} pass(es)` : `not reached in ${CHURN_REPAIR_TIMEOUT_MS / 1000} s`} |`))
  }
  lines.push('', ...closingNote(r))
  return lines
}

/** How each figure compares with its goal, in words, from the figures of this run. */
function closingNote (r: LabBenchResult): string[] {
  const fetches = [...r.aggregation, r.bigFile]
  const missed = fetches.filter(f => f.mibs < 0.85 * f.idealMiBs)
  const saturated = (f: LabFetch): boolean => f.machineBusy != null && f.machineBusy >= 0.95
  const aboveCeiling = missed.filter(f => 0.85 * f.idealMiBs >= r.uncapped.mibs)
  const out = [`**Against the goals.** Aggregation: ${fetches.length - missed.length} of ${fetches.length} fetches reach 0.85 of their holders' uplinks.`]
  if (missed.length > 0) {
    out.push(`The ${missed.map(f => `${f.holders}-holder${f === r.bigFile ? ` (${f.fileMiB} MiB)` : ''}`).join(', ')} fetch${missed.length > 1 ? 'es' : ''} fall short; ${missed.filter(saturated).length} of them ran with the machine saturated (busy >= 0.95 of its cores, the lab's daemons getting ${missed.map(f => f.daemonsCpuCores).join(', ')} cores of them)${aboveCeiling.length > 0 ? `, and for ${aboveCeiling.length} of them 0.85 of the ideal is at or above what the same daemons moved with no cap at all in this run (${r.uncapped.mibs} MiB/s), so for those the limit is this machine's CPU, not the links or the scheduler` : ''}.`)
  }
  const s = r.slow
  out.push(`One slow holder among 4: ${ratio(s.fetch.mibs, s.othersMiBs)} of the other three's sum (goal 0.85). Distance: ${ratio(r.distance.with.mibs, r.distance.without.mibs)} of the no-delay rate with ${r.latencyMs} ms one-way (goal 0.85).`)
  const h = r.heal
  out.push(h.seconds != null
    ? `Heal: every block on its true ${h.k} closest ${h.seconds} s after the heal, in ${h.passes} repair pass(es) (goal: all of them).`
    : `Heal: ${h.onTrueClosestAtEnd} of ${h.blocks} blocks on their true ${h.k} closest after ${HEAL_TIMEOUT_MS / 1000} s (goal: all of them).`)
  const v = r.survive
  out.push(`Kills and a cut: ${v.seconds != null ? `the fetch completed, ${v.exact ? 'every byte exact' : 'WITH WRONG BYTES'}` : 'the fetch failed'} (goal: complete and exact).`)
  if (r.churn.length > 0) {
    const allExact = r.churn.every(c => c.completed === c.fetches && c.exact === c.fetches)
    const allBack = r.churn.every(c => c.repairSeconds != null)
    out.push(`Churn: ${allExact ? 'every fetch at every rate completed with exact bytes' : `${r.churn.map(c => `${c.exact} of ${c.fetches} exact at ${Math.round(c.ratePerMinute * 100)}%`).join(', ')}`}, and ${allBack ? `every file was back on its true k after ${Math.max(...r.churn.map(c => c.repairPasses))} repair pass(es) at most` : 'some blocks were not back on their true k'} (goal: both).`)
  }
  return [out.join(' ')]
}

/** docs/plots/lab-aggregation.svg: fetch MiB/s by holders against the sum of their uplinks. */
export function plotLabAggregation (r: LabBenchResult): string {
  return svgPlot({
    title: `lab: ${r.fileMiB} MiB fetched from holders with ${r.uplinkMiBs} MiB/s uplinks`,
    xLabel: 'holders',
    yLabel: 'MiB/s',
    xScale: 'category',
    series: [
      { name: 'shoal fetch (transfer)', points: r.aggregation.map(f => ({ x: f.holders, y: f.mibs })) },
      { name: 'no cap on any link (this machine, this run)', color: '#7f7f7f', valueLabels: false, points: r.aggregation.map(f => ({ x: f.holders, y: r.uncapped.mibs })) },
      { name: 'sum of the holders\' uplinks (ideal)', dashed: true, color: '#555', points: r.aggregation.map(f => ({ x: f.holders, y: f.idealMiBs })) },
      { name: 'goal: 0.85 of the ideal', dashed: true, color: '#d62728', valueLabels: false, points: r.aggregation.map(f => ({ x: f.holders, y: round(0.85 * f.idealMiBs, 1) })) }
    ]
  })
}

interface CpuSample {
  at: number
  /** Clock ticks of CPU time by pid (user + system; a process gone counts 0). */
  ticks: Map<number, number>
  /** The machine's busy and total ticks, every core. */
  busy: number
  total: number
}

/** CPU time so far of these processes, and of the whole machine (/proc). */
async function cpuSample (pids: number[]): Promise<CpuSample> {
  const ticks = new Map<number, number>()
  for (const pid of pids) {
    const stat = await fs.readFile(`/proc/${pid}/stat`, 'utf8').catch(() => '')
    // fields after the command's closing parenthesis: utime and stime are the 12th and 13th
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
    ticks.set(pid, stat === '' ? 0 : Number(fields[11]) + Number(fields[12]))
  }
  const cpu = (await fs.readFile('/proc/stat', 'utf8')).split('\n')[0].trim().split(/\s+/).slice(1).map(Number)
  const total = cpu.slice(0, 8).reduce((a, b) => a + b, 0)
  // idle and iowait are not busy
  return { at: performance.now(), ticks, busy: total - cpu[3] - cpu[4], total }
}

/** CPU between two samples: the lab daemons' and the holders' in cores, the machine's busy share. */
function cpuUsed (a: CpuSample, b: CpuSample, holders: number[]): Pick<LabFetch, 'daemonsCpuCores' | 'holdersCpuCores' | 'machineBusy'> {
  const seconds = (b.at - a.at) / 1000
  const pids = [...b.ticks.keys()]
  const cores = (of: number[]): number => round(of.reduce((n, pid) => n + (b.ticks.get(pid)! - (a.ticks.get(pid) ?? 0)), 0) / CLOCK_TICKS / seconds, 2)
  return {
    daemonsCpuCores: cores(pids),
    holdersCpuCores: cores(holders.map(h => pids[h])),
    machineBusy: round((b.busy - a.busy) / (b.total - a.total), 2)
  }
}

/** USER_HZ: /proc counts CPU time in these per second (100 on Linux). */
const CLOCK_TICKS = 100

function quantile (values: number[], q: number): number {
  const sorted = [...values].sort((a, b) => a - b)
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]
}

async function sleep (ms: number): Promise<void> {
  await new Promise(resolve => setTimeout(resolve, ms))
}

async function waitUntilAsync (ok: () => Promise<boolean>, timeoutMs: number): Promise<void> {
  const end = Date.now() + timeoutMs
  while (!await ok()) {
    if (Date.now() > end) throw new Error('timed out')
    await sleep(250)
  }
}

async function waitUntil (ok: () => boolean, timeoutMs: number): Promise<void> {
  const end = Date.now() + timeoutMs
  while (!ok()) {
    if (Date.now() > end) throw new Error('timed out')
    await sleep(50)
  }
}

// `node bench/lab.ts` runs this benchmark alone and prints the section.
if (import.meta.main === true) {
  const result = await benchLab(s => { process.stderr.write(s + '\n') })
  process.stdout.write(renderLab(result).join('\n') + '\n')
}
