/**
 * Local swarms of separate daemon processes, for users and benchmarks:
 * `shoal swarm up | status | down`.
 *
 *   DIR/peer-<i>/        each peer's repo (its daemon.log inside)
 *   DIR/swarm.json       index, peerId, repo, api, multiaddrs, pid per peer
 *
 * `up` works in two steps:
 * 1. every peer starts, connected to no one (all processes at once);
 * 2. knowing every peer's ID and address, it plans who connects to whom
 *    (contact-plan.ts: each peer's XOR-closest peers and a couple in every
 *    farther bucket, at least min(N-1, k) contacts each, every pair once)
 *    and hands each peer its list (`POST /api/v1/dht/join`). kad-dht adds
 *    a contact to its routing table once connected and identified.
 * It returns only when every routing table holds min(N-1, k) peers; a peer
 * still short (a dial failed) dials its contacts again, and one more close
 * peer each time. Swarm peers run with `plannedJoin` (see libp2p.ts): no
 * start-up random walk and no dialling of every peer a reply names, so they
 * open about the planned connections and no more. Daemons run detached, so they outlive the CLI that
 * started them; `down` stops them with SIGTERM (SIGKILL after a grace
 * period) and waits until no process is left.
 *
 * Process layout: up to OWN_PROCESS_MAX_PEERS peers, every peer is its own
 * `shoal daemon` process (what tests that kill a peer need). Bigger swarms
 * run `peersPerProcess` peers in each swarm host process (swarm-host.ts),
 * about one host per core: a daemon process costs ~0.35 CPU-s just to load
 * and then runs libp2p cold, so 100 of them on 2 cores cannot come up fast
 * (measured in docs/benchmarks.md). Every peer still has its own repo,
 * identity, port, API and swarm.json entry; `swarm stop --peer I` stops one
 * peer of a host alone through its API.
 */
import { spawn } from 'node:child_process'
import { openSync, closeSync, readFileSync } from 'node:fs'
import fs from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { peerIdFromString } from '@libp2p/peer-id'
import { ApiClient } from '../api/client.ts'
import { DHT_K_BUCKET_SIZE, OWN_PROCESS_MAX_PEERS, REPO_FILES, SHUTDOWN_TIMEOUT_MS } from '../constants.ts'
import { SwarmError, SwarmNotFoundError, InvalidInputError } from '../errors.ts'
import type { ShoalConfig } from '../peer/config.ts'
import { kadIdOfPeer } from '../routing/kademlia/kad-distance.ts'
import { Repo, writeFileAtomic } from '../peer/repo.ts'
import { isProcessAlive } from '../utils/process.ts'
import { mapConcurrent, sleep, waitFor } from '../utils/wait.ts'
import { DAEMON_ENV, TS_ENTRY, daemonEntry, type DaemonEntry } from './daemon-bundle.ts'
import { planContacts } from './contact-plan.ts'
import { routableThreshold } from './routable.ts'

export const SWARM_FILE = 'swarm.json'
export const MAX_SWARM_PEERS = 500
/** Daemons starting at once: more only thrash a 2-core machine. */
const START_CONCURRENCY = 8
/** Status polls cost the daemons CPU too: once a second is plenty. */
const SWARM_POLL_INTERVAL_MS = 1_000

/** Default layout: one process per peer for small swarms, else about one host per core. */
export function defaultPeersPerProcess (peers: number): number {
  if (peers <= OWN_PROCESS_MAX_PEERS) return 1
  return Math.ceil(peers / Math.max(2, os.availableParallelism()))
}

export interface SwarmPeerInfo {
  index: number
  peerId: string
  repo: string
  api: string
  multiaddrs: string[]
  /** The process running this peer: its own daemon, or a swarm host shared with others. */
  pid: number
  /** How many peers that process runs (1: its own daemon). */
  peersInProcess: number
}

export interface SwarmFile {
  createdAt: string
  replicas: number
  peers: SwarmPeerInfo[]
}

export type SwarmUpProgress =
  | { name: 'swarm:peer-started', started: number, total: number }
  | { name: 'swarm:routing', routable: number, total: number }

export interface SwarmUpOptions {
  peers: number
  dir: string
  replicas?: number
  /** Other config settings for every peer's new repo (e.g. a repair interval). */
  config?: Partial<ShoalConfig>
  /** Default: 30 s + 2 s per peer. */
  timeoutMs?: number
  /** Daemons starting at once after peer 0 (default 8). */
  startConcurrency?: number
  /** Peers per process: 1 = each its own daemon; default: defaultPeersPerProcess(peers). */
  peersPerProcess?: number
  /** Settings for single peers (benchmarks: a rate-capped holder, a profiled fetcher). */
  peer?: (index: number) => SwarmPeerOverrides | undefined
  onProgress?: (event: SwarmUpProgress) => void
  signal?: AbortSignal
}

export interface SwarmPeerOverrides {
  /** Config over `config` for this peer's new repo. */
  config?: Partial<ShoalConfig>
  /** Node flags for this peer's daemon (own-process peers only), e.g. --cpu-prof, which NODE_OPTIONS refuses. */
  nodeArgs?: string[]
  /** Run bin/shoal.mjs instead of the minified bundle (own-process peers only): a CPU profile then names functions and files. */
  source?: boolean
}

export interface SwarmUpResult extends SwarmFile {
  dir: string
  routableMs: number
}

export async function swarmUp (options: SwarmUpOptions): Promise<SwarmUpResult> {
  const count = options.peers
  if (!Number.isInteger(count) || count < 1 || count > MAX_SWARM_PEERS) {
    throw new InvalidInputError(`--peers must be an integer from 1 to ${MAX_SWARM_PEERS}, got ${count}`)
  }
  const dir = path.resolve(options.dir)
  const existing = await readSwarmFile(dir).catch(() => undefined)
  if (existing?.peers.some(p => isSwarmProcess(p.pid, p.repo)) === true) {
    throw new SwarmError(`a swarm is already running in ${dir} (stop it with "shoal swarm down --dir ${dir}")`)
  }
  const stat = await fs.stat(dir).catch(() => undefined)
  if (stat != null && !stat.isDirectory()) throw new InvalidInputError(`swarm dir ${dir} is not a directory`)
  await fs.mkdir(dir, { recursive: true })

  const started = performance.now()
  const deadline = Date.now() + (options.timeoutMs ?? 30_000 + 2000 * count)
  const replicas = options.replicas ?? 3
  const repos = Array.from({ length: count }, (_, i) => path.join(dir, `peer-${i}`))
  await mapConcurrent(repos, 8, async (repo, i) => {
    await Repo.init(repo, { ...options.config, ...options.peer?.(i)?.config, listen: ['/ip4/127.0.0.1/tcp/0'], api: '127.0.0.1:0', replicas })
    // a fresh swarm starts from scratch: no stale address or lock from a killed run
    await fs.rm(path.join(repo, REPO_FILES.apiAddress), { force: true })
  })

  const entry = await daemonEntry()
  const perProcess = Math.max(1, Math.min(count, options.peersPerProcess ?? defaultPeersPerProcess(count)))
  if (!Number.isInteger(perProcess)) throw new InvalidInputError(`peers per process must be an integer, got ${options.peersPerProcess}`)
  const groups: number[][] = []
  for (let i = 0; i < count; i += perProcess) groups.push(Array.from({ length: Math.min(perProcess, count - i) }, (_, j) => i + j))
  const peers: SwarmPeerInfo[] = []
  const pids: number[] = []
  try {
    let startedCount = 0
    const waitPeer = async (index: number, pid: number, log: string): Promise<void> => {
      peers[index] = { ...await waitForDaemon(index, repos[index], pid, log, deadline, options.signal), peersInProcess: groups.find(g => g.includes(index))!.length }
      options.onProgress?.({ name: 'swarm:peer-started', started: ++startedCount, total: count })
    }
    /** Spawns a group's process; resolves when all of its peers are up. */
    const startGroup = async (group: number[]): Promise<void> => {
      const { pid, log } = group.length === 1
        ? spawnDaemon(entry, repos[group[0]], options.peer?.(group[0]))
        : spawnHost(entry, dir, groups.indexOf(group), group.map(i => repos[i]))
      group.forEach(i => { pids[i] = pid })
      await Promise.all(group.map(async i => waitPeer(i, pid, log)))
    }
    // every peer up first, none connected to any other yet
    await mapConcurrent(groups, perProcess === 1 ? options.startConcurrency ?? START_CONCURRENCY : groups.length, startGroup)

    // then every peer connects to the contacts planned for it
    const need = routableThreshold(count, DHT_K_BUCKET_SIZE)
    const clients = await Promise.all(repos.map(async repo => ApiClient.fromRepo(repo)))
    const plan = planContacts(peers.map(p => kadIdOfPeer(peerIdFromString(p.peerId))), { minContacts: need })
    const addrs = (list: number[]): string[] => list.flatMap(j => peers[j].multiaddrs)
    await Promise.all(plan.dials.map(async (dials, i) => {
      await clients[i].join(addrs(dials), { signal: options.signal, timeoutMs: Math.max(1, deadline - Date.now()) })
    }))

    const sizes = new Array<number>(count).fill(0)
    const retries = new Array<number>(count).fill(0)
    await waitFor(async () => {
      await Promise.all(clients.map(async (client, i) => {
        if (sizes[i] >= need) return
        sizes[i] = (await client.status({ signal: options.signal })).dht.routingTableSize
        if (sizes[i] >= need) return
        // a dial failed (or a connection dropped): this peer dials all its
        // contacts itself (libp2p reuses the connections it has), then one
        // more of its closest peers each time it is still short
        const extra = plan.byDistance[i].filter(j => !plan.contacts[i].includes(j)).slice(0, retries[i]++)
        const again = [...plan.contacts[i], ...extra]
        sizes[i] = (await client.join(addrs(again), { signal: options.signal, timeoutMs: Math.max(1, deadline - Date.now()) })).routingTableSize
      }))
      options.onProgress?.({ name: 'swarm:routing', routable: sizes.filter(s => s >= need).length, total: count })
      return sizes.every(s => s >= need)
    }, {
      timeoutMs: Math.max(0, deadline - Date.now()),
      intervalMs: SWARM_POLL_INTERVAL_MS,
      signal: options.signal,
      message: () => {
        const short = sizes.map((s, i) => [i, s]).filter(([, s]) => s < need)
        return `swarm not routable in time: ${short.length} of ${count} peers know fewer than ${need} peers (${short.slice(0, 5).map(([i, s]) => `peer-${i}: ${s}`).join(', ')})`
      }
    })
    const file: SwarmFile = { createdAt: new Date().toISOString(), replicas, peers }
    await writeFileAtomic(path.join(dir, SWARM_FILE), JSON.stringify(file, null, 2) + '\n', 0o644)
    return { ...file, dir, routableMs: performance.now() - started }
  } catch (err) {
    await stopProcesses(pids.map((pid, i) => ({ pid, repo: repos[i] })).filter(p => p.pid != null))
    throw err
  }
}

function spawnProcess (entry: DaemonEntry, args: string[], log: string, env: Record<string, string> = {}, nodeArgs: string[] = []): number {
  const fd = openSync(log, 'a')
  try {
    const child = spawn(process.execPath, [...nodeArgs, entry.script, ...args], {
      detached: true,
      stdio: ['ignore', fd, fd],
      env: { ...process.env, ...entry.env, ...env }
    })
    child.unref()
    if (child.pid == null) throw new SwarmError(`could not start ${args.slice(0, 2).join(' ')} (log: ${log})`)
    return child.pid
  } finally {
    closeSync(fd)
  }
}

function spawnDaemon (entry: DaemonEntry, repo: string, extra?: SwarmPeerOverrides): { pid: number, log: string } {
  const log = path.join(repo, 'daemon.log')
  const args = ['daemon', '--repo', repo, '--planned-join']
  const script = extra?.source === true ? { script: TS_ENTRY, env: DAEMON_ENV } : entry
  return { pid: spawnProcess(script, args, log, { SHOAL_REPO: repo }, extra?.nodeArgs), log }
}

/** A swarm host for several peers; every repo is its own argument (`down` checks /proc/PID/cmdline). */
function spawnHost (entry: DaemonEntry, dir: string, host: number, hostRepos: string[]): { pid: number, log: string } {
  const log = path.join(dir, `host-${host}.log`)
  const args = ['swarm', 'host', ...hostRepos]
  return { pid: spawnProcess(entry, args, log), log }
}

async function waitForDaemon (index: number, repo: string, pid: number, logFile: string, deadline: number, signal?: AbortSignal): Promise<Omit<SwarmPeerInfo, 'peersInProcess'>> {
  let info: Omit<SwarmPeerInfo, 'peersInProcess'> | undefined
  await waitFor(async () => {
    if (!isProcessAlive(pid)) {
      const tail = (await fs.readFile(logFile, 'utf8').catch(() => '')).trim().split('\n').at(-1)
      throw new SwarmError(`daemon peer-${index} exited while starting: ${tail ?? 'no output'} (log: ${logFile})`)
    }
    const client = await ApiClient.fromRepo(repo).catch(() => undefined)
    if (client == null) return false
    const id = await client.id({ signal, timeoutMs: 5000 }).catch(() => undefined)
    if (id == null) return false
    info = { index, peerId: id.peerId, repo, api: client.baseUrl.replace('http://', ''), multiaddrs: id.multiaddrs, pid }
    return true
  }, {
    timeoutMs: Math.max(0, deadline - Date.now()),
    intervalMs: 50,
    signal,
    message: () => `daemon peer-${index} did not start in time (log: ${logFile})`
  })
  return info!
}

export async function readSwarmFile (dir: string): Promise<SwarmFile> {
  const file = path.join(path.resolve(dir), SWARM_FILE)
  let text: string
  try {
    text = await fs.readFile(file, 'utf8')
  } catch (err) {
    if ((err as { code?: string }).code === 'ENOENT') throw new SwarmNotFoundError(`no swarm in ${path.resolve(dir)} (no ${SWARM_FILE}; start one with "shoal swarm up")`)
    throw err
  }
  try {
    const parsed = JSON.parse(text) as SwarmFile
    if (!Array.isArray(parsed.peers)) throw new Error('"peers" is not an array')
    return parsed
  } catch (err) {
    throw new InvalidInputError(`invalid ${file}: ${(err as Error).message}`)
  }
}

export interface SwarmPeerStatus {
  index: number
  peerId: string
  pid: number
  alive: boolean
  connections: number | null
  routingTableSize: number | null
}

export async function swarmStatus (dir: string, signal?: AbortSignal): Promise<{ dir: string, peers: SwarmPeerStatus[] }> {
  const swarm = await readSwarmFile(dir)
  const peers = await Promise.all(swarm.peers.map(async (p): Promise<SwarmPeerStatus> => {
    const base = { index: p.index, peerId: p.peerId, pid: p.pid }
    if (!isSwarmProcess(p.pid, p.repo)) return { ...base, alive: false, connections: null, routingTableSize: null }
    try {
      const status = await (await ApiClient.fromRepo(p.repo)).status({ signal, timeoutMs: 5000 })
      return { ...base, alive: true, connections: status.connections, routingTableSize: status.dht.routingTableSize }
    } catch {
      return { ...base, alive: false, connections: null, routingTableSize: null }
    }
  }))
  return { dir: path.resolve(dir), peers }
}

export async function swarmDown (dir: string): Promise<{ dir: string, stopped: number, killed: number }> {
  const swarm = await readSwarmFile(dir)
  const result = await stopProcesses(swarm.peers)
  await fs.rm(path.join(path.resolve(dir), SWARM_FILE), { force: true })
  return { dir: path.resolve(dir), ...result }
}

/**
 * Stops one peer of a swarm: SIGTERM to its daemon, or, in a swarm host,
 * `POST /api/v1/shutdown` to that peer alone. Waits until it is gone.
 */
export async function swarmStopPeer (dir: string, index: number): Promise<{ dir: string, index: number, peerId: string, pid: number, stopped: boolean }> {
  const swarm = await readSwarmFile(dir)
  const peer = swarm.peers.find(p => p.index === index)
  if (peer == null) throw new InvalidInputError(`no peer ${index} in the swarm in ${path.resolve(dir)} (it has peers 0 to ${swarm.peers.length - 1})`)
  const base = { dir: path.resolve(dir), index, peerId: peer.peerId, pid: peer.pid }
  if (!isSwarmProcess(peer.pid, peer.repo)) return { ...base, stopped: false }
  if ((peer.peersInProcess ?? 1) <= 1) {
    const { stopped, killed } = await stopProcesses([peer])
    return { ...base, stopped: stopped + killed > 0 }
  }
  const client = await ApiClient.fromRepo(peer.repo).catch(() => undefined)
  if (client == null) return { ...base, stopped: false }
  try {
    await client.shutdown({ timeoutMs: 5000 })
  } catch {
    return { ...base, stopped: false }
  }
  // the API address file goes when the peer has stopped
  await waitFor(async () => !(await fs.access(path.join(peer.repo, REPO_FILES.apiAddress)).then(() => true, () => false)), {
    timeoutMs: SHUTDOWN_TIMEOUT_MS,
    intervalMs: 50,
    message: () => `peer ${index} did not stop within ${SHUTDOWN_TIMEOUT_MS} ms`
  })
  return { ...base, stopped: true }
}

/**
 * SIGTERM to each process once, wait for a clean exit, SIGKILL what is left
 * after the grace period. Counts peers (a host's peers stop with it).
 */
async function stopProcesses (procs: Array<{ pid: number, repo: string }>): Promise<{ stopped: number, killed: number }> {
  const running = procs.filter(p => isSwarmProcess(p.pid, p.repo))
  const pids = [...new Set(running.map(p => p.pid))]
  for (const pid of pids) signalProcess(pid, 'SIGTERM')
  const deadline = Date.now() + SHUTDOWN_TIMEOUT_MS + 2_000
  while (pids.some(isProcessAlive) && Date.now() < deadline) await sleep(50)
  const killedPids = pids.filter(isProcessAlive)
  for (const pid of killedPids) signalProcess(pid, 'SIGKILL')
  while (pids.some(isProcessAlive)) await sleep(20)
  const killed = running.filter(p => killedPids.includes(p.pid)).length
  return { stopped: running.length - killed, killed }
}

function signalProcess (pid: number, sig: NodeJS.Signals): void {
  try { process.kill(pid, sig) } catch {}
}

/** Alive, and (where /proc tells) a shoal daemon on that repo, not a reused pid. */
function isSwarmProcess (pid: number, repo: string): boolean {
  if (!Number.isInteger(pid) || pid <= 0 || !isProcessAlive(pid)) return false
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').includes(repo)
  } catch {
    return true
  }
}
