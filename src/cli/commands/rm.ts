/** shoal rm CID: stop holding a CID and free the blocks nothing else holds. */
import type { Command } from 'commander'
import { ApiClient } from '../../api/client.ts'
import type { HandOffResult } from '../../placement/placement.ts'
import type { RemoveResult } from '../../store/content-store.ts'
import { formatBytes } from '../../utils/bytes.ts'
import { globals, output } from '../context.ts'
import { cidArgument } from '../parse.ts'

export function registerRm (program: Command): void {
  program.command('rm')
    .description('stop holding a CID (every reason) and free blocks nothing else holds; blocks this peer is among the closest of go to the next closest peer first')
    .argument('<cid>', 'CID shown by "shoal share" or "shoal ls"', cidArgument)
    .action(async (cid: string, _opts, command: Command) => {
      const g = globals(command)
      const result: RemoveResult & { handedOff?: HandOffResult } = await (await ApiClient.fromRepo(g.repo)).remove(cid)
      output(g, result, r => {
        const handed = r.handedOff == null || r.handedOff.blocks === 0
          ? ''
          : `; first handed ${r.handedOff.copies} cop${r.handedOff.copies === 1 ? 'y' : 'ies'} of the ${r.handedOff.blocks} block${r.handedOff.blocks === 1 ? '' : 's'} it was among the closest of to the next closest peers${r.handedOff.failed > 0 ? ` (${r.handedOff.failed} failed: repair will place them)` : ''}`
        return `removed ${r.cid} (${r.removed.map(h => h.reason).join(', ')}); freed ${r.freed.blocks} block${r.freed.blocks === 1 ? '' : 's'}, ${formatBytes(r.freed.bytes)}${handed}`
      })
    })
}
