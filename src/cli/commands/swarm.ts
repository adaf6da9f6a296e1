import path from 'node:path'
import { InvalidArgumentError, type Command } from 'commander'
// The swarm modules are imported in the actions: the host loads libp2p and the
// whole peer, start-up every other command would pay for nothing.
import type { SwarmUpProgress } from '../../swarm/process-swarm.ts'
import type { SwarmJoin } from '../../swarm/swarm-file.ts'
import { OWN_PROCESS_MAX_PEERS } from '../../constants.ts'
import { globals, output, progressBar, showProgress } from '../context.ts'
import { checkMultiaddrs, collect, intOption } from '../parse.ts'
import { useBulkTransferV8Flags } from '../../utils/v8-flags.ts'
import { formatBytes, parseByteSize } from '../../utils/bytes.ts'
import { InvalidInputError } from '../../errors.ts'
import type { OverlayName } from '../../routing/index.ts'
import { overlayOption } from './init.ts'

/** MAX_SWARM_PEERS of process-swarm.ts (not imported here: the CLI loads the swarm code only when a swarm command runs). */
const MAX_PEERS = 1000

const DEFAULT_DIR = '.shoal-swarm'
/** Link rates: 1 KiB/s (a few frames per tbf burst) to 1 TiB/s. */
const MIN_LINK_RATE = 1024
const MAX_LINK_RATE = 2 ** 40
const MAX_LATENCY_MS = 10_000

/**
 * A link rate in bytes per second written as a size ("16MiB"); "0" or
 * "off": no cap, as 0 (commander turns a parsed null into "").
 */
function joinOption (value: string): SwarmJoin {
  if (value !== 'plan' && value !== 'bootstrap') throw new InvalidArgumentError('--join is plan or bootstrap')
  return value
}

function rateOption (flag: string): (value: string) => number {
  return value => {
    if (value.trim() === '0' || value.trim().toLowerCase() === 'off') return 0
    const n = parseByteSize(value)
    if (n == null || n < MIN_LINK_RATE || n > MAX_LINK_RATE) {
      throw new InvalidArgumentError(`${flag} must be bytes per second written as a size from 1KiB to 1TiB (e.g. "16MiB"), or 0/off for no cap, got "${value}"`)
    }
    return n
  }
}

/** "0.3" or "30%": a fraction of the peers per minute. */
function fractionOption (flag: string): (value: string) => number {
  return value => {
    const match = /^\s*(\d+(?:\.\d+)?)\s*(%?)\s*$/.exec(value)
    const n = match == null ? NaN : Number(match[1]) / (match[2] === '%' ? 100 : 1)
    if (!(n > 0 && n <= 60)) throw new InvalidArgumentError(`${flag} must be a fraction of the peers per minute above 0 (e.g. 0.3 or 30%), got "${value}"`)
    return n
  }
}

/** "0,3,5-7": peer indexes. */
function indexListOption (flag: string): (value: string) => number[] {
  return value => {
    const out: number[] = []
    for (const item of value.split(',').map(s => s.trim())) {
      const match = /^(\d+)(?:-(\d+))?$/.exec(item)
      if (match == null) throw new InvalidArgumentError(`${flag} must be peer indexes and ranges like "0,3,5-7", got "${value}"`)
      for (let i = Number(match[1]); i <= Number(match[2] ?? match[1]); i++) out.push(i)
    }
    return out
  }
}

function rateText (rate: number | null | undefined): string {
  return rate == null ? 'uncapped' : `${formatBytes(rate)}/s`
}

interface LinkFlags { uplink?: number, downlink?: number, latency?: number }

/** The link fields the flags give (absent flags are left out; a rate of 0 is no cap: null). */
function linkChange (opts: LinkFlags): { uplink?: number | null, downlink?: number | null, latencyMs?: number } {
  return {
    ...(opts.uplink !== undefined ? { uplink: opts.uplink === 0 ? null : opts.uplink } : {}),
    ...(opts.downlink !== undefined ? { downlink: opts.downlink === 0 ? null : opts.downlink } : {}),
    ...(opts.latency !== undefined ? { latencyMs: opts.latency } : {})
  }
}

export function registerSwarm (program: Command): void {
  const swarm = program.command('swarm').description('local swarms of peer daemons, on 127.0.0.1 or as separate hosts on a lab network (--netns)')

  swarm.command('up')
    .description('start N peer daemons and connect them to each other; return when the swarm is routable')
    .requiredOption('--peers <n>', 'number of peers', intOption('--peers', 1, MAX_PEERS))
    .option('--dir <dir>', 'folder for the peer repos and swarm.json', DEFAULT_DIR)
    .option('--replicas <k>', 'replicas per block for shares in this swarm', intOption('--replicas', 1, 64), 3)
    .option('--overlay <name>', 'the overlay every peer runs: kademlia or chord (recorded in swarm.json)', overlayOption, 'kademlia')
    .option('--join <how>', 'plan: each peer is handed contacts from a plan of the whole swarm; bootstrap: each knows only the first peers started (the seeds) and joins through the overlay (recorded in swarm.json)', joinOption, 'plan')
    .option('--timeout <seconds>', 'give up if not routable by then (default 30 + 2 per peer)', intOption('--timeout', 1, 3600))
    .option('--peers-per-process <n>', `peers run by one process; 1 = each peer its own daemon (default: 1 up to ${OWN_PROCESS_MAX_PEERS} peers, else about one process per core, at most one peer per 100 open files the limit allows)`, intOption('--peers-per-process', 1, MAX_PEERS))
    .option('--netns', 'the lab: every process its own host (network namespace) on a lab bridge; needs root (see docs/lab.md)')
    .option('--uplink <rate>', 'lab: what each host may send, bytes/s as a size (e.g. 16MiB); default no cap', rateOption('--uplink'))
    .option('--downlink <rate>', 'lab: what each host may receive, bytes/s as a size; default no cap', rateOption('--downlink'))
    .option('--latency <ms>', 'lab: one-way delay added to every byte a host receives', intOption('--latency', 0, MAX_LATENCY_MS))
    .action(async (opts: { peers: number, dir: string, replicas: number, overlay: OverlayName, join: SwarmJoin, timeout?: number, peersPerProcess?: number, netns?: boolean } & LinkFlags, command: Command) => {
      const g = globals(command)
      if (opts.netns !== true && (opts.uplink !== undefined || opts.downlink !== undefined || opts.latency !== undefined)) {
        throw new InvalidInputError('--uplink, --downlink and --latency shape the links of a lab swarm: add --netns')
      }
      const bar = showProgress(g) ? await progressBar(' {phase} [{bar}] {value}/{total} peers') : undefined
      bar?.start(opts.peers, 0, { phase: 'starting' })
      const onProgress = (e: SwarmUpProgress): void => {
        if (e.name === 'swarm:peer-started') bar?.update(e.started, { phase: 'starting' })
        else bar?.update(e.routable, { phase: 'routing ' })
      }
      try {
        const { swarmUp } = await import('../../swarm/process-swarm.ts')
        const result = await swarmUp({
          peers: opts.peers,
          dir: opts.dir,
          replicas: opts.replicas,
          overlay: opts.overlay,
          join: opts.join,
          timeoutMs: opts.timeout != null ? opts.timeout * 1000 : undefined,
          peersPerProcess: opts.peersPerProcess,
          lab: opts.netns === true ? linkChange(opts) : undefined,
          onProgress
        })
        bar?.stop()
        const link = result.lab?.hosts[0].link
        output(g, result, r => [
          `swarm of ${r.peers.length} peers routable in ${(r.routableMs / 1000).toFixed(1)} s, overlay ${r.overlay ?? 'kademlia'}` +
            (r.join === 'bootstrap' ? `, joined through seed peers ${(r.seeds ?? []).join(', ')}` : '') +
            (r.peers[0].peersInProcess > 1 ? ` (${new Set(r.peers.map(p => p.pid)).size} processes of up to ${r.peers[0].peersInProcess} peers)` : ''),
          ...(r.lab != null && link != null
            ? [`lab ${r.lab.subnet}: ${r.lab.hosts.length} hosts, links up ${rateText(link.uplink)}, down ${rateText(link.downlink)}, latency ${link.latencyMs} ms`]
            : []),
          `dir ${r.dir} (see ${path.join(r.dir, 'swarm.json')})`,
          ...r.peers.slice(0, 5).map(p => `  peer-${p.index} ${p.peerId} ${p.address != null ? `at ${p.address} ` : ''}api ${p.address != null ? p.apiSocket : p.api} pid ${p.pid}`),
          ...(r.peers.length > 5 ? [`  ... and ${r.peers.length - 5} more`] : []),
          `talk to one: shoal status --repo ${path.join(r.dir, 'peer-0')}`,
          `stop all:    shoal swarm down --dir ${r.dir}`
        ].join('\n'))
      } finally {
        bar?.stop()
      }
    })

  swarm.command('status')
    .description('liveness and routing-table size of each peer of the swarm')
    .option('--dir <dir>', 'the swarm folder', DEFAULT_DIR)
    .action(async (opts: { dir: string }, command: Command) => {
      const g = globals(command)
      const { swarmStatus } = await import('../../swarm/process-swarm.ts')
      const status = await swarmStatus(opts.dir)
      const alive = status.peers.filter(p => p.alive).length
      output(g, { ...status, alive }, r => [
        `swarm ${r.dir}: ${r.alive} of ${r.peers.length} peers alive` +
          (r.partition != null ? `, partitioned: ${r.partition.map(list => `[${compactRanges(list)}]`).join(' | ')}` : ''),
        ...r.peers.map(p => `  peer-${p.index} ${p.peerId} pid ${p.pid} ${p.alive ? `up, ${p.connections} connections, routing table ${p.routingTableSize}` : 'DOWN'}`)
      ].join('\n'))
      if (alive < status.peers.length) process.exitCode = 1
    })

  swarm.command('stop')
    .description('stop one peer of the swarm (alone, even when it shares a process with others)')
    .requiredOption('--peer <index>', 'the peer\'s index in swarm.json', intOption('--peer', 0, 100_000))
    .option('--dir <dir>', 'the swarm folder', DEFAULT_DIR)
    .action(async (opts: { dir: string, peer: number }, command: Command) => {
      const g = globals(command)
      const { swarmStopPeer } = await import('../../swarm/process-swarm.ts')
      const result = await swarmStopPeer(opts.dir, opts.peer)
      output(g, result, r => r.stopped ? `peer-${r.index} ${r.peerId} stopped` : `peer-${r.index} ${r.peerId} was not running`)
    })

  swarm.command('kill')
    .description('SIGKILL one peer\'s process (its repo is kept; "swarm start" brings it back)')
    .requiredOption('--peer <index>', 'the peer\'s index in swarm.json', intOption('--peer', 0, 100_000))
    .option('--dir <dir>', 'the swarm folder', DEFAULT_DIR)
    .action(async (opts: { dir: string, peer: number }, command: Command) => {
      const g = globals(command)
      const { swarmKillPeer } = await import('../../swarm/peer-restart.ts')
      const result = await swarmKillPeer(opts.dir, opts.peer)
      output(g, result, r => r.killed ? `peer-${r.index} ${r.peerId} killed (pid ${r.pid})` : `peer-${r.index} ${r.peerId} was not running`)
    })

  swarm.command('start')
    .description('start a stopped or killed peer again on its repo (same identity, same address) and reconnect it')
    .requiredOption('--peer <index>', 'the peer\'s index in swarm.json', intOption('--peer', 0, 100_000))
    .option('--dir <dir>', 'the swarm folder', DEFAULT_DIR)
    .option('--timeout <seconds>', 'give up if it is not up and reconnected by then', intOption('--timeout', 1, 3600), 60)
    .action(async (opts: { dir: string, peer: number, timeout: number }, command: Command) => {
      const g = globals(command)
      const { swarmStartPeer } = await import('../../swarm/peer-restart.ts')
      const result = await swarmStartPeer(opts.dir, opts.peer, { timeoutMs: opts.timeout * 1000 })
      output(g, result, r => r.alreadyRunning
        ? `peer-${r.index} ${r.peerId} is already running (pid ${r.pid})`
        : `peer-${r.index} ${r.peerId} started (pid ${r.pid}) in ${(r.ms / 1000).toFixed(1)} s, routing table ${r.routingTableSize}\n  ${r.multiaddrs.join('\n  ')}`)
    })

  swarm.command('link')
    .description('change the links of a running lab swarm (fields not given keep their value)')
    .option('--peer <index>', 'the host of this peer', intOption('--peer', 0, 100_000))
    .option('--all', 'every host')
    .option('--uplink <rate>', 'bytes/s the host may send, as a size (e.g. 16MiB); 0 or off: no cap', rateOption('--uplink'))
    .option('--downlink <rate>', 'bytes/s the host may receive; 0 or off: no cap', rateOption('--downlink'))
    .option('--latency <ms>', 'one-way delay added to every byte the host receives', intOption('--latency', 0, MAX_LATENCY_MS))
    .option('--dir <dir>', 'the swarm folder', DEFAULT_DIR)
    .action(async (opts: { dir: string, peer?: number, all?: boolean } & LinkFlags, command: Command) => {
      const g = globals(command)
      if ((opts.peer != null) === (opts.all === true)) throw new InvalidInputError('swarm link: give --peer I or --all (one of them)')
      const change = linkChange(opts)
      if (Object.keys(change).length === 0) throw new InvalidInputError('swarm link: nothing to change (give --uplink, --downlink or --latency)')
      const { swarmLink } = await import('../../swarm/lab/lab-swarm.ts')
      const result = await swarmLink(opts.dir, opts.all === true ? 'all' : opts.peer!, change)
      output(g, result, r => r.hosts.map(h => `host ${h.host} (peer${h.peers.length > 1 ? `s ${h.peers[0]}-${h.peers.at(-1)}` : ` ${h.peers[0]}`}): ${h.description}`).join('\n'))
    })

  swarm.command('partition')
    .description('cut a lab swarm into groups that reach no peer of another group')
    .requiredOption('--groups <groups>', 'peer indexes per group, groups separated by "|", e.g. "0-9|10-19" (peers not named form one more group)')
    .option('--dir <dir>', 'the swarm folder', DEFAULT_DIR)
    .action(async (opts: { dir: string, groups: string }, command: Command) => {
      const g = globals(command)
      const { swarmPartition } = await import('../../swarm/lab/lab-swarm.ts')
      const result = await swarmPartition(opts.dir, opts.groups)
      output(g, result, r => `partitioned into ${r.groups.length} groups: ${r.groups.map(list => `[${compactRanges(list)}]`).join(' | ')}`)
    })

  swarm.command('heal')
    .description('end a partition: every peer of the lab swarm reaches every other again')
    .option('--dir <dir>', 'the swarm folder', DEFAULT_DIR)
    .action(async (opts: { dir: string }, command: Command) => {
      const g = globals(command)
      const { swarmHeal } = await import('../../swarm/lab/lab-swarm.ts')
      const result = await swarmHeal(opts.dir)
      output(g, result, r => r.healed ? 'healed: one network again' : 'no partition was in place')
    })

  swarm.command('churn')
    .description('kill random peers and restart them, for a while (each event printed and logged to DIR/churn.log)')
    .requiredOption('--rate <fraction>', 'fraction of the peers killed per minute, e.g. 0.3 or 30%', fractionOption('--rate'))
    .requiredOption('--for <seconds>', 'how long kills go on', intOption('--for', 1, 86_400))
    .option('--seed <n>', 'seed of the random draws (same seed, same schedule)', intOption('--seed', 0, 2 ** 32 - 1), 1)
    .option('--downtime <seconds>', 'how long a killed peer stays down', intOption('--downtime', 0, 3600), 5)
    .option('--spare <peers>', 'peers never killed, e.g. "0,1" or "0-2"', indexListOption('--spare'), [])
    .option('--dir <dir>', 'the swarm folder', DEFAULT_DIR)
    .action(async (opts: { dir: string, rate: number, for: number, seed: number, downtime: number, spare: number[] }, command: Command) => {
      const g = globals(command)
      const { swarmChurn } = await import('../../swarm/lab/churn.ts')
      const result = await swarmChurn({
        dir: opts.dir,
        ratePerMinute: opts.rate,
        forSeconds: opts.for,
        seed: opts.seed,
        downtimeSeconds: opts.downtime,
        spare: opts.spare,
        onEvent: g.json ? undefined : e => { process.stdout.write(`${e.t.toFixed(1).padStart(7)} s  ${e.event}${e.peer != null ? ` peer-${e.peer}` : ''}${e.pid != null ? ` pid ${e.pid}` : ''}${e.ms != null ? ` (${(e.ms / 1000).toFixed(1)} s)` : ''}${e.error != null ? `: ${e.error}` : ''}\n`) }
      })
      output(g, result, r => `churn done: ${r.kills} kills, ${r.starts} restarts${r.failedStarts > 0 ? `, ${r.failedStarts} failed restarts` : ''} (log ${r.log})`)
      if (result.failedStarts > 0) process.exitCode = 1
    })

  // internal: what `swarm up` runs for several peers in one process
  swarm.command('host', { hidden: true })
    .description('run several peers of a swarm in this process (used by swarm up)')
    .argument('<repos...>', 'the peers\' repo folders')
    .option('--bootstrap <multiaddr>', 'peer to bootstrap from (repeatable)', collect(String), [])
    .option('--planned-join', 'the swarm hands each peer its contacts (a contact plan)')
    .action(async (repos: string[], opts: { bootstrap: string[], plannedJoin?: boolean }) => {
      await checkMultiaddrs('--bootstrap', opts.bootstrap, true)
      useBulkTransferV8Flags()
      const { runSwarmHost } = await import('../../swarm/swarm-host.ts')
      await runSwarmHost({ repos: repos.map(r => path.resolve(r)), bootstrap: opts.bootstrap, plannedJoin: opts.plannedJoin === true })
    })

  swarm.command('down')
    .description('stop every daemon of the swarm and wait until none is left; a lab\'s namespaces, links and bridge go too')
    .option('--dir <dir>', 'the swarm folder', DEFAULT_DIR)
    .action(async (opts: { dir: string }, command: Command) => {
      const g = globals(command)
      const { swarmDown } = await import('../../swarm/process-swarm.ts')
      const result = await swarmDown(opts.dir)
      output(g, result, r => `swarm ${r.dir} down: ${r.stopped} peer(s) stopped cleanly${r.killed > 0 ? `, ${r.killed} killed after the grace period` : ''}` +
        (r.lab != null ? `; lab: ${r.lab.namespaces} namespace(s) deleted${r.lab.killed > 0 ? `, ${r.lab.killed} process(es) still in them killed` : ''}` : ''))
    })
}

/** [0,1,2,5,7,8] → "0-2,5,7-8" */
function compactRanges (list: number[]): string {
  const parts: string[] = []
  for (let i = 0; i < list.length; i++) {
    let j = i
    while (j + 1 < list.length && list[j + 1] === list[j] + 1) j++
    parts.push(j > i ? `${list[i]}-${list[j]}` : `${list[i]}`)
    i = j
  }
  return parts.join(',')
}
