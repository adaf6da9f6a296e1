/**
 * Local swarms of separate daemon processes, for users and benchmarks:
 * `shoal swarm up | status | down`.
 *
 *   DIR/peer-<i>/        each peer's repo (its daemon.log inside)
 *   DIR/swarm.json       index, peerId, repo, api, multiaddrs, pid per peer (swarm-file.ts)
 *   DIR/lab/             a lab swarm's link files
 *
 * `up` works in two steps:
 * 1. every peer starts, connected to no one (all processes at once);
 * 2. knowing every peer's ID and address, it plans who connects to whom
 *    (contact-plan.ts: each peer's XOR-closest peers and a couple in every
 *    farther bucket, at least min(N-1, k) contacts each, every pair once)
 *    and hands each peer its list (`POST /api/v1/dht/join`). kad-dht adds
 *    a contact to its routing table once connected and identified.
 * With `join: 'bootstrap'` (`swarm up --join bootstrap`) step 2 uses no
 * plan: the first SWARM_SEEDS peers are seeds, every other peer is given
 * only their addresses and joins through the overlay (joinThroughSeeds, swarm-join.ts).
 * It returns only when the swarm is routable (routable.ts). Kademlia: every
 * routing table holds min(N-1, k) peers; a peer still short whose table
 * stopped growing (a dial failed) dials its contacts again, and one more
 * close peer each time. Chord (the
 * contacts are the peers it joins the ring through): the ring is correct at
 * every peer; a peer on no ring yet joins through its contacts again. Swarm peers run with `plannedJoin` (see libp2p.ts): no
 * start-up random walk and no dialling of every peer a reply names, so they
 * open about the planned connections and no more. Daemons run detached, so they outlive the CLI that
 * started them; `down` stops them with SIGTERM (SIGKILL after a grace
 * period) and waits until no process is left.
 *
 * Process layout: up to OWN_PROCESS_MAX_PEERS peers, every peer is its own
 * `shoal daemon` process (what tests that kill a peer need). Bigger swarms
 * run `peersPerProcess` peers in each swarm host process (swarm-host.ts),
 * about one host per core: every daemon process pays to load and then runs
 * libp2p cold, so a hundred of them on a few cores cannot come up fast
 * (docs/benchmarks.md). Every peer still has its own repo,
 * identity, port, API and swarm.json entry; `swarm stop --peer I` stops one
 * peer of a host alone through its API.
 *
 * The lab (`lab` option, `swarm up --netns`): each process runs in a
 * network namespace of its own, a host on a lab bridge, with its link
 * capped and delayed (src/swarm/lab/). Its network is recorded in
 * swarm.json and then made before any peer starts; its peers listen on
 * their own lab address at a fixed port. Everything else is the same.
 */
import fs from 'node:fs/promises'
import path from 'node:path'
import { peerIdFromString } from '@libp2p/peer-id'
import { ApiClient } from '../api/client.ts'
import { DHT_K_BUCKET_SIZE, LOCAL_SWARM_ALLOW, REPO_FILES, SHUTDOWN_TIMEOUT_MS } from '../constants.ts'
import { ApiError, InvalidInputError, SwarmError, SwarmNotFoundError, TimeoutError } from '../errors.ts'
import { defaultConfig, validateConfig, type ShoalConfig } from '../peer/config.ts'
import { kadIdOfPeer } from '../routing/kademlia/kad-distance.ts'
import { DEFAULT_SUCCESSOR_LIST_LENGTH } from '../routing/chord/constants.ts'
import { Repo, writeFileAtomic } from '../peer/repo.ts'
import { mapConcurrent, waitFor } from '../utils/wait.ts'
import { daemonEntry } from './daemon-bundle.ts'
import { defaultPeersPerProcess, hostedWatermarks, swarmMaxConnections } from './host-layout.ts'
import { planContacts } from './contact-plan.ts'
import { LAB_PEER_PORT, LAB_SUBNET_MULTIADDR, UNLIMITED_LINK, type LabRecord, type LinkSpec } from './lab/index.ts'
import { buildLab, labLeftovers, teardownLab, type LabTeardown } from './lab/lab-swarm.ts'
import { healPartition } from './lab/partition.ts'
import { checkLabPrivileges } from './lab/privileges.ts'
import { peerAddress, planLab } from './lab/topology.ts'
import { isSwarmProcess, spawnDaemon, spawnHost, stopProcesses, waitForDaemon, type ProcessPlace, type SwarmPeerOverrides } from './peer-process.ts'
import type { OverlayName } from '../routing/index.ts'
import { routableThreshold } from './routable.ts'
import { joinRing, joinThroughSeeds, type RingSeeder, seedRing, waitRing, waitTables, type SwarmJoinOptions } from './swarm-join.ts'
import { SWARM_FILE, readSwarmFile, swarmPeer, writeSwarmFile, type SwarmFile, type SwarmJoin, type SwarmPeerInfo } from './swarm-file.ts'

export { SWARM_FILE, readSwarmFile, type SwarmFile, type SwarmPeerInfo, type SwarmPeerOverrides }
export const MAX_SWARM_PEERS = 1000
/** Seed peers of a `join: 'bootstrap'` swarm: the first peers started. */
export const SWARM_SEEDS = 3
/** Daemons starting at once: more only thrash a 2-core machine. */
const START_CONCURRENCY = 8
/**
 * Peers handed their planned contacts at once, and peers polled at once
 * while the swarm gets routable. Every join dials its contacts (each dial a
 * handshake on both ends, in the same few processes): a thousand joins at
 * once put thousands of handshakes in flight, past their dial timeout, and
 * the retries then cost more than the joins (a 1,000-peer swarm was not
 * routable after 10 minutes).
 */
const PLAN_JOIN_CONCURRENCY = 64

export type SwarmUpProgress =
  | { name: 'swarm:peer-started', started: number, total: number }
  | { name: 'swarm:routing', routable: number, total: number }

export interface SwarmUpOptions {
  peers: number
  dir: string
  replicas?: number
  /** The overlay every peer runs (default kademlia); recorded in swarm.json. */
  overlay?: OverlayName
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
  /** A lab swarm: every process its own host on the lab network, with this link (per-peer `link` overrides it). */
  lab?: Partial<LinkSpec>
  /**
   * How peers join (recorded in swarm.json): 'plan' (default), each is handed
   * its contacts from the launcher's global plan; 'bootstrap', each knows
   * only the seed peers (the first SWARM_SEEDS started) and joins through
   * the overlay, as a deployment would.
   */
  join?: SwarmJoin
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
  // before anything is made: the lab needs privileges this process may not have
  if (options.lab != null) await checkLabPrivileges()
  const dir = path.resolve(options.dir)
  const existing = await readSwarmFile(dir).catch(() => undefined)
  if ([...existing?.peers ?? [], ...existing?.starting ?? []].some(p => isSwarmProcess(p.pid, p.repo))) {
    throw new SwarmError(`a swarm is already running in ${dir} (stop it with "shoal swarm down --dir ${dir}")`)
  }
  const stat = await fs.stat(dir).catch(() => undefined)
  if (stat != null && !stat.isDirectory()) throw new InvalidInputError(`swarm dir ${dir} is not a directory`)
  await fs.mkdir(dir, { recursive: true })

  const started = performance.now()
  const deadline = Date.now() + (options.timeoutMs ?? 30_000 + 2000 * count)
  const joinOptions: SwarmJoinOptions = { signal: options.signal, successorListLength: options.config?.chord?.successorListLength, onProgress: options.onProgress }
  const replicas = options.replicas ?? 3
  const overlay = options.overlay ?? options.config?.overlay ?? 'kademlia'
  const join = options.join ?? 'plan'
  // a bootstrap swarm's peers join as any daemon does: no contact plan
  const plannedJoin = join !== 'bootstrap'
  const createdAt = new Date().toISOString()
  const repos = Array.from({ length: count }, (_, i) => path.join(dir, `peer-${i}`))
  const perProcess = Math.max(1, Math.min(count, options.peersPerProcess ?? defaultPeersPerProcess(count)))
  if (!Number.isInteger(perProcess)) throw new InvalidInputError(`peers per process must be an integer, got ${options.peersPerProcess}`)
  const groups: number[][] = []
  for (let i = 0; i < count; i += perProcess) groups.push(Array.from({ length: Math.min(perProcess, count - i) }, (_, j) => i + j))

  let lab: LabRecord | undefined
  if (options.lab != null) {
    const base = { ...UNLIMITED_LINK, ...options.lab }
    lab = planLab(dir, groups, h => ({ ...base, ...options.peer?.(groups[h][0])?.link }))
    // a lab of this folder that died without a down: its names are ours to reuse
    if (existing?.lab != null || (await labLeftovers(dir)).length > 0) await teardownLab(dir, existing?.lab)
    // recorded before it is made, so that a down finds it whatever happens next
    await writeSwarmFile(dir, { createdAt, replicas, overlay, peers: [], lab })
  }
  const place = (group: number): ProcessPlace => lab != null ? { netns: lab.hosts[group].namespace, linkFile: lab.hosts[group].linkFile } : {}

  const peers: SwarmPeerInfo[] = []
  const pids: number[] = []
  // every process recorded as it is spawned, one write at a time, so a
  // `down` finds them even if this `up` dies before the swarm is routable
  const starting: Array<{ pid: number, repo: string }> = []
  let recorded = Promise.resolve()
  const record = async (): Promise<void> => {
    recorded = recorded.catch(() => {}).then(async () => { await writeSwarmFile(dir, { createdAt, replicas, overlay, join, peers: [], starting: [...starting], ...(lab != null ? { lab } : {}) }) })
    await recorded
  }
  try {
    if (lab != null) await buildLab(lab, options.signal)
    await mapConcurrent(repos, 8, async (repo, i) => {
      const peerConfig = { ...options.config, ...options.peer?.(i)?.config }
      // a hosted peer may keep fewer connections: the host's open files are shared by all its peers
      const hosted = perProcess > 1 ? hostedWatermarks(perProcess) : {}
      const connections = { ...defaultConfig().connections, ...hosted, maxConnections: swarmMaxConnections(count), ...peerConfig.connections }
      // the swarm's own addresses are exempt from the per-host inbound limits (a swarm
      // joins many peers at once from one host); no other address is by default
      const network: Partial<ShoalConfig> = lab != null
        ? {
            listen: [`/ip4/${peerAddress(i)}/tcp/${LAB_PEER_PORT}`],
            announce: [],
            connections: { ...connections, allow: [...connections.allow, LAB_SUBNET_MULTIADDR] }
          }
        : { listen: ['/ip4/127.0.0.1/tcp/0'], connections: { ...connections, allow: [...connections.allow, LOCAL_SWARM_ALLOW] } }
      const { created } = await Repo.init(repo, { ...peerConfig, ...network, api: '127.0.0.1:0', replicas, overlay })
      // a repo kept from an earlier swarm in this folder keeps its config but
      // for where it listens and the overlay the swarm runs now
      if (!created) await patchConfig(repo, { ...(lab != null ? network : {}), api: '127.0.0.1:0', overlay })
      // a fresh swarm starts from scratch: no stale address or socket from a killed run
      await fs.rm(path.join(repo, REPO_FILES.apiAddress), { force: true })
      await fs.rm(path.join(repo, REPO_FILES.apiSocket), { force: true })
    })

    const entry = await daemonEntry()
    let startedCount = 0
    const waitPeer = async (index: number, pid: number, log: string, group: number): Promise<void> => {
      const info = await waitForDaemon(index, repos[index], pid, log, deadline, options.signal)
      peers[index] = {
        ...info,
        peersInProcess: groups[group].length,
        ...(lab != null ? { host: group, address: peerAddress(index) } : {})
      }
      options.onProgress?.({ name: 'swarm:peer-started', started: ++startedCount, total: count })
    }
    /** Spawns a group's process; resolves when all of its peers are up. */
    const startGroup = async (group: number[], g: number): Promise<void> => {
      const { pid, log } = group.length === 1
        ? spawnDaemon(entry, repos[group[0]], place(g), { extra: options.peer?.(group[0]), plannedJoin })
        : spawnHost(entry, dir, g, group.map(i => repos[i]), place(g), plannedJoin)
      group.forEach(i => { pids[i] = pid })
      starting.push({ pid, repo: repos[group[0]] })
      await record()
      await Promise.all(group.map(async i => waitPeer(i, pid, log, g)))
    }
    // every peer up first, none connected to any other yet
    await mapConcurrent(groups, perProcess === 1 ? options.startConcurrency ?? START_CONCURRENCY : groups.length, startGroup)

    // then every peer connects to the contacts planned for it
    const need = routableThreshold(count, DHT_K_BUCKET_SIZE)
    const clients = await Promise.all(repos.map(async repo => ApiClient.fromRepo(repo)))
    const plan = planContacts(peers.map(p => kadIdOfPeer(peerIdFromString(p.peerId))), { minContacts: need })
    const addrs = (list: number[]): string[] => list.flatMap(j => peers[j].multiaddrs)
    const seeds = Array.from({ length: Math.min(SWARM_SEEDS, count) }, (_, i) => i)
    // the planned joins round the hosts (each holds a block of indexes), so that every host has joins under way
    const hostRound = Array.from({ length: perProcess }, (_, j) => groups.flatMap(group => j < group.length ? [group[j]] : [])).flat()
    let seeder: RingSeeder | undefined
    if (join === 'bootstrap') {
      await joinThroughSeeds(clients, seeds, addrs, overlay === 'kademlia', deadline, joinOptions)
    } else if (overlay === 'chord' && count <= (joinOptions.successorListLength ?? DEFAULT_SUCCESSOR_LIST_LENGTH) + 1) {
      // every peer's list closes the ring: joined one at a time (swarm-join.ts)
      await joinRing(clients, peers, deadline, joinOptions)
    } else if (overlay === 'chord') {
      seeder = await seedRing(clients, peers, hostRound, PLAN_JOIN_CONCURRENCY, deadline, joinOptions)
    } else {
      await mapConcurrent(hostRound, PLAN_JOIN_CONCURRENCY, async i => {
        await clients[i].join(addrs(plan.dials[i]), { signal: options.signal, timeoutMs: Math.max(1, deadline - Date.now()) })
      })
    }

    if (overlay === 'chord') {
      // a peer on no ring joins again: through the seeds, or the peer after it in the true ring
      const rejoin = join === 'bootstrap' ? (i: number) => addrs(seeds.filter(j => j !== i)) : undefined
      await waitRing(clients, peers, deadline, joinOptions, rejoin, seeder)
    } else {
      const retry = join === 'bootstrap'
        ? { seeds: (i: number) => addrs(seeds.filter(j => j !== i)) }
        : { contacts: (i: number, extra: number) => addrs([...plan.contacts[i], ...plan.byDistance[i].filter(j => !plan.contacts[i].includes(j)).slice(0, extra)]) }
      await waitTables(clients, need, retry, deadline, joinOptions)
    }
    // the last check may have come back after --timeout ran out (a slow
    // answer on a loaded machine): routable, but not in the time asked
    if (Date.now() > deadline) {
      throw new TimeoutError(`swarm not routable in time: routable after ${((performance.now() - started) / 1000).toFixed(1)} s, past the timeout`)
    }
    const file: SwarmFile = { createdAt, replicas, overlay, join, ...(join === 'bootstrap' ? { seeds } : {}), peers, ...(lab != null ? { lab } : {}) }
    await writeSwarmFile(dir, file)
    return { ...file, dir, routableMs: performance.now() - started }
  } catch (err) {
    await stopProcesses(pids.map((pid, i) => ({ pid, repo: repos[i] })).filter(p => p.pid != null))
    if (lab == null) {
      // every process it started is stopped: nothing left for a down to find
      await recorded.catch(() => {})
      await fs.rm(path.join(dir, SWARM_FILE), { force: true })
    } else {
      // swarm.json stays (it lists the lab) unless the lab is gone for sure
      const removed = await teardownLab(dir, lab).then(() => true, () => false)
      if (removed) await fs.rm(path.join(dir, SWARM_FILE), { force: true })
    }
    // a daemon still busy joining when --timeout ran out: the swarm was not
    // routable in time, whichever request was waiting then
    if (err instanceof ApiError && err.status === 0 && Date.now() >= deadline) {
      throw new TimeoutError('swarm not routable in time: peers were still joining their contacts when the timeout ran out', { cause: err })
    }
    throw err
  }
}

/** Rewrites these fields of a repo's config.json (validated as the daemon will). */
async function patchConfig (repo: string, fields: Partial<ShoalConfig>): Promise<void> {
  const file = path.join(repo, REPO_FILES.config)
  const current = JSON.parse(await fs.readFile(file, 'utf8')) as Record<string, unknown>
  const next = validateConfig({ ...current, ...fields }, file)
  await writeFileAtomic(file, JSON.stringify(next, null, 2) + '\n', 0o644)
}

export interface SwarmPeerStatus {
  index: number
  peerId: string
  pid: number
  alive: boolean
  connections: number | null
  routingTableSize: number | null
}

export async function swarmStatus (dir: string, signal?: AbortSignal): Promise<{ dir: string, peers: SwarmPeerStatus[], partition?: number[][] | null }> {
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
  return { dir: path.resolve(dir), peers, ...(swarm.lab != null ? { partition: swarm.lab.partition } : {}) }
}

export interface SwarmDownResult {
  dir: string
  /** Peers stopped with SIGTERM. */
  stopped: number
  /** Peers SIGKILLed after the grace period. */
  killed: number
  /** Lab swarms: namespaces deleted and processes still in them SIGKILLed. */
  lab?: LabTeardown
}

/**
 * Stops every process and, for a lab, deletes every namespace; removes
 * swarm.json last, so a down that dies midway leaves what the next one
 * needs. A folder whose swarm.json is gone but whose lab namespaces are
 * not (a down killed between the two) is cleaned too.
 */
export async function swarmDown (dir: string): Promise<SwarmDownResult> {
  const resolved = path.resolve(dir)
  let swarm: SwarmFile
  try {
    swarm = await readSwarmFile(dir)
  } catch (err) {
    if (!(err instanceof SwarmNotFoundError) || (await labLeftovers(dir).catch(() => [])).length === 0) throw err
    return { dir: resolved, stopped: 0, killed: 0, lab: await teardownLab(dir) }
  }
  // peers say goodbye faster to peers they can reach: a partition ends first
  if (swarm.lab?.partition != null) await healPartition(swarm.lab).catch(() => {})
  const result = await stopProcesses([...swarm.peers, ...swarm.starting ?? []])
  const lab = swarm.lab != null ? await teardownLab(dir, swarm.lab) : undefined
  await fs.rm(path.join(resolved, SWARM_FILE), { force: true })
  return { dir: resolved, ...result, ...(lab != null ? { lab } : {}) }
}

/**
 * Stops one peer of a swarm: SIGTERM to its daemon, or, in a swarm host,
 * `POST /api/v1/shutdown` to that peer alone. Waits until it is gone.
 */
export async function swarmStopPeer (dir: string, index: number): Promise<{ dir: string, index: number, peerId: string, pid: number, stopped: boolean }> {
  const swarm = await readSwarmFile(dir)
  const peer = swarmPeer(swarm, dir, index)
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
  // the API socket goes when the peer has stopped
  await waitFor(async () => !(await fs.access(path.join(peer.repo, REPO_FILES.apiSocket)).then(() => true, () => false)), {
    timeoutMs: SHUTDOWN_TIMEOUT_MS,
    intervalMs: 50,
    message: () => `peer ${index} did not stop within ${SHUTDOWN_TIMEOUT_MS} ms`
  })
  return { ...base, stopped: true }
}
