/**
 * In-process test swarms: N real Shoal peers (real libp2p over TCP on
 * 127.0.0.1, real repos on disk) in this process.
 *
 *   const swarm = await createTestSwarm(10)
 *   const [a, b] = swarm.peers
 *   ...
 *   await swarm.destroy()
 *
 * Peer 0 starts first and every other peer bootstraps from it; `createTestSwarm`
 * returns once the swarm is routable (routable.ts: on Kademlia every routing
 * table holds min(N-1, k) peers, on Chord the ring is correct at every peer). `destroy()` stops
 * peers in reverse order and removes the temporary folder it made.
 */
import fs from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { DHT_K_BUCKET_SIZE, LOCAL_SWARM_ALLOW } from '../constants.ts'
import { SwarmError } from '../errors.ts'
import { ShoalPeer } from '../peer/peer.ts'
import { defaultConfig, type ShoalConfig } from '../peer/config.ts'
import { Repo } from '../peer/repo.ts'
import { mapConcurrent, waitFor } from '../utils/wait.ts'
import type { OverlayName } from '../routing/index.ts'
import { routingShortfall, SwarmRing } from './routable.ts'

/** How long, once every routing table is full, the self-lookups still running may take to finish. */
const QUIET_TIMEOUT_MS = 30_000

export interface TestSwarmOptions {
  /** Parent folder for peer repos; default: a new temporary folder (removed on destroy). */
  dir?: string
  /** Config settings for every peer's repo (e.g. a short repair interval). */
  config?: Partial<ShoalConfig>
  /** The overlay every peer runs (default: `config.overlay`, else kademlia). */
  overlay?: OverlayName
  /** kad-dht k (bucket size and lookup width); default 20. */
  kBucketSize?: number
  /** Collect libp2p metrics (default false: cheaper for big swarms). */
  metrics?: boolean
  /** How long to wait for the swarm to become routable (default 30 s + 0.5 s/peer). */
  timeoutMs?: number
  /** Peers started at once after peer 0 (default 10). */
  startConcurrency?: number
  signal?: AbortSignal
}

export interface TestSwarm {
  readonly dir: string
  readonly peers: ShoalPeer[]
  /** Adds and starts one more peer, bootstrapped from the swarm. */
  addPeer(): Promise<ShoalPeer>
  /**
   * Waits until every running peer's routing table is full enough and no peer
   * is still looking itself up (so tests start on a quiet swarm).
   */
  waitRoutable(options?: { timeoutMs?: number, signal?: AbortSignal }): Promise<void>
  destroy(): Promise<void>
}

export async function createTestSwarm (count: number, options: TestSwarmOptions = {}): Promise<TestSwarm> {
  if (!Number.isInteger(count) || count < 1) throw new SwarmError(`a swarm needs at least 1 peer, got ${count}`)
  const ownDir = options.dir == null
  const dir = options.dir ?? await fs.mkdtemp(path.join(os.tmpdir(), 'shoal-swarm-'))
  const k = options.kBucketSize ?? DHT_K_BUCKET_SIZE
  const overlay = options.overlay ?? options.config?.overlay ?? 'kademlia'
  const peers: ShoalPeer[] = []
  let nextIndex = 0

  const newPeer = async (bootstrap: string[]): Promise<ShoalPeer> => {
    const index = nextIndex++
    const repoPath = path.join(dir, `peer-${index}`)
    await Repo.init(repoPath, {
      ...options.config,
      overlay,
      listen: ['/ip4/127.0.0.1/tcp/0'],
      api: '127.0.0.1:0',
      dht: { kBucketSize: k },
      // the swarm's peers all dial from 127.0.0.1, many a second: exempt
      // them (and only them) from the per-host inbound limits
      connections: { ...defaultConfig().connections, ...options.config?.connections, allow: [...(options.config?.connections?.allow ?? []), LOCAL_SWARM_ALLOW] }
    })
    const peer = await ShoalPeer.open(repoPath, {
      bootstrap,
      metrics: options.metrics ?? false
    })
    peers[index] = peer
    await peer.start()
    return peer
  }

  // the first peer still running (peer 0 may have been stopped by a test)
  const bootstrapAddrs = (): string[] => peers.find(p => p?.isStarted)?.multiaddrs() ?? []

  const swarm: TestSwarm = {
    dir,
    peers,
    addPeer: async () => newPeer(bootstrapAddrs()),
    waitRoutable: async (opts = {}) => {
      const running = peers.filter(p => p.isStarted)
      const ids = running.map(p => p.peerId.toString())
      const routable = { overlay, kBucketSize: k, successorListLength: options.config?.chord?.successorListLength }
      const ring = overlay === 'chord' ? new SwarmRing(ids, routable.successorListLength) : undefined
      const shortOf = (p: ShoalPeer): string | undefined => routingShortfall(p.overlay.routing(), ids, routable, ring)
      let lastRefresh = Date.now()
      const signal = opts.signal ?? options.signal
      await waitFor(() => {
        const short = running.filter(p => shortOf(p) != null)
        if (short.length > 0 && Date.now() - lastRefresh > 3_000) {
          // early peers stop looking themselves up before later ones arrive
          lastRefresh = Date.now()
          short.forEach(p => { p.refreshRouting() })
        }
        return short.length === 0
      }, {
        timeoutMs: opts.timeoutMs ?? options.timeoutMs ?? 30_000 + 500 * running.length,
        intervalMs: 50,
        signal,
        message: () => {
          const short = running.map(p => [peers.indexOf(p), shortOf(p)] as const).filter(([, why]) => why != null)
          return `${overlay} swarm of ${running.length} not routable: ${short.length} peer(s) short (${short.slice(0, 5).map(([i, why]) => `peer-${i}: ${why}`).join(', ')})`
        }
      })
      // then a quiet swarm for the test: the self-lookups running (the last
      // nudge above may have started some just now) finish on their own
      // clock, not on the deadline the tables had to fill by
      await waitFor(() => running.every(p => !p.isBootstrapping), {
        timeoutMs: QUIET_TIMEOUT_MS,
        intervalMs: 50,
        signal,
        message: () => `swarm of ${running.length}: peers still looking themselves up ${QUIET_TIMEOUT_MS / 1000} s after the routing tables filled`
      })
    },
    destroy: async () => {
      for (const peer of [...peers].reverse()) await peer?.stop()
      if (ownDir) await fs.rm(dir, { recursive: true, force: true })
    }
  }

  try {
    await newPeer([])
    const rest = Array.from({ length: count - 1 })
    await mapConcurrent(rest, options.startConcurrency ?? 10, async () => newPeer(bootstrapAddrs()))
    await swarm.waitRoutable()
  } catch (err) {
    await swarm.destroy().catch(() => {})
    throw err
  }
  return swarm
}
