/**
 * The `shoal` command line. Commands live one per file in ./commands; this
 * file wires them up and turns errors into one line on stderr and an exit
 * code: 0 success, 1 the operation failed, 2 bad usage or bad input.
 *
 * Everything these modules import, every command loads before it runs:
 * heavy modules (libp2p, the multiaddr parser, cli-progress) are imported
 * in the actions that need them (what a command's start costs:
 * docs/benchmarks.md, Client commands).
 */
import { Command, CommanderError } from 'commander'
import { SHOAL_VERSION } from '../constants.ts'
import { isShoalError } from '../errors.ts'
import { registerDaemon } from './commands/daemon.ts'
import { registerExport } from './commands/export.ts'
import { registerInfo } from './commands/info.ts'
import { registerInit } from './commands/init.ts'
import { registerLookup } from './commands/lookup.ts'
import { registerLs } from './commands/ls.ts'
import { registerRm } from './commands/rm.ts'
import { registerRouting } from './commands/routing.ts'
import { registerShare } from './commands/share.ts'
import { registerStat } from './commands/stat.ts'
import { registerStore } from './commands/store.ts'
import { registerSwarm } from './commands/swarm.ts'
import { registerUi } from './commands/ui.ts'

export function buildProgram (): Command {
  const program = new Command('shoal')
    .description('Shoal: peer-to-peer file sharing on a Kademlia or Chord DHT')
    .version(SHOAL_VERSION)
    .option('--repo <dir>', 'repo folder (default: $SHOAL_REPO, else ~/.shoal)')
    .option('--json', 'machine-readable output: one JSON document on stdout')
    .showHelpAfterError('(run "shoal --help" for usage)')
    .exitOverride()
  registerInit(program)
  registerDaemon(program)
  registerInfo(program)
  registerShare(program)
  registerLs(program)
  registerRm(program)
  registerStat(program)
  registerExport(program)
  registerStore(program)
  registerLookup(program)
  registerRouting(program)
  registerSwarm(program)
  registerUi(program)
  // commander's own messages (unknown command/option, bad value) go to stderr
  const applyTo = (cmd: Command): void => {
    cmd.exitOverride()
    cmd.configureOutput({ writeErr: s => process.stderr.write(s) })
    cmd.commands.forEach(applyTo)
  }
  applyTo(program)
  return program
}

export async function main (argv: string[]): Promise<number> {
  const program = buildProgram()
  try {
    if (argv.length === 0) {
      program.outputHelp({ error: true })
      return 2
    }
    await program.parseAsync(argv, { from: 'user' })
    return typeof process.exitCode === 'number' ? process.exitCode : 0
  } catch (err) {
    if (err instanceof CommanderError) {
      // help and version asked for are not errors; everything else commander
      // throws is usage, including the help it prints (exit code 1) for a
      // command group given no subcommand (`shoal swarm`)
      if (err.code === 'commander.helpDisplayed' || err.code === 'commander.version') return 0
      if (err.code === 'commander.help' && err.exitCode === 0) return 0
      return 2
    }
    if (isShoalError(err)) {
      process.stderr.write(`shoal: ${err.message}\n`)
      return err.exitCode
    }
    process.stderr.write(`shoal: ${(err as Error).message ?? String(err)}\n`)
    if (process.env.SHOAL_DEBUG != null) process.stderr.write(`${(err as Error).stack}\n`)
    return 1
  }
}
