/**
 * The processes of a process swarm: starting a peer's daemon or a swarm
 * host (detached, so they outlive the command that started them; in a lab
 * host's network namespace through `ip netns exec`, which execs the daemon
 * in place, so the pid is the daemon's), waiting until a peer answers on its
 * API, and stopping them.
 */
import { spawn } from 'node:child_process'
import { closeSync, openSync, readFileSync } from 'node:fs'
import fs from 'node:fs/promises'
import path from 'node:path'
import { ApiClient } from '../api/client.ts'
import { REPO_FILES, SHUTDOWN_TIMEOUT_MS } from '../constants.ts'
import { SwarmError } from '../errors.ts'
import type { ShoalConfig } from '../peer/config.ts'
import { LAB_LINK_ENV } from '../transport/link-delay.ts'
import { isProcessAlive } from '../utils/process.ts'
import { sleep, waitFor } from '../utils/wait.ts'
import { DAEMON_ENV, TS_ENTRY, type DaemonEntry } from './daemon-bundle.ts'
import type { LinkSpec } from './lab/index.ts'
import type { SwarmPeerInfo } from './swarm-file.ts'

export interface SwarmPeerOverrides {
  /** Config over `config` for this peer's new repo. */
  config?: Partial<ShoalConfig>
  /** Node flags for this peer's daemon (own-process peers only), e.g. --cpu-prof, which NODE_OPTIONS refuses. */
  nodeArgs?: string[]
  /** Run bin/shoal.mjs instead of the minified bundle (own-process peers only): a CPU profile then names functions and files. */
  source?: boolean
  /** Lab swarms: this peer's host link (its host's, when it shares a process). */
  link?: Partial<LinkSpec>
}

/** Where a process runs: a lab host's namespace and link file, or the machine's own network. */
export interface ProcessPlace {
  netns?: string
  linkFile?: string
}

function spawnProcess (entry: DaemonEntry, args: string[], log: string, place: ProcessPlace, env: Record<string, string> = {}, nodeArgs: string[] = []): number {
  const fd = openSync(log, 'a')
  try {
    const node = [process.execPath, ...nodeArgs, entry.script, ...args]
    const [command, ...commandArgs] = place.netns != null ? ['ip', 'netns', 'exec', place.netns, ...node] : node
    const child = spawn(command, commandArgs, {
      detached: true,
      stdio: ['ignore', fd, fd],
      env: { ...process.env, ...entry.env, ...env, ...(place.linkFile != null ? { [LAB_LINK_ENV]: place.linkFile } : {}) }
    })
    child.unref()
    if (child.pid == null) throw new SwarmError(`could not start ${args.slice(0, 2).join(' ')} (log: ${log})`)
    return child.pid
  } finally {
    closeSync(fd)
  }
}

export interface SpawnDaemonOptions {
  extra?: SwarmPeerOverrides
  /** Addresses to listen on (default: the repo's config). */
  listen?: string[]
  /** See spawnHost (default true). */
  plannedJoin?: boolean
}

export function spawnDaemon (entry: DaemonEntry, repo: string, place: ProcessPlace, options: SpawnDaemonOptions = {}): { pid: number, log: string } {
  const { extra, listen = [], plannedJoin = true } = options
  const log = path.join(repo, 'daemon.log')
  const args = ['daemon', '--repo', repo, ...(plannedJoin ? ['--planned-join'] : []), ...listen.flatMap(ma => ['--listen', ma])]
  const script = extra?.source === true ? { script: TS_ENTRY, env: DAEMON_ENV } : entry
  return { pid: spawnProcess(script, args, log, place, { SHOAL_REPO: repo }, extra?.nodeArgs), log }
}

/**
 * A swarm host for several peers; every repo is its own argument (`down`
 * checks /proc/PID/cmdline). `plannedJoin`: its peers are handed their
 * contacts (a contact plan), not left to join through seeds as any daemon
 * would (see KademliaInit.plannedJoin).
 */
export function spawnHost (entry: DaemonEntry, dir: string, host: number, hostRepos: string[], place: ProcessPlace, plannedJoin: boolean): { pid: number, log: string } {
  const log = path.join(dir, `host-${host}.log`)
  const args = ['swarm', 'host', ...(plannedJoin ? ['--planned-join'] : []), ...hostRepos]
  return { pid: spawnProcess(entry, args, log, place), log }
}

/** Waits until the peer answers on its API socket; fails early if its process exits. Remove <repo>/api before starting it. */
export async function waitForDaemon (index: number, repo: string, pid: number, logFile: string, deadline: number, signal?: AbortSignal): Promise<Omit<SwarmPeerInfo, 'peersInProcess'>> {
  let info: Omit<SwarmPeerInfo, 'peersInProcess'> | undefined
  await waitFor(async () => {
    if (!isProcessAlive(pid)) {
      const tail = (await fs.readFile(logFile, 'utf8').catch(() => '')).trim().split('\n').at(-1)
      throw new SwarmError(`daemon peer-${index} exited while starting: ${tail ?? 'no output'} (log: ${logFile})`)
    }
    // the daemon writes <repo>/api once its API is up, just before it takes
    // requests such as join (the socket answers a moment earlier); the
    // swarm removed any stale one before it started the process
    if (!(await fs.access(path.join(repo, REPO_FILES.apiAddress)).then(() => true, () => false))) return false
    const client = await ApiClient.fromRepo(repo).catch(() => undefined)
    if (client == null) return false
    const status = await client.status({ signal, timeoutMs: 5000 }).catch(() => undefined)
    if (status == null) return false
    info = {
      index,
      peerId: status.peerId,
      repo,
      api: status.api ?? '',
      apiSocket: path.join(repo, REPO_FILES.apiSocket),
      multiaddrs: status.multiaddrs,
      pid
    }
    return true
  }, {
    timeoutMs: Math.max(0, deadline - Date.now()),
    intervalMs: 50,
    signal,
    message: () => `daemon peer-${index} did not start in time (log: ${logFile})`
  })
  return info!
}

/**
 * SIGTERM to each process once, wait for a clean exit, SIGKILL what is left
 * after the grace period. Counts peers (a host's peers stop with it).
 */
export async function stopProcesses (procs: Array<{ pid: number, repo: string }>): Promise<{ stopped: number, killed: number }> {
  const running = procs.filter(p => isSwarmProcess(p.pid, p.repo))
  const pids = [...new Set(running.map(p => p.pid))]
  for (const pid of pids) signalProcess(pid, 'SIGTERM')
  const deadline = Date.now() + SHUTDOWN_TIMEOUT_MS + 2_000
  while (pids.some(isProcessAlive) && Date.now() < deadline) await sleep(50)
  const killedPids = pids.filter(isProcessAlive)
  for (const pid of killedPids) signalProcess(pid, 'SIGKILL')
  await waitUntilGone(killedPids)
  const killed = running.filter(p => killedPids.includes(p.pid)).length
  return { stopped: running.length - killed, killed }
}

/** SIGKILL, then wait until the process is gone (or a zombie). */
export async function killProcesses (pids: number[]): Promise<void> {
  for (const pid of pids) signalProcess(pid, 'SIGKILL')
  await waitUntilGone(pids)
}

async function waitUntilGone (pids: number[]): Promise<void> {
  // SIGKILL cannot be ignored; a process stuck in the kernel (D state) is the only wait
  const deadline = Date.now() + SHUTDOWN_TIMEOUT_MS
  while (pids.some(isProcessAlive) && Date.now() < deadline) await sleep(20)
}

export function signalProcess (pid: number, sig: NodeJS.Signals): void {
  try { process.kill(pid, sig) } catch {}
}

/** Alive, and (where /proc tells) a shoal daemon on that repo, not a reused pid. */
export function isSwarmProcess (pid: number, repo: string): boolean {
  if (!Number.isInteger(pid) || pid <= 0 || !isProcessAlive(pid)) return false
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').includes(repo)
  } catch {
    return true
  }
}
