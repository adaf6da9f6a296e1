import { InvalidArgumentError, type Command } from 'commander'
import { InvalidInputError } from '../../errors.ts'
import { OVERLAY_NAMES, type OverlayName } from '../../routing/index.ts'
import { globals, output } from '../context.ts'

/** `--overlay kademlia|chord`. */
export function overlayOption (value: string): OverlayName {
  if (!(OVERLAY_NAMES as readonly string[]).includes(value)) {
    throw new InvalidArgumentError(`--overlay must be ${OVERLAY_NAMES.join(' or ')}, got "${value}"`)
  }
  return value as OverlayName
}

export function registerInit (program: Command): void {
  program.command('init')
    .description('create the repo: identity key, config, API token, stores (idempotent)')
    .option('--overlay <name>', `the overlay this peer routes through: ${OVERLAY_NAMES.join(' or ')} (config "overlay"; default kademlia)`, overlayOption)
    .action(async (opts: { overlay?: OverlayName }, command: Command) => {
      const g = globals(command)
      const { Repo } = await import('../../peer/repo.ts')
      const result = await Repo.init(g.repo, opts.overlay != null ? { overlay: opts.overlay } : {})
      const overlay = (await Repo.open(g.repo)).config.overlay
      if (opts.overlay != null && overlay !== opts.overlay) {
        throw new InvalidInputError(`repo ${result.repo} already runs the ${overlay} overlay; change "overlay" in its config.json to switch`)
      }
      output(g, { repo: result.repo, peerId: result.peerId.toString(), created: result.created, overlay }, r =>
        `${r.created ? 'initialised' : 'already initialised:'} repo ${r.repo}\npeer ID ${r.peerId}\noverlay ${r.overlay}`)
    })
}
