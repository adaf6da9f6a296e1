/**
 * `swarm kill --peer I` and `swarm start --peer I`: a peer's process dies
 * at once (SIGKILL: no goodbye to anyone, its repo as the crash left it),
 * and comes back on the same repo, so with the same identity and blocks,
 * listening where it did before (a lab peer on its own address and port, a
 * loopback peer on the port it had), then reconnects to its planned
 * contacts as `swarm up` connected it.
 *
 * Both act on a process, so they need a peer with a process of its own
 * (`--peers-per-process 1`, the default up to 20 peers).
 */
import fs from 'node:fs/promises'
import path from 'node:path'
import { peerIdFromString } from '@libp2p/peer-id'
import { multiaddr } from '@multiformats/multiaddr'
import { ApiClient } from '../api/client.ts'
import { DHT_K_BUCKET_SIZE, REPO_FILES } from '../constants.ts'
import { InvalidInputError } from '../errors.ts'
import { kadIdOfPeer } from '../routing/kademlia/kad-distance.ts'
import { planContacts } from './contact-plan.ts'
import { daemonEntry } from './daemon-bundle.ts'
import { isSwarmProcess, killProcesses, spawnDaemon, waitForDaemon } from './peer-process.ts'
import { routableThreshold } from './routable.ts'
import { readSwarmFile, swarmPeer, updateSwarmFile, type SwarmFile, type SwarmPeerInfo } from './swarm-file.ts'

/** Default bound on a restart: the daemon up and its contacts dialled. */
export const PEER_START_TIMEOUT_MS = 60_000

function requireOwnProcess (peer: SwarmPeerInfo, what: string): void {
  if ((peer.peersInProcess ?? 1) > 1) {
    throw new InvalidInputError(`swarm ${what}: peer ${peer.index} shares its process with ${peer.peersInProcess - 1} other peer(s); kill, start and churn act on a peer's own process: start the swarm with --peers-per-process 1`)
  }
}

export interface KillResult {
  dir: string
  index: number
  peerId: string
  pid: number
  /** False: it was not running. */
  killed: boolean
}

export async function swarmKillPeer (dir: string, index: number): Promise<KillResult> {
  const swarm = await readSwarmFile(dir)
  const peer = swarmPeer(swarm, dir, index)
  requireOwnProcess(peer, 'kill')
  const base = { dir: path.resolve(dir), index, peerId: peer.peerId, pid: peer.pid }
  if (!isSwarmProcess(peer.pid, peer.repo)) return { ...base, killed: false }
  await killProcesses([peer.pid])
  return { ...base, killed: true }
}

export interface StartResult {
  dir: string
  index: number
  peerId: string
  pid: number
  multiaddrs: string[]
  /** True: it was running already and nothing was done. */
  alreadyRunning: boolean
  /** Peers in its routing table once its contacts were dialled. */
  routingTableSize: number
  ms: number
}

export interface StartOptions {
  timeoutMs?: number
  signal?: AbortSignal
}

export async function swarmStartPeer (dir: string, index: number, options: StartOptions = {}): Promise<StartResult> {
  const started = performance.now()
  const swarm = await readSwarmFile(dir)
  const peer = swarmPeer(swarm, dir, index)
  requireOwnProcess(peer, 'start')
  const base = { dir: path.resolve(dir), index, peerId: peer.peerId, multiaddrs: peer.multiaddrs }
  if (isSwarmProcess(peer.pid, peer.repo)) {
    return { ...base, pid: peer.pid, alreadyRunning: true, routingTableSize: -1, ms: 0 }
  }
  const deadline = Date.now() + (options.timeoutMs ?? PEER_START_TIMEOUT_MS)
  const host = swarm.lab?.hosts.find(h => h.peers.includes(index))
  // a lab peer's config names its address; a loopback peer asks for the port it had
  const listen = host != null ? [] : peer.multiaddrs.map(ma => multiaddr(ma).decapsulateCode(421).toString())
  await fs.rm(path.join(peer.repo, REPO_FILES.apiAddress), { force: true })
  const entry = await daemonEntry()
  const { pid, log } = spawnDaemon(entry, peer.repo, host != null ? { netns: host.namespace, linkFile: host.linkFile } : {}, { listen })
  const info = await waitForDaemon(index, peer.repo, pid, log, deadline, options.signal)
  await updateSwarmFile(dir, (s) => {
    const entryOf = s.peers.find(p => p.index === index)
    if (entryOf != null) Object.assign(entryOf, { pid, api: info.api, multiaddrs: info.multiaddrs })
  })
  const routingTableSize = await rejoin(swarm, index, info.multiaddrs, deadline, options.signal)
  return { ...base, pid, multiaddrs: info.multiaddrs, alreadyRunning: false, routingTableSize, ms: performance.now() - started }
}

/**
 * Dials the peer's planned contacts (as `swarm up` planned them) and its
 * closest peers: the ones down fail, which costs only their dial.
 */
async function rejoin (swarm: SwarmFile, index: number, ownAddrs: string[], deadline: number, signal?: AbortSignal): Promise<number> {
  const peers = swarm.peers
  const need = routableThreshold(peers.length, DHT_K_BUCKET_SIZE)
  const plan = planContacts(peers.map(p => kadIdOfPeer(peerIdFromString(p.peerId))), { minContacts: need })
  const self = peers.findIndex(p => p.index === index)
  const chosen = [...new Set([...plan.contacts[self], ...plan.byDistance[self].slice(0, need)])]
  const addrs = chosen.flatMap(j => peers[j].multiaddrs).filter(ma => !ownAddrs.includes(ma))
  const client = await ApiClient.fromRepo(peers[self].repo)
  const joined = await client.join(addrs, { signal, timeoutMs: Math.max(1, deadline - Date.now()) })
  return joined.routingTableSize
}
