/**
 * The two overlays side by side (`SHOAL_BENCH=overlay`): the same swarm
 * size, the same random keys and the same file on a Kademlia swarm and on
 * a Chord swarm of daemons (`swarm up --overlay`, its default process
 * layout, on loopback).
 *
 * - routable in: `swarm up` until routable (routable.ts: Kademlia, every
 *   routing table holds min(N-1, 20) peers; Chord, the ring is correct at
 *   every peer).
 * - routing state per peer: distinct peers in `GET /api/v1/routing` right
 *   after (buckets; or predecessor, successors and fingers), mean.
 * - lookups: LOOKUPS lookups of random CIDs with k = 3 (`GET /api/v1/lookup`),
 *   spread over the peers: hops mean and p95 next to log2 N and ½ log2 N,
 *   messages (queries sent) per lookup, latency p50/p95, and the share whose
 *   3 responsible peers are the true 3 (the overlay's order over every ID).
 * - memory per peer: RSS of the swarm's processes (process-usage.ts) after
 *   the idle window, divided by the peers they host.
 * - maintenance traffic per peer per minute: over an idle window right after
 *   routable, the bytes sent on the overlay's own protocol, and on every
 *   connection, from `GET /metrics` (libp2p's `libp2p_data_transfer_bytes_total`).
 *   Each peer's libp2p counts its own streams, also with several peers in
 *   one process; the mean is over the peers whose scrape has the counters.
 * - a SHOAL_BENCH_OVERLAY_FILE_MIB file shared on peer 0 (k = 3, 1 MiB
 *   chunks: import and placement); load balance: the blocks every other peer
 *   then holds (replicas), 1st and 99th percentile, max / mean; then the file
 *   fetched by the last peer (time).
 *
 *   SHOAL_BENCH_OVERLAY_SIZES=16,64,256  swarm sizes
 *   SHOAL_BENCH_OVERLAY_LOOKUPS=100      lookups per swarm
 *   SHOAL_BENCH_OVERLAY_IDLE_S=30        idle window for maintenance traffic
 *   SHOAL_BENCH_OVERLAY_FILE_MIB=256     file shared and fetched (0: none; 1024 for a 1 GiB share)
 */
import { randomBytes } from 'node:crypto'
import fs from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import type { CID } from 'multiformats/cid'
import { ApiClient } from '../src/api/client.ts'
import type { OverlayName } from '../src/routing/index.ts'
import { swarmDown, swarmUp } from '../src/swarm/process-swarm.ts'
import { mean, measureLookups, peersIn, quantile, randomKeys } from './overlay-lookups.ts'
import { usageOf } from './process-usage.ts'
import { round } from './stats.ts'
import { svgPlot } from './svg-plot.ts'

const K = 3
const OVERLAYS: OverlayName[] = ['kademlia', 'chord']

export interface OverlayRun {
  overlay: OverlayName
  peers: number
  /** null: not routable within `timeoutSeconds` (see `error`). */
  routableSeconds: number | null
  timeoutSeconds?: number
  error?: string
  processes: number | null
  routingStatePerPeer: number | null
  lookups: number
  hopsMean: number | null
  hopsP95: number | null
  log2N: number
  halfLog2N: number
  messagesMean: number | null
  lookupMsP50: number | null
  lookupMsP95: number | null
  /** Share of lookups whose k responsible peers were the true k, in order. */
  trueK: number | null
  /** RSS of the swarm's processes after the idle window, MiB per peer. */
  rssMiBPerPeer: number | null
  idleSeconds: number
  /** Peers whose `GET /metrics` carries the transfer counters. */
  trafficSampled: number | null
  /** Bytes sent on the overlay's protocol while idle, KiB per peer per minute (mean over the sampled peers). */
  overlayKiBPerPeerMinute: number | null
  /** Bytes sent on every connection while idle, KiB per peer per minute. */
  totalKiBPerPeerMinute: number | null
  fileMiB: number
  /** Blocks held by each peer but the sharer after the share: 1st and 99th percentile, mean, max. */
  blocksP1: number | null
  blocksP99: number | null
  blocksMean: number | null
  blocksMax: number | null
  shareSeconds: number | null
  fetchSeconds: number | null
}

export interface OverlayBenchResult {
  runs: OverlayRun[]
  idleSeconds: number
  /** 1-minute load average of the machine before and after the suite (others may share it). */
  loadBefore: number
  loadAfter: number
}

const list = (name: string, fallback: string): number[] => (process.env[name] ?? fallback).split(',').map(Number).filter(n => n > 0)

export async function benchOverlay (log: (s: string) => void): Promise<OverlayBenchResult> {
  const loadBefore = round(os.loadavg()[0], 1)
  const runs: OverlayRun[] = []
  const lookups = list('SHOAL_BENCH_OVERLAY_LOOKUPS', '100')[0] ?? 100
  const fileMiB = Number(process.env.SHOAL_BENCH_OVERLAY_FILE_MIB ?? '256')
  const idleSeconds = Number(process.env.SHOAL_BENCH_OVERLAY_IDLE_S ?? '30')
  for (const peers of list('SHOAL_BENCH_OVERLAY_SIZES', '16,64,256')) {
    // the same keys on both overlays
    const keys = await randomKeys(lookups)
    for (const overlay of OVERLAYS) {
      log(`${overlay} swarm of ${peers}`)
      runs.push(await benchOne(overlay, peers, keys, fileMiB, idleSeconds, log))
    }
  }
  return { runs, idleSeconds, loadBefore, loadAfter: round(os.loadavg()[0], 1) }
}

async function benchOne (overlay: OverlayName, peers: number, keys: CID[], fileMiB: number, idleSeconds: number, log: (s: string) => void): Promise<OverlayRun> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'shoal-bench-overlay-'))
  const timeoutMs = 60_000 + 5_000 * peers
  const base = { overlay, peers, log2N: round(Math.log2(peers), 2), halfLog2N: round(Math.log2(peers) / 2, 2), fileMiB, idleSeconds }
  try {
    let swarm
    try {
      swarm = await swarmUp({ peers, dir, overlay, timeoutMs, replicas: K })
    } catch (err) {
      log(`  not routable: ${(err as Error).message}`)
      return {
        ...base, routableSeconds: null, timeoutSeconds: timeoutMs / 1000, error: (err as Error).message, processes: null, routingStatePerPeer: null,
        lookups: 0, hopsMean: null, hopsP95: null, messagesMean: null, lookupMsP50: null, lookupMsP95: null, trueK: null, shareSeconds: null, fetchSeconds: null,
        rssMiBPerPeer: null, trafficSampled: null, overlayKiBPerPeerMinute: null, totalKiBPerPeerMinute: null, blocksP1: null, blocksP99: null, blocksMean: null, blocksMax: null
      }
    }
    log(`  routable in ${(swarm.routableMs / 1000).toFixed(1)} s`)
    const ids = swarm.peers.map(p => p.peerId)
    const clients = await Promise.all(swarm.peers.map(async p => ApiClient.fromRepo(p.repo)))
    const routing = await Promise.all(clients.map(async c => c.routing()))
    const protocol = overlay === 'kademlia' ? '/shoal/kad/' : '/shoal/chord/'
    const sentBefore = await Promise.all(clients.map(async c => sentBytes(await c.metrics(), protocol)))
    const idleFrom = performance.now()
    await new Promise(resolve => setTimeout(resolve, idleSeconds * 1000))
    const sentAfter = await Promise.all(clients.map(async c => sentBytes(await c.metrics(), protocol)))
    const idleMinutes = (performance.now() - idleFrom) / 60_000
    const rss = await usageOf([...new Set(swarm.peers.map(p => p.pid))])
    const sampled = sentAfter.flatMap((after, i) => after != null && sentBefore[i] != null ? [{ before: sentBefore[i], after }] : [])
    const perMinute = (pick: (s: SentBytes) => number): number | null => sampled.length === 0
      ? null
      : round(mean(sampled.map(s => (pick(s.after) - pick(s.before)) / 1024 / idleMinutes)), 1)
    const overlayKiBPerPeerMinute = perMinute(s => s.overlay)
    const totalKiBPerPeerMinute = perMinute(s => s.total)
    log(`  idle ${idleSeconds} s: overlay ${overlayKiBPerPeerMinute} KiB, all ${totalKiBPerPeerMinute} KiB sent per peer per minute (${sampled.length} peers sampled); RSS ${round(rss.rssBytes / 2 ** 20 / peers, 1)} MiB per peer`)
    const stats = await measureLookups(overlay, clients, ids, keys, K)
    log(`  ${keys.length} lookups: hops mean ${stats.hopsMean}, ${Math.round(stats.trueK * 100)}% true k`)
    let shareSeconds: number | null = null
    let fetchSeconds: number | null = null
    let blocks: number[] = []
    if (fileMiB > 0) {
      const file = path.join(dir, 'file.bin')
      await fs.writeFile(file, randomBytes(fileMiB * 2 ** 20))
      let started = performance.now()
      const shared = await clients[0].share({ path: file, replicas: K })
      shareSeconds = round((performance.now() - started) / 1000, 2)
      // the sharer holds the whole file: the spread is over the others
      blocks = await Promise.all(clients.slice(1).map(async c => (await c.holdings()).store.blocks))
      log(`  blocks per peer: p1 ${quantile(blocks, 0.01)}, p99 ${quantile(blocks, 0.99)}, max ${Math.max(...blocks)}, mean ${round(mean(blocks), 1)}`)
      started = performance.now()
      await clients[peers - 1].fetch(shared.cid, { path: path.join(dir, 'fetched.bin'), timeoutSeconds: 600 })
      fetchSeconds = round((performance.now() - started) / 1000, 2)
      log(`  ${fileMiB} MiB: share ${shareSeconds} s, fetch ${fetchSeconds} s`)
    }
    return {
      ...base,
      routableSeconds: round(swarm.routableMs / 1000, 1),
      processes: new Set(swarm.peers.map(p => p.pid)).size,
      routingStatePerPeer: round(mean(routing.map(peersIn)), 1),
      lookups: stats.lookups,
      hopsMean: stats.hopsMean,
      hopsP95: stats.hopsP95,
      messagesMean: stats.messagesMean,
      lookupMsP50: stats.lookupMsP50,
      lookupMsP95: stats.lookupMsP95,
      trueK: stats.trueK,
      rssMiBPerPeer: round(rss.rssBytes / 2 ** 20 / peers, 1),
      trafficSampled: sampled.length,
      overlayKiBPerPeerMinute,
      totalKiBPerPeerMinute,
      blocksP1: blocks.length > 0 ? quantile(blocks, 0.01) : null,
      blocksP99: blocks.length > 0 ? quantile(blocks, 0.99) : null,
      blocksMean: blocks.length > 0 ? round(mean(blocks), 1) : null,
      blocksMax: blocks.length > 0 ? Math.max(...blocks) : null,
      shareSeconds,
      fetchSeconds
    }
  } finally {
    await swarmDown(dir).catch(() => {})
    await fs.rm(dir, { recursive: true, force: true })
  }
}

interface SentBytes { overlay: number, total: number }

/**
 * Bytes sent so far on the overlay's protocol (labels starting `protocol`)
 * and on every connection (`global`), from a Prometheus scrape; null when the
 * scrape has no transfer counters.
 */
function sentBytes (scrape: string, protocol: string): SentBytes | null {
  const line = /^libp2p_data_transfer_bytes_total\{protocol="([^"]*) sent"\} (\S+)$/gm
  let found = false
  let overlay = 0
  let total = 0
  for (const [, label, value] of scrape.matchAll(line)) {
    found = true
    if (label.startsWith(protocol)) overlay += Number(value)
    if (label === 'global') total += Number(value)
  }
  return found ? { overlay, total } : null
}

/** The markdown section for docs/benchmarks.md. */
export function renderOverlay (r: OverlayBenchResult): string[] {
  const dash = (v: number | null, unit = ''): string => v == null ? '-' : `${v}${unit}`
  return [
    `### Kademlia and Chord on the same swarm sizes (\`swarm up --overlay\`, k = ${K}, the same random keys on both; machine load average ${r.loadBefore} before, ${r.loadAfter} after)`,
    '',
    '| peers | overlay | processes | routable in (s) | routing state per peer | hops mean | hops p95 | ½ log2 N | log2 N | messages per lookup | lookup p50 (ms) | lookup p95 (ms) | true k | share (s) | fetch (s) |',
    '| ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
    ...r.runs.map(s => s.routableSeconds == null
      ? `| ${s.peers} | ${s.overlay} | - | not routable in ${s.timeoutSeconds} s | - | - | - | ${s.halfLog2N} | ${s.log2N} | - | - | - | - | - | - |`
      : `| ${s.peers} | ${s.overlay} | ${s.processes} | ${s.routableSeconds} | ${s.routingStatePerPeer} | ${s.hopsMean} | ${s.hopsP95} | ${s.halfLog2N} | ${s.log2N} | ${s.messagesMean} | ${s.lookupMsP50} | ${s.lookupMsP95} | ${Math.round((s.trueK ?? 0) * 100)}% | ${dash(s.shareSeconds)} | ${dash(s.fetchSeconds)} |`),
    '',
    `share: a ${r.runs[0]?.fileMiB ?? 0} MiB file shared on peer 0 (import, and placement on each block's k responsible); fetch: the same file fetched by the last peer. Routing state: distinct peers in \`GET /api/v1/routing\`, mean over the peers.`,
    '',
    `#### Memory, idle maintenance traffic and load balance (${r.idleSeconds} s idle; a ${r.runs[0]?.fileMiB ?? 0} MiB share with k = ${K})`,
    '',
    '| peers | overlay | RSS per peer (MiB) | overlay protocol sent per peer (KiB/min) | all sent per peer (KiB/min) | peers sampled | blocks per peer p1 | p99 | mean | max | max / mean |',
    '| ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
    ...r.runs.filter(s => s.routableSeconds != null).map(s =>
      `| ${s.peers} | ${s.overlay} | ${dash(s.rssMiBPerPeer)} | ${dash(s.overlayKiBPerPeerMinute)} | ${dash(s.totalKiBPerPeerMinute)} | ${dash(s.trafficSampled)} | ${dash(s.blocksP1)} | ${dash(s.blocksP99)} | ${dash(s.blocksMean)} | ${dash(s.blocksMax)} | ${s.blocksMax != null && s.blocksMean != null && s.blocksMean > 0 ? round(s.blocksMax / s.blocksMean, 2) : '-'} |`),
    '',
    `RSS: the swarm's processes summed after the idle window, divided by the peers they host. Sent: \`libp2p_data_transfer_bytes_total\` from \`GET /metrics\` over the ${r.idleSeconds} s idle window right after routable, per minute, on the overlay's own protocol (\`/shoal/kad/1.0.0\`, \`/shoal/chord/1.0.0\`) and on every connection (identify, ping and the rest included), mean over the peers whose scrape has the counters (peers sampled). Kademlia's periodic table refresh runs every 5 minutes (kad-dht's default): a shorter window can miss it. Blocks per peer: blocks in each peer's store right after the share, the sharer (which holds the whole file) left out.`,
    '',
    '![Lookup hops on Kademlia and on Chord against swarm size, next to log2 N and half of it](plots/overlay-hops.svg)'
  ]
}

/** docs/plots/overlay-hops.svg: lookup hops (mean) of each overlay by swarm size, next to log2 N and ½ log2 N. */
export function plotOverlayHops (r: OverlayBenchResult): string {
  const measured = (overlay: OverlayName): OverlayRun[] => r.runs.filter(s => s.overlay === overlay && s.hopsMean != null)
  const sizes = [...new Map(r.runs.map(s => [s.peers, s])).values()]
  return svgPlot({
    title: 'Lookup hops (mean) on Kademlia and on Chord, same swarm sizes and keys',
    xLabel: 'peers in the swarm',
    yLabel: 'hops',
    series: [
      ...OVERLAYS.map(overlay => ({ name: `${overlay} hops mean`, kind: 'bar' as const, decimals: 2, points: measured(overlay).map(s => ({ x: s.peers, y: s.hopsMean ?? 0 })) })),
      { name: 'log2 N', dashed: true, color: '#555', decimals: 1, points: sizes.map(s => ({ x: s.peers, y: s.log2N })) },
      { name: '½ log2 N', dashed: true, color: '#999', decimals: 1, points: sizes.map(s => ({ x: s.peers, y: s.halfLog2N })) }
    ]
  })
}

// `node bench/overlay.ts` runs this benchmark alone and prints the section.
if (import.meta.main === true) {
  const result = await benchOverlay(s => { process.stderr.write(s + '\n') })
  process.stdout.write(renderOverlay(result).join('\n') + '\n')
}
