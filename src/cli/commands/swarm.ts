import path from 'node:path'
import cliProgress from 'cli-progress'
import type { Command } from 'commander'
import { swarmDown, swarmStatus, swarmUp, type SwarmUpProgress } from '../../swarm/process-swarm.ts'
import { globals, output, showProgress } from '../context.ts'
import { intOption } from '../parse.ts'

const DEFAULT_DIR = '.shoal-swarm'

export function registerSwarm (program: Command): void {
  const swarm = program.command('swarm').description('local swarms of peer daemons on 127.0.0.1')

  swarm.command('up')
    .description('start N peer daemons, bootstrapped off each other; return when the swarm is routable')
    .requiredOption('--peers <n>', 'number of peers', intOption('--peers', 1, 500))
    .option('--dir <dir>', 'folder for the peer repos and swarm.json', DEFAULT_DIR)
    .option('--replicas <k>', 'replicas per block for shares in this swarm', intOption('--replicas', 1, 64), 3)
    .option('--timeout <seconds>', 'give up if not routable by then (default 30 + 2 per peer)', intOption('--timeout', 1, 3600))
    .action(async (opts: { peers: number, dir: string, replicas: number, timeout?: number }, command: Command) => {
      const g = globals(command)
      const bar = showProgress(g)
        ? new cliProgress.SingleBar({ format: ' {phase} [{bar}] {value}/{total} peers', stream: process.stderr, hideCursor: true }, cliProgress.Presets.shades_classic)
        : undefined
      bar?.start(opts.peers, 0, { phase: 'starting' })
      const onProgress = (e: SwarmUpProgress): void => {
        if (e.name === 'swarm:peer-started') bar?.update(e.started, { phase: 'starting' })
        else bar?.update(e.routable, { phase: 'routing ' })
      }
      try {
        const result = await swarmUp({
          peers: opts.peers,
          dir: opts.dir,
          replicas: opts.replicas,
          timeoutMs: opts.timeout != null ? opts.timeout * 1000 : undefined,
          onProgress
        })
        bar?.stop()
        output(g, result, r => [
          `swarm of ${r.peers.length} peers routable in ${(r.routableMs / 1000).toFixed(1)} s`,
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
      const status = await swarmStatus(opts.dir)
      const alive = status.peers.filter(p => p.alive).length
      output(g, { ...status, alive }, r => [
        `swarm ${r.dir}: ${r.alive} of ${r.peers.length} peers alive`,
        ...r.peers.map(p => `  peer-${p.index} ${p.peerId} pid ${p.pid} ${p.alive ? `up, ${p.connections} connections, routing table ${p.routingTableSize}` : 'DOWN'}`)
      ].join('\n'))
      if (alive < status.peers.length) process.exitCode = 1
    })

  swarm.command('down')
    .description('stop every daemon of the swarm and wait until none is left')
    .option('--dir <dir>', 'the swarm folder', DEFAULT_DIR)
    .action(async (opts: { dir: string }, command: Command) => {
      const g = globals(command)
      const result = await swarmDown(opts.dir)
      output(g, result, r => `swarm ${r.dir} down: ${r.stopped} peer(s) stopped cleanly${r.killed > 0 ? `, ${r.killed} killed after the grace period` : ''}`)
    })
}
