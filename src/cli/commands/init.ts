import type { Command } from 'commander'
import { globals, output } from '../context.ts'

export function registerInit (program: Command): void {
  program.command('init')
    .description('create the repo: identity key, config, API token, stores (idempotent)')
    .action(async (_opts, command: Command) => {
      const g = globals(command)
      const { Repo } = await import('../../peer/repo.ts')
      const result = await Repo.init(g.repo)
      output(g, { repo: result.repo, peerId: result.peerId.toString(), created: result.created }, r =>
        `${r.created ? 'initialised' : 'already initialised:'} repo ${r.repo}\npeer ID ${r.peerId}`)
    })
}
