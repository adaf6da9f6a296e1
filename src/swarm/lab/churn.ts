/**
 * `swarm churn --rate R --for S --seed N`: peers die and come back.
 *
 * Kills arrive as a Poisson process of R x (peers that may be killed) per
 * minute: the gaps between them are exponential draws from a generator
 * seeded with N, and each kill takes a random peer that is up (same seed,
 * same draws). A killed peer (SIGKILL, swarm kill) restarts `downtime`
 * seconds later on its repo (swarm start). Kills go on for S seconds;
 * churn returns after that, once every peer it killed is back. Each event is printed
 * (through onEvent) and appended to DIR/churn.log as a JSON line.
 */
import fs from 'node:fs/promises'
import path from 'node:path'
import { InvalidInputError } from '../../errors.ts'
import { sleep } from '../../utils/wait.ts'
import { swarmKillPeer, swarmStartPeer } from '../peer-restart.ts'
import { readSwarmFile } from '../swarm-file.ts'

export const CHURN_LOG = 'churn.log'
export const DEFAULT_CHURN_DOWNTIME_SECONDS = 5

export interface ChurnOptions {
  dir: string
  /** Fraction of the peers that may be killed, killed per minute (0.3: 30%). */
  ratePerMinute: number
  forSeconds: number
  seed: number
  /** Seconds a killed peer stays down (default 5). */
  downtimeSeconds?: number
  /** Peers never killed (the fetchers of a test, a bootstrap peer). */
  spare?: number[]
  onEvent?: (event: ChurnEvent) => void
  signal?: AbortSignal
}

export interface ChurnEvent {
  /** Seconds since churn began. */
  t: number
  event: 'kill' | 'start' | 'start-failed' | 'no-peer-up'
  peer?: number
  pid?: number
  /** `start`: how long the restart took, ms. */
  ms?: number
  error?: string
}

export interface ChurnResult {
  dir: string
  seed: number
  ratePerMinute: number
  forSeconds: number
  kills: number
  starts: number
  failedStarts: number
  events: ChurnEvent[]
  log: string
}

/** A small seeded generator (mulberry32): the same seed draws the same numbers. */
export function seededRandom (seed: number): () => number {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6D2B79F5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

export async function swarmChurn (options: ChurnOptions): Promise<ChurnResult> {
  const { dir, ratePerMinute, forSeconds, seed } = options
  if (!(ratePerMinute > 0 && ratePerMinute <= 60)) throw new InvalidInputError(`--rate must be above 0 and at most 60 (a fraction of the peers per minute, e.g. 0.3 or 30%), got ${ratePerMinute}`)
  if (!(forSeconds > 0)) throw new InvalidInputError(`--for must be a positive number of seconds, got ${forSeconds}`)
  const downtimeMs = (options.downtimeSeconds ?? DEFAULT_CHURN_DOWNTIME_SECONDS) * 1000
  const swarm = await readSwarmFile(dir)
  const spare = new Set(options.spare ?? [])
  for (const i of spare) if (!swarm.peers.some(p => p.index === i)) throw new InvalidInputError(`--spare: no peer ${i} in this swarm`)
  const shared = swarm.peers.find(p => !spare.has(p.index) && p.peersInProcess > 1)
  if (shared != null) throw new InvalidInputError(`swarm churn: peer ${shared.index} shares its process with other peers; churn kills processes: start the swarm with --peers-per-process 1 (or --spare the shared ones)`)
  const candidates = swarm.peers.map(p => p.index).filter(i => !spare.has(i))
  if (candidates.length === 0) throw new InvalidInputError('swarm churn: every peer is spared, none to kill')

  const logFile = path.join(path.resolve(dir), CHURN_LOG)
  const random = seededRandom(seed)
  const killsPerMs = ratePerMinute * candidates.length / 60_000
  const began = performance.now()
  const events: ChurnEvent[] = []
  const emit = async (event: Omit<ChurnEvent, 't'>): Promise<void> => {
    const full = { t: Math.round(performance.now() - began) / 1000, ...event }
    events.push(full)
    options.onEvent?.(full)
    await fs.appendFile(logFile, JSON.stringify(full) + '\n')
  }
  await fs.appendFile(logFile, JSON.stringify({ churn: { startedAt: new Date().toISOString(), ratePerMinute, forSeconds, seed, downtimeSeconds: downtimeMs / 1000, spare: [...spare] } }) + '\n')

  const down = new Set<number>()
  const restarts: Array<Promise<void>> = []
  const restart = async (peer: number): Promise<void> => {
    await sleep(downtimeMs, options.signal).catch(() => {})
    try {
      const started = await swarmStartPeer(dir, peer, { signal: options.signal })
      await emit({ event: 'start', peer, pid: started.pid, ms: Math.round(started.ms) })
    } catch (err) {
      await emit({ event: 'start-failed', peer, error: (err as Error).message })
    } finally {
      down.delete(peer)
    }
  }

  const aborted = (): boolean => options.signal?.aborted === true
  let next = -Math.log(1 - random()) / killsPerMs
  while (next < forSeconds * 1000 && !aborted()) {
    await sleep(Math.max(0, next - (performance.now() - began)), options.signal).catch(() => {})
    if (aborted()) break
    const up = candidates.filter(i => !down.has(i))
    const pick = up.length > 0 ? up[Math.floor(random() * up.length)] : undefined
    if (pick == null) {
      await emit({ event: 'no-peer-up' })
    } else {
      down.add(pick)
      const killed = await swarmKillPeer(dir, pick)
      await emit({ event: 'kill', peer: pick, pid: killed.pid })
      restarts.push(restart(pick))
    }
    next += -Math.log(1 - random()) / killsPerMs
  }
  // it lasts its whole time, and ends with every peer it killed back up
  await sleep(Math.max(0, forSeconds * 1000 - (performance.now() - began)), options.signal).catch(() => {})
  await Promise.all(restarts)
  return {
    dir: path.resolve(dir),
    seed,
    ratePerMinute,
    forSeconds,
    kills: events.filter(e => e.event === 'kill').length,
    starts: events.filter(e => e.event === 'start').length,
    failedStarts: events.filter(e => e.event === 'start-failed').length,
    events,
    log: logFile
  }
}
