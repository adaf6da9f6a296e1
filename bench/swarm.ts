/**
 * Foundation benchmark: how fast a local swarm becomes routable, what a peer
 * costs in memory, and how DHT closest-peer lookups scale with swarm size.
 *
 * - What `shoal swarm up` does (every peer its own daemon up to 20 peers,
 *   else ~one swarm-host process per core): time until routable, processes,
 *   RSS and CPU-seconds per peer, connections and routing-table entries per
 *   peer, lookup latency p50/p95, hops next to
 *   log2(N), and how often the 3 closest returned are the true 3 closest.
 * - In-process (`createTestSwarm`): time until routable and RSS per peer.
 *
 *   SHOAL_BENCH_SIZES=10,50,100   `swarm up` sizes (its default process layout)
 *   SHOAL_BENCH_INPROC=10,50      in-process swarm sizes
 */
import { randomBytes } from 'node:crypto'
import fs from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { peerIdFromString } from '@libp2p/peer-id'
import { CID } from 'multiformats/cid'
import * as raw from 'multiformats/codecs/raw'
import { sha256 } from 'multiformats/hashes/sha2'
import { ApiClient } from '../src/api/client.ts'
import { closestByXor } from '../src/routing/kademlia/kad-distance.ts'
import { swarmDown, swarmStatus, swarmUp } from '../src/swarm/process-swarm.ts'
import { createTestSwarm } from '../src/swarm/test-swarm.ts'
import { cpuSecondsOf, procStatusKiB, round } from './stats.ts'
import { svgPlot } from './svg-plot.ts'

export interface ProcessSwarmResult {
  peers: number
  /** null: not routable within `timeoutSeconds` (see `error`). */
  routableSeconds: number | null
  timeoutSeconds?: number
  error?: string
  /** Processes the peers ran in, and peers per process. */
  processes: number | null
  peersPerProcess: number | null
  rssPerPeerMiB: number | null
  /** CPU-seconds (user+sys) the swarm's processes had used when it was routable, per peer. */
  cpuSecondsPerPeer: number | null
  /** Open connections and routing-table entries per peer right after it was routable (mean). */
  connectionsPerPeer: number | null
  routingTablePerPeer: number | null
  lookups: number
  lookupMsP50: number | null
  lookupMsP95: number | null
  hopsP50: number | null
  hopsMax: number | null
  log2N: number
  top3Exact: number | null
}

export interface InProcessSwarmResult {
  peers: number
  routableSeconds: number
  rssPerPeerMiB: number
}

export interface SwarmBenchResult {
  processSwarms: ProcessSwarmResult[]
  inProcess: InProcessSwarmResult[]
}

const LOOKUPS = 40

const sizes = (name: string, fallback: string): number[] => (process.env[name] ?? fallback).split(',').map(Number).filter(n => n > 0)

/** The whole suite: `swarm up` swarms of SHOAL_BENCH_SIZES, then in-process swarms of SHOAL_BENCH_INPROC. */
export async function benchSwarm (log: (s: string) => void): Promise<SwarmBenchResult> {
  const processSwarms: ProcessSwarmResult[] = []
  for (const n of sizes('SHOAL_BENCH_SIZES', '10,50,100')) {
    log(`process swarm of ${n}`)
    processSwarms.push(await benchProcessSwarm(n, log))
  }
  const inProcess: InProcessSwarmResult[] = []
  for (const n of sizes('SHOAL_BENCH_INPROC', '10,50')) {
    log(`in-process swarm of ${n}`)
    inProcess.push(await benchInProcessSwarm(n, log))
  }
  return { processSwarms, inProcess }
}

export async function benchProcessSwarm (peers: number, log: (s: string) => void): Promise<ProcessSwarmResult> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'shoal-bench-'))
  const timeoutMs = 60_000 + 10_000 * peers
  try {
    let swarm
    try {
      swarm = await swarmUp({ peers, dir, timeoutMs })
    } catch (err) {
      // a swarm that does not come up is a result too: record it, go on
      log(`  ${peers} processes: ${(err as Error).message}`)
      return {
        peers, routableSeconds: null, timeoutSeconds: timeoutMs / 1000, error: (err as Error).message,
        processes: null, peersPerProcess: null, rssPerPeerMiB: null, cpuSecondsPerPeer: null, connectionsPerPeer: null, routingTablePerPeer: null, lookups: 0, lookupMsP50: null, lookupMsP95: null, hopsP50: null, hopsMax: null,
        log2N: round(Math.log2(peers), 2), top3Exact: null
      }
    }
    log(`  ${peers} processes routable in ${(swarm.routableMs / 1000).toFixed(1)} s`)
    const pids = [...new Set(swarm.peers.map(p => p.pid))]
    const rss = pids.map(pid => procStatusKiB(pid, 'VmRSS') * 1024)
    const cpu = pids.map(cpuSecondsOf)
    const status = (await swarmStatus(dir)).peers
    const mean = (values: number[]): number => values.reduce((a, b) => a + b, 0) / values.length
    const ids = swarm.peers.map(p => peerIdFromString(p.peerId))
    const clients = await Promise.all(swarm.peers.map(async p => ApiClient.fromRepo(p.repo)))
    const ms: number[] = []
    const hops: number[] = []
    let exact = 0
    for (let i = 0; i < LOOKUPS; i++) {
      const from = i % peers
      const cid = CID.createV1(raw.code, await sha256.digest(randomBytes(32)))
      const result = await clients[from].closestPeers(cid.toString(), { timeoutMs: 60_000 })
      ms.push(result.ms)
      hops.push(result.hops)
      const truth = closestByXor(cid.multihash.bytes, ids.filter(id => id.toString() !== swarm.peers[from].peerId), 3).map(String)
      if (truth.every((id, j) => result.peers[j] === id)) exact++
    }
    await swarmDown(dir)
    return {
      peers,
      routableSeconds: round(swarm.routableMs / 1000, 1),
      processes: pids.length,
      peersPerProcess: swarm.peers[0].peersInProcess,
      rssPerPeerMiB: round(rss.reduce((a, b) => a + b, 0) / peers / 2 ** 20, 1),
      cpuSecondsPerPeer: round(cpu.reduce((a, b) => a + b, 0) / peers, 2),
      connectionsPerPeer: round(mean(status.map(p => p.connections ?? 0)), 1),
      routingTablePerPeer: round(mean(status.map(p => p.routingTableSize ?? 0)), 1),
      lookups: LOOKUPS,
      lookupMsP50: round(quantile(ms, 0.5), 0),
      lookupMsP95: round(quantile(ms, 0.95), 0),
      hopsP50: quantile(hops, 0.5),
      hopsMax: Math.max(...hops),
      log2N: round(Math.log2(peers), 2),
      top3Exact: round(exact / LOOKUPS, 2)
    }
  } finally {
    await swarmDown(dir).catch(() => {})
    await fs.rm(dir, { recursive: true, force: true })
  }
}

export async function benchInProcessSwarm (peers: number, log: (s: string) => void): Promise<InProcessSwarmResult> {
  globalThis.gc?.()
  const before = process.memoryUsage().rss
  const started = performance.now()
  const swarm = await createTestSwarm(peers, { timeoutMs: 60_000 + 6000 * peers })
  const seconds = (performance.now() - started) / 1000
  globalThis.gc?.()
  const after = process.memoryUsage().rss
  log(`  ${peers} in-process peers routable in ${seconds.toFixed(1)} s`)
  await swarm.destroy()
  return { peers, routableSeconds: round(seconds, 1), rssPerPeerMiB: round((after - before) / peers / 2 ** 20, 1) }
}

/** The markdown section for docs/benchmarks.md. */
export function renderSwarm (r: SwarmBenchResult): string[] {
  return [
    '### `shoal swarm up` (as it runs by default: one daemon per peer up to 20 peers, else ~one host process per core)',
    '',
    '| peers | processes | routable in (s) | CPU-s per peer | RSS per peer (MiB) | connections per peer | routing table per peer | lookup p50 (ms) | lookup p95 (ms) | hops p50 | hops max | log2 N | top-3 exact |',
    '| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
    ...r.processSwarms.map(s => s.routableSeconds == null
      ? `| ${s.peers} | - | not routable in ${s.timeoutSeconds} s | - | - | - | - | - | - | - | - | ${s.log2N} | - |`
      : `| ${s.peers} | ${s.processes} | ${s.routableSeconds} | ${s.cpuSecondsPerPeer} | ${s.rssPerPeerMiB} | ${s.connectionsPerPeer} | ${s.routingTablePerPeer} | ${s.lookupMsP50} | ${s.lookupMsP95} | ${s.hopsP50} | ${s.hopsMax} | ${s.log2N} | ${Math.round((s.top3Exact ?? 0) * 100)}% |`),
    '',
    '![DHT lookup latency, p50 and p95, against swarm size](plots/lookup-latency.svg)',
    '',
    '![DHT lookup hops, p50 and max, against swarm size, next to log2 N](plots/lookup-hops.svg)',
    '',
    '### In-process swarm (`createTestSwarm`, all peers on one event loop)',
    '',
    '| peers | routable in (s) | RSS per peer (MiB) |',
    '| ---: | ---: | ---: |',
    ...r.inProcess.map(s => `| ${s.peers} | ${s.routableSeconds} | ${s.rssPerPeerMiB} |`)
  ]
}

/** The swarms that came up, so had lookups to plot. */
const measured = (r: SwarmBenchResult): ProcessSwarmResult[] => r.processSwarms.filter(s => s.lookupMsP50 != null)
const lookupsOf = (r: SwarmBenchResult): string => [...new Set(measured(r).map(s => s.lookups))].join('/') || String(LOOKUPS)

/** docs/plots/lookup-latency.svg: lookup latency p50 and p95 by swarm size. */
export function plotLookupLatency (r: SwarmBenchResult): string {
  return svgPlot({
    title: `DHT lookup latency in shoal swarm up swarms (${lookupsOf(r)} lookups per size)`,
    xLabel: 'peers in the swarm',
    yLabel: 'lookup latency (ms)',
    series: [
      { name: 'p50', points: measured(r).map(s => ({ x: s.peers, y: s.lookupMsP50 ?? 0 })) },
      { name: 'p95', points: measured(r).map(s => ({ x: s.peers, y: s.lookupMsP95 ?? 0 })) }
    ]
  })
}

/** docs/plots/lookup-hops.svg: hops p50 and max by swarm size, next to log2 N (the bound). */
export function plotLookupHops (r: SwarmBenchResult): string {
  return svgPlot({
    title: `DHT lookup hops in shoal swarm up swarms (${lookupsOf(r)} lookups per size)`,
    xLabel: 'peers in the swarm',
    yLabel: 'hops',
    series: [
      { name: 'hops p50', kind: 'bar', decimals: 0, points: measured(r).map(s => ({ x: s.peers, y: s.hopsP50 ?? 0 })) },
      { name: 'hops max', kind: 'bar', decimals: 0, points: measured(r).map(s => ({ x: s.peers, y: s.hopsMax ?? 0 })) },
      { name: 'log2 N (target: at most this)', dashed: true, color: '#555', decimals: 1, points: r.processSwarms.map(s => ({ x: s.peers, y: s.log2N })) }
    ]
  })
}

function quantile (values: number[], q: number): number {
  const sorted = [...values].sort((a, b) => a - b)
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]
}

// `node bench/swarm.ts` runs this benchmark alone and prints the section.
if (import.meta.main === true) {
  const result = await benchSwarm(s => { process.stderr.write(s + '\n') })
  process.stdout.write(renderSwarm(result).join('\n') + '\n')
}
