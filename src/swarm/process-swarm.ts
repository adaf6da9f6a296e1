/**
 * Local swarms of separate daemon processes, for users and benchmarks:
 * `shoal swarm up | status | down`.
 *
 *   DIR/peer-<i>/        each peer's repo (its daemon.log inside)
 *   DIR/swarm.json       index, peerId, repo, api, multiaddrs, pid per peer
 *
 * `up` starts peer 0, then the rest, each bootstrapped off peer 0 and two
 * random peers already up (so peer 0 is not every newcomer's only contact
 * and the hot spot of every early lookup), and returns only when
 * every routing table holds min(N-1, k) peers. Daemons run detached, so they
 * outlive the CLI that started them; `down` stops them with SIGTERM (SIGKILL
 * after a grace period) and waits until no process is left.
 */
import { spawn } from 'node:child_process'
import { openSync, closeSync, readFileSync } from 'node:fs'
import fs from 'node:fs/promises'
import path from 'node:path'
import { ApiClient } from '../api/client.ts'
import { DHT_K_BUCKET_SIZE, REPO_FILES, SHUTDOWN_TIMEOUT_MS } from '../constants.ts'
import { SwarmError, SwarmNotFoundError, InvalidInputError } from '../errors.ts'
import { Repo, writeFileAtomic } from '../peer/repo.ts'
import { isProcessAlive } from '../utils/process.ts'
import { mapConcurrent, sleep, waitFor } from '../utils/wait.ts'
import { daemonEntry, type DaemonEntry } from './daemon-bundle.ts'
import { routableThreshold } from './routable.ts'

export const SWARM_FILE = 'swarm.json'
export const MAX_SWARM_PEERS = 500
/** Daemons starting at once: more only thrash a 2-core machine. */
const START_CONCURRENCY = 8
/** Peers each newcomer bootstraps from: peer 0 and random others already up. */
const BOOTSTRAP_PEERS = 3
/** A short peer idle this long since its last nudge gets another. */
const SWARM_REFRESH_INTERVAL_MS = 2_000
/** Status polls cost the daemons CPU too: once a second is plenty. */
const SWARM_POLL_INTERVAL_MS = 1_000

export interface SwarmPeerInfo {
  index: number
  peerId: string
  repo: string
  api: string
  multiaddrs: string[]
  pid: number
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
  /** Default: 30 s + 2 s per peer. */
  timeoutMs?: number
  /** Daemons starting at once after peer 0 (default 8). */
  startConcurrency?: number
  onProgress?: (event: SwarmUpProgress) => void
  signal?: AbortSignal
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
  await mapConcurrent(repos, 8, async repo => {
    await Repo.init(repo, { listen: ['/ip4/127.0.0.1/tcp/0'], api: '127.0.0.1:0', replicas })
    // a fresh swarm starts from scratch: no stale address or lock from a killed run
    await fs.rm(path.join(repo, REPO_FILES.apiAddress), { force: true })
  })

  const entry = await daemonEntry()
  const peers: SwarmPeerInfo[] = []
  const pids: number[] = []
  try {
    let startedCount = 0
    const startOne = async (index: number, bootstrap: string[]): Promise<void> => {
      const pid = spawnDaemon(entry, repos[index], bootstrap)
      pids[index] = pid
      peers[index] = await waitForDaemon(index, repos[index], pid, deadline, options.signal)
      options.onProgress?.({ name: 'swarm:peer-started', started: ++startedCount, total: count })
    }
    await startOne(0, [])
    // libp2p's own addresses end in /p2p/<id>
    const bootstrapFor = (): string[] => {
      const up = peers.filter(p => p != null)
      const picks = new Set([up[0], ...Array.from({ length: BOOTSTRAP_PEERS - 1 }, () => up[Math.floor(Math.random() * up.length)])])
      return [...picks].flatMap(p => p.multiaddrs)
    }
    await mapConcurrent(repos.slice(1), options.startConcurrency ?? START_CONCURRENCY, async (_, i) => startOne(i + 1, bootstrapFor()))

    const need = routableThreshold(count, DHT_K_BUCKET_SIZE)
    const clients = await Promise.all(repos.map(async repo => ApiClient.fromRepo(repo)))
    const sizes = new Array<number>(count).fill(0)
    const lastRefresh = new Array<number>(count).fill(0)
    await waitFor(async () => {
      await Promise.all(clients.map(async (client, i) => {
        if (sizes[i] >= need) return
        const { dht } = await client.status({ signal: options.signal })
        sizes[i] = dht.routingTableSize
        // peers that joined early stop looking themselves up before later
        // peers arrive: a short peer whose lookups have stopped gets one more
        if (sizes[i] < need && !dht.refreshing && Date.now() - lastRefresh[i] > SWARM_REFRESH_INTERVAL_MS) {
          lastRefresh[i] = Date.now()
          await client.refreshRouting({ signal: options.signal })
        }
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

function spawnDaemon (entry: DaemonEntry, repo: string, bootstrap: string[]): number {
  const log = openSync(path.join(repo, 'daemon.log'), 'a')
  try {
    const args = [entry.script, 'daemon', '--repo', repo, ...bootstrap.flatMap(ma => ['--bootstrap', ma])]
    const child = spawn(process.execPath, args, {
      detached: true,
      stdio: ['ignore', log, log],
      env: { ...process.env, ...entry.env, SHOAL_REPO: repo }
    })
    child.unref()
    if (child.pid == null) throw new SwarmError(`could not start a daemon for ${repo}`)
    return child.pid
  } finally {
    closeSync(log)
  }
}

async function waitForDaemon (index: number, repo: string, pid: number, deadline: number, signal?: AbortSignal): Promise<SwarmPeerInfo> {
  let info: SwarmPeerInfo | undefined
  await waitFor(async () => {
    if (!isProcessAlive(pid)) {
      const tail = (await fs.readFile(path.join(repo, 'daemon.log'), 'utf8').catch(() => '')).trim().split('\n').at(-1)
      throw new SwarmError(`daemon peer-${index} exited while starting: ${tail ?? 'no output'} (log: ${path.join(repo, 'daemon.log')})`)
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
    message: () => `daemon peer-${index} did not start in time (log: ${path.join(repo, 'daemon.log')})`
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

/** SIGTERM, wait for a clean exit, SIGKILL what is left after the grace period. */
async function stopProcesses (procs: Array<{ pid: number, repo: string }>): Promise<{ stopped: number, killed: number }> {
  const running = procs.filter(p => isSwarmProcess(p.pid, p.repo))
  for (const p of running) signalProcess(p.pid, 'SIGTERM')
  const deadline = Date.now() + SHUTDOWN_TIMEOUT_MS
  while (running.some(p => isProcessAlive(p.pid)) && Date.now() < deadline) await sleep(50)
  let killed = 0
  for (const p of running.filter(p => isProcessAlive(p.pid))) {
    signalProcess(p.pid, 'SIGKILL')
    killed++
  }
  while (running.some(p => isProcessAlive(p.pid))) await sleep(20)
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
