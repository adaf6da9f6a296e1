/** shoal stat CID: the DAG and, for each block, who holds it now. */
import type { Command } from 'commander'
import { ApiClient } from '../../api/client.ts'
import { formatBytes } from '../../utils/bytes.ts'
import { globals, output } from '../context.ts'
import { cidArgument, intOption } from '../parse.ts'

export function registerStat (program: Command): void {
  program.command('stat')
    .description('the DAG of a CID and, for each block, which peers hold it now (asked, not assumed)')
    .argument('<cid>', 'CID of a file (held here or not: its DAG is then asked of the peers that hold it)', cidArgument)
    .option('--replicas <k>', 'the k to compare holders against (default: config "replicas")', intOption('--replicas', 1, 64))
    .action(async (cid: string, opts: { replicas?: number }, command: Command) => {
      const g = globals(command)
      const stat = await (await ApiClient.fromRepo(g.repo)).stat(cid, opts.replicas)
      output(g, stat, r => {
        const lines = [`${r.cid}  ${formatBytes(r.size)}, ${r.blocks.length} block${r.blocks.length === 1 ? '' : 's'}; * = among the ${r.replicas} closest peers`]
        for (const block of r.blocks) {
          const marked = block.holders.map(h => `${h}${block.closest.includes(h) ? '*' : ''}`)
          const onClosest = block.holders.filter(h => block.closest.includes(h)).length
          lines.push(`${block.cid}  ${formatBytes(block.size).padStart(10)}  ${onClosest}/${r.replicas}  ${marked.join(' ') || '(no holder found)'}`)
        }
        return lines.join('\n')
      })
    })
}
