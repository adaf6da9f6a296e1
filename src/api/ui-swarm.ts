/**
 * The swarm a daemon belongs to, for the dashboard: `shoal swarm up DIR`
 * puts each peer's repo at DIR/peer-N and records the swarm in
 * DIR/swarm.json (src/swarm/swarm-file.ts, a layer above the API: only the
 * fields read here are typed here). A peer is up while the process that
 * runs it is alive; a lab swarm also records each host's link and the
 * partition in place.
 */
import fs from 'node:fs/promises'
import path from 'node:path'
import { isProcessAlive } from '../utils/process.ts'

/** The swarm's record, beside its peers' repos. */
export const SWARM_FILE = 'swarm.json'

interface LinkFields { uplink: number | null, downlink: number | null, latencyMs: number }

export interface SwarmView {
  dir: string
  replicas: number
  peers: Array<{ index: number, peerId: string, api: string, up: boolean, host?: number, address?: string, self: boolean }>
  /** Lab swarms: each host's link, and the partition's groups of peer indexes (null: none). */
  lab?: {
    hosts: Array<{ index: number, peers: number[], link: LinkFields }>
    partition: number[][] | null
  }
}

interface SwarmFileFields {
  replicas?: number
  peers?: Array<{ index: number, peerId: string, repo: string, api: string, pid: number, host?: number, address?: string }>
  lab?: { hosts?: Array<{ index: number, peers: number[], link: LinkFields }>, partition?: number[][] | null }
}

/** The folder whose swarm.json may list the peer of this repo. */
export function swarmDirOf (repoPath: string): string {
  return path.dirname(path.resolve(repoPath))
}

/** The swarm this repo's peer belongs to, or null when it belongs to none. */
export async function readSwarmView (repoPath: string): Promise<SwarmView | null> {
  const dir = swarmDirOf(repoPath)
  let parsed: SwarmFileFields
  try {
    parsed = JSON.parse(await fs.readFile(path.join(dir, SWARM_FILE), 'utf8')) as SwarmFileFields
  } catch {
    return null
  }
  const repo = path.resolve(repoPath)
  const peers = Array.isArray(parsed.peers) ? parsed.peers : []
  if (!peers.some(p => path.resolve(p.repo) === repo)) return null
  return {
    dir,
    replicas: parsed.replicas ?? 0,
    peers: peers.map(p => ({
      index: p.index,
      peerId: p.peerId,
      api: p.api,
      up: Number.isInteger(p.pid) && p.pid > 0 && isProcessAlive(p.pid),
      self: path.resolve(p.repo) === repo,
      ...(p.host == null ? {} : { host: p.host }),
      ...(p.address == null ? {} : { address: p.address })
    })),
    ...(parsed.lab == null
      ? {}
      : {
          lab: {
            hosts: (parsed.lab.hosts ?? []).map(h => ({ index: h.index, peers: h.peers, link: h.link })),
            partition: parsed.lab.partition ?? null
          }
        })
  }
}
