/** shoal ls: what this peer holds, and why. */
import type { Command } from 'commander'
import { ApiClient } from '../../api/client.ts'
import { formatBytes } from '../../utils/bytes.ts'
import { globals, output } from '../context.ts'

export function registerLs (program: Command): void {
  program.command('ls')
    .description('what this peer holds (shared, fetched, replicas) and the store\'s size')
    .action(async (_opts, command: Command) => {
      const g = globals(command)
      const result = await (await ApiClient.fromRepo(g.repo)).holdings()
      output(g, result, r => {
        const rows = r.holdings
          .sort((a, b) => a.since.localeCompare(b.since))
          .map(h => `${h.cid}  ${h.reason.padEnd(7)}  ${formatBytes(h.size).padStart(10)}  ${h.name ?? ''}`.trimEnd())
        const quota = formatBytes(r.store.quotaBytes)
        return [
          ...(rows.length > 0 ? rows : ['(nothing held)']),
          `store: ${r.store.blocks} blocks, ${formatBytes(r.store.bytes)} of ${quota} quota`
        ].join('\n')
      })
    })
}
