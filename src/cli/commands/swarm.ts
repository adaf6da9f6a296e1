import path from 'node:path'
import type { Command } from 'commander'
// The swarm modules are imported in the actions: the host loads libp2p and the
// whole peer, ~1.4 s of start-up every other command would pay for nothing.
import type { SwarmUpProgress } from '../../swarm/process-swarm.ts'
import { OWN_PROCESS_MAX_PEERS } from '../../constants.ts'
import { globals, output, progressBar, showProgress } from '../context.ts'
import { checkMultiaddrs, collect, intOption } from '../parse.ts'
import { useBulkTransferV8Flags } from '../../utils/v8-flags.ts'

const DEFAULT_DIR = '.shoal-swarm'

export function registerSwarm (program: Command): void {
  const swarm = program.command('swarm').description('local swarms of peer daemons on 127.0.0.1')

  swarm.command('up')
    .description('start N peer daemons and connect them to each other; return when the swarm is routable')
    .requiredOption('--peers <n>', 'number of peers', intOption('--peers', 1, 500))
    .option('--dir <dir>', 'folder for the peer repos and swarm.json', DEFAULT_DIR)
    .option('--replicas <k>', 'replicas per block for shares in this swarm', intOption('--replicas', 1, 64), 3)
    .option('--timeout <seconds>', 'give up if not routable by then (default 30 + 2 per peer)', intOption('--timeout', 1, 3600))
    .option('--peers-per-process <n>', `peers run by one process; 1 = each peer its own daemon (default: 1 up to ${OWN_PROCESS_MAX_PEERS} peers, else about one process per core)`, intOption('--peers-per-process', 1, 500))
    .action(async (opts: { peers: number, dir: string, replicas: number, timeout?: number, peersPerProcess?: number }, command: Command) => {
      const g = globals(command)
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
          timeoutMs: opts.timeout != null ? opts.timeout * 1000 : undefined,
          peersPerProcess: opts.peersPerProcess,
          onProgress
        })
        bar?.stop()
        output(g, result, r => [
          `swarm of ${r.peers.length} peers routable in ${(r.routableMs / 1000).toFixed(1)} s` +
            (r.peers[0].peersInProcess > 1 ? ` (${new Set(r.peers.map(p => p.pid)).size} processes of up to ${r.peers[0].peersInProcess} peers)` : ''),
          `dir ${r.dir} (see ${path.join(r.dir, 'swarm.json')})`,
          ...r.peers.slice(0, 5).map(p => `  peer-${p.index} ${p.peerId} api ${p.api} pid ${p.pid}`),
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
        `swarm ${r.dir}: ${r.alive} of ${r.peers.length} peers alive`,
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

  // internal: what `swarm up` runs for several peers in one process
  swarm.command('host', { hidden: true })
    .description('run several peers of a swarm in this process (used by swarm up)')
    .argument('<repos...>', 'the peers\' repo folders')
    .option('--bootstrap <multiaddr>', 'peer to bootstrap from (repeatable)', collect(String), [])
    .action(async (repos: string[], opts: { bootstrap: string[] }) => {
      await checkMultiaddrs('--bootstrap', opts.bootstrap, true)
      useBulkTransferV8Flags()
      const { runSwarmHost } = await import('../../swarm/swarm-host.ts')
      await runSwarmHost({ repos: repos.map(r => path.resolve(r)), bootstrap: opts.bootstrap })
    })

  swarm.command('down')
    .description('stop every daemon of the swarm and wait until none is left')
    .option('--dir <dir>', 'the swarm folder', DEFAULT_DIR)
    .action(async (opts: { dir: string }, command: Command) => {
      const g = globals(command)
      const { swarmDown } = await import('../../swarm/process-swarm.ts')
      const result = await swarmDown(opts.dir)
      output(g, result, r => `swarm ${r.dir} down: ${r.stopped} peer(s) stopped cleanly${r.killed > 0 ? `, ${r.killed} killed after the grace period` : ''}`)
    })
}
