import { Option, type Command } from 'commander'
import { SHOAL_VERSION, SHUTDOWN_TIMEOUT_MS } from '../../constants.ts'
import { parseApiAddress } from '../../peer/api-address.ts'
import { globals, output } from '../context.ts'
import { checkMultiaddrs, collect } from '../parse.ts'
import { DAEMON_V8_FLAGS, useBulkTransferV8Flags } from '../../utils/v8-flags.ts'

interface DaemonOptions {
  listen: string[]
  bootstrap: string[]
  api?: string
  plannedJoin?: boolean
}

export function registerDaemon (program: Command): void {
  program.command('daemon')
    .description('run the peer until SIGINT/SIGTERM, then shut down cleanly')
    .option('--listen <multiaddr>', 'listen address (repeatable; default: the config\'s)', collect(String), [])
    .option('--bootstrap <multiaddr>', 'peer to bootstrap from, with /p2p/<id> (repeatable; added to the config\'s)', collect(String), [])
    .option('--api <host:port>', 'control API address, loopback only (default: the config\'s)', (v: string) => { parseApiAddress(v); return v })
    // internal: `swarm up` tells this peer whom to connect to (see src/swarm/contact-plan.ts)
    .addOption(new Option('--planned-join').hideHelp())
    .action(async (opts: DaemonOptions, command: Command) => {
      const g = globals(command)
      await checkMultiaddrs('--listen', opts.listen)
      await checkMultiaddrs('--bootstrap', opts.bootstrap, true)
      useBulkTransferV8Flags(DAEMON_V8_FLAGS)
      // loaded here so commands that only talk to a daemon start fast
      const { ShoalDaemon } = await import('../../api/daemon.ts')
      const daemon = await ShoalDaemon.open(g.repo, {
        listen: opts.listen.length > 0 ? opts.listen : undefined,
        bootstrap: opts.bootstrap,
        api: opts.api,
        plannedJoin: opts.plannedJoin === true,
        // POST /api/v1/shutdown: the same clean stop as SIGTERM
        onShutdownRequested: () => { process.kill(process.pid, 'SIGTERM') }
      })
      await daemon.start()
      const { peer } = daemon
      output(g, { peerId: peer.peerId.toString(), multiaddrs: peer.multiaddrs(), api: daemon.apiAddress, repo: peer.repo.path },
        r => [
          `Shoal daemon ${SHOAL_VERSION}`,
          `repo      ${r.repo}`,
          `peer ID   ${r.peerId}`,
          ...r.multiaddrs.map(ma => `listening ${ma}`),
          `API       http://${r.api}`,
          'daemon is ready (Ctrl-C to stop)'
        ].join('\n'))
      await waitForSignal()
      if (!g.json) process.stdout.write('shutting down...\n')
      const timer = setTimeout(() => {
        process.stderr.write(`shoal: daemon did not stop within ${SHUTDOWN_TIMEOUT_MS} ms, exiting\n`)
        process.exit(1)
      }, SHUTDOWN_TIMEOUT_MS)
      timer.unref()
      await daemon.stop()
      clearTimeout(timer)
      if (!g.json) process.stdout.write('daemon stopped\n')
    })
}

async function waitForSignal (): Promise<void> {
  await new Promise<void>(resolve => {
    const done = (): void => {
      process.off('SIGINT', done)
      process.off('SIGTERM', done)
      resolve()
    }
    process.on('SIGINT', done)
    process.on('SIGTERM', done)
  })
}
