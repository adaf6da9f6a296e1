/** shoal gc, repair and verify: upkeep of the local store and its replicas. */
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

  program.command('repair')
    .description('run one repair pass now: restore k copies of the replicas held here on their closest peers')
    .action(async (_opts, command: Command) => {
      const g = globals(command)
      const r = await (await ApiClient.fromRepo(g.repo)).repair()
      output(g, r, x => `checked ${x.checked} replica${x.checked === 1 ? '' : 's'}: pushed ${x.pushed} cop${x.pushed === 1 ? 'y' : 'ies'} (${formatBytes(x.bytes)}), dropped ${x.dropped}, ${x.missing} still missing, in ${x.ms} ms`)
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
