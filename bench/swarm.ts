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
import { closestByXor } from '../src/peer/kad-distance.ts'
import { swarmDown, swarmStatus, swarmUp } from '../src/swarm/process-swarm.ts'
import { createTestSwarm } from '../src/swarm/test-swarm.ts'
import { cpuSecondsOf, procStatusKiB, round } from './stats.ts'

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

const LOOKUPS = 40

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

function quantile (values: number[], q: number): number {
  const sorted = [...values].sort((a, b) => a - b)
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]
}

