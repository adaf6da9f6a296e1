/** shoal gc and shoal verify: upkeep of the local blockstore. */
import type { Command } from 'commander'
import { ApiClient } from '../../api/client.ts'
import { formatBytes } from '../../utils/bytes.ts'
import { globals, output } from '../context.ts'

export function registerStore (program: Command): void {
  program.command('gc')
    .description('delete blocks that no holding needs (left by removed content or interrupted imports)')
    .action(async (_opts, command: Command) => {
      const g = globals(command)
      const result = await (await ApiClient.fromRepo(g.repo)).gc()
      output(g, result, r => `removed ${r.blocks} block${r.blocks === 1 ? '' : 's'}, ${formatBytes(r.bytes)}`)
    })

  program.command('verify')
    .description('re-hash every stored block; exit 1 if any is corrupt (unless --repair removed them)')
    .option('--repair', 'remove blocks whose bytes do not match their CID')
    .action(async (opts: { repair?: boolean }, command: Command) => {
      const g = globals(command)
      const result = await (await ApiClient.fromRepo(g.repo)).verify(opts.repair === true)
      output(g, result, r => [
        `checked ${r.checked} block${r.checked === 1 ? '' : 's'} (${formatBytes(r.bytes)}): ${r.bad.length === 0 ? 'all good' : `${r.bad.length} corrupt${r.removed ? ', removed' : ''}`}`,
        ...r.bad.map(cid => `  corrupt ${cid}`)
      ].join('\n'))
      if (result.bad.length > 0 && !result.removed) process.exitCode = 1
    })
}
