/** shoal rm CID: stop holding a CID and free the blocks nothing else holds. */
import type { Command } from 'commander'
import { ApiClient } from '../../api/client.ts'
import { formatBytes } from '../../utils/bytes.ts'
import { globals, output } from '../context.ts'
import { cidArgument } from '../parse.ts'

export function registerRm (program: Command): void {
  program.command('rm')
    .description('stop holding a CID (every reason) and free blocks nothing else holds')
    .argument('<cid>', 'CID shown by "shoal share" or "shoal ls"', cidArgument)
    .action(async (cid: string, _opts, command: Command) => {
      const g = globals(command)
      const result = await (await ApiClient.fromRepo(g.repo)).remove(cid)
      output(g, result, r =>
        `removed ${r.cid} (${r.removed.map(h => h.reason).join(', ')}); freed ${r.freed.blocks} block${r.freed.blocks === 1 ? '' : 's'}, ${formatBytes(r.freed.bytes)}`)
    })
}
