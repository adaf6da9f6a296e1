/**
 * `DIR/swarm.json`: what a process swarm is made of, so that any later
 * command (status, stop, kill, start, link, partition, down) finds its
 * processes, repos and, for a lab, every namespace it made.
 */
import fs from 'node:fs/promises'
import path from 'node:path'
import { InvalidInputError, SwarmNotFoundError } from '../errors.ts'
import { writeFileAtomic } from '../peer/repo.ts'
import type { OverlayName } from '../routing/index.ts'
import type { LabRecord } from './lab/index.ts'

export const SWARM_FILE = 'swarm.json'

export interface SwarmPeerInfo {
  index: number
  peerId: string
  repo: string
  /** The API's TCP HOST:PORT (for a lab peer, inside its host's namespace). */
  api: string
  /** The API's unix socket, what the CLI uses (`<repo>/api.sock`). */
  apiSocket: string
  multiaddrs: string[]
  /** The process running this peer: its own daemon, or a swarm host shared with others. */
  pid: number
  /** How many peers that process runs (1: its own daemon). */
  peersInProcess: number
  /** Lab swarms: the index of the peer's host in `lab.hosts`. */
  host?: number
  /** Lab swarms: the peer's address on the lab network. */
  address?: string
}

/** 'plan': contacts handed out from the launcher's global plan; 'bootstrap': through seed peers only. */
export type SwarmJoin = 'plan' | 'bootstrap'

export interface SwarmFile {
  createdAt: string
  replicas: number
  /** The overlay every peer runs (absent in files of swarms made before it was chosen: kademlia). */
  overlay?: OverlayName
  /** How the peers joined (absent in older files: 'plan'); see SwarmUpOptions.join. */
  join?: SwarmJoin
  /** `join: 'bootstrap'`: the indexes of the seed peers every other peer joined through. */
  seeds?: number[]
  /** Empty while `up` is still starting them. */
  peers: SwarmPeerInfo[]
  /**
   * The processes `up` has spawned while the swarm is not routable yet
   * (gone once it is): if that `up` dies mid-way, `down` still finds and
   * stops them.
   */
  starting?: Array<{ pid: number, repo: string }>
  /** Lab swarms (`up --netns`): the namespaces, links and partition. */
  lab?: LabRecord
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

export async function writeSwarmFile (dir: string, swarm: SwarmFile): Promise<void> {
  await writeFileAtomic(path.join(path.resolve(dir), SWARM_FILE), JSON.stringify(swarm, null, 2) + '\n', 0o644)
}

const updates = new Map<string, Promise<unknown>>()

/**
 * Read, change, write, one change at a time per folder in this process
 * (churn restarts peers concurrently). Two processes changing one swarm at
 * once (a `swarm start` while `churn` runs) may lose one's change.
 */
export async function updateSwarmFile<T> (dir: string, change: (swarm: SwarmFile) => T | Promise<T>): Promise<T> {
  const key = path.resolve(dir)
  const previous = updates.get(key) ?? Promise.resolve()
  const next = previous.catch(() => {}).then(async () => {
    const swarm = await readSwarmFile(key)
    const result = await change(swarm)
    await writeSwarmFile(key, swarm)
    return result
  })
  updates.set(key, next)
  try {
    return await next
  } finally {
    if (updates.get(key) === next) updates.delete(key)
  }
}

/** The peer with this index, or exit 2 naming the indexes there are. */
export function swarmPeer (swarm: SwarmFile, dir: string, index: number): SwarmPeerInfo {
  const peer = swarm.peers.find(p => p.index === index)
  if (peer == null) {
    const range = swarm.peers.length > 0 ? `it has peers 0 to ${swarm.peers.length - 1}` : 'it has no peers'
    throw new InvalidInputError(`no peer ${index} in the swarm in ${path.resolve(dir)} (${range})`)
  }
  return peer
}
