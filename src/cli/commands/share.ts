/** shoal share PATH: import a file into the daemon's store and share it. */
import fs from 'node:fs/promises'
import path from 'node:path'
import type { SingleBar } from 'cli-progress'
import type { Command } from 'commander'
import { ApiClient } from '../../api/client.ts'
import type { ShareProgress, ShareResponse } from '../../api/content-routes.ts'
import { MAX_CHUNK_SIZE, MIN_CHUNK_SIZE } from '../../content/chunker.ts'
import { ApiError } from '../../errors.ts'
import { isCode } from '../../utils/fs.ts'
import { InvalidPathError } from '../../store/errors.ts'
import { formatBytes } from '../../utils/bytes.ts'
import { globals, output, progressBar, showProgress } from '../context.ts'
import { intOption, sizeOption } from '../parse.ts'

export function registerShare (program: Command): void {
  program.command('share')
    .description('import a file (or "-" for stdin) into the store and print its CID')
    .argument('<path>', 'file to share, or "-" to read stdin')
    .option('--replicas <k>', 'copies to place on the closest peers (default: config "replicas"; 0 = keep it here only and announce it)', intOption('--replicas', 0, 64))
    .option('--chunk-size <size>', 'chunk size, 16KiB to 4MiB (default 1MiB)', sizeOption('--chunk-size', MIN_CHUNK_SIZE, MAX_CHUNK_SIZE))
    .action(async (file: string, opts: { replicas?: number, chunkSize?: number }, command: Command) => {
      const g = globals(command)
      const client = await ApiClient.fromRepo(g.repo)
      const absolute = file === '-' ? '' : path.resolve(file)
      const checked = file === '-' ? undefined : await checkReadableFile(absolute)
      // a pipe or device (/dev/stdin, <(cmd)) can be read once, by us: stream it
      const fromStdin = file === '-'
      const streamed = checked != null && !checked.regular
      const size = checked?.regular === true ? checked.size : undefined
      const progress = showProgress(g) ? new ShareProgressBars(await progressBar(ShareProgressBars.format), size) : undefined
      const request = {
        name: fromStdin || streamed ? undefined : path.basename(absolute),
        chunkSize: opts.chunkSize,
        replicas: opts.replicas,
        onProgress: progress != null ? (p: ShareProgress) => { progress.update(p) } : undefined
      }
      let result: ShareResponse
      try {
        if (fromStdin) {
          result = await client.share({ ...request, stream: process.stdin })
        } else if (streamed) {
          const handle = await fs.open(absolute, 'r')
          try {
            result = await client.share({ ...request, stream: handle.createReadStream({ autoClose: false }) })
          } finally {
            await handle.close()
          }
        } else {
          result = await client.share({ ...request, path: absolute }).catch(async (err: unknown) => {
            // The daemon may run as a user who cannot read the file: send the bytes.
            if (!(err instanceof ApiError && err.remoteName === 'InvalidPathError' && /permission denied/.test(err.message))) throw err
            const handle = await fs.open(absolute, 'r')
            try {
              return await client.share({ ...request, stream: handle.createReadStream({ autoClose: false }) })
            } finally {
              await handle.close()
            }
          })
        }
      } finally {
        progress?.stop()
      }
      output(g, result, r => [
        `${r.cid}`,
        `  size      ${formatBytes(r.size)} (${r.size} bytes), ${r.chunks} chunk${r.chunks === 1 ? '' : 's'}, ${r.blocks} block${r.blocks === 1 ? '' : 's'}`,
        r.replicas.target === 0
          ? `  replicas  none placed (--replicas 0): served from this peer only${r.placement.announced ? ', announced' : ''}`
          : r.replicas.complete
          ? `  replicas  every block on its ${r.replicas.target} closest peers (${formatBytes(r.placement.bytesPushed)} sent, ${r.placement.lookups} DHT lookup${r.placement.lookups === 1 ? '' : 's'})`
          : `  replicas  only ${r.replicas.min} of ${r.replicas.target} copies for some blocks${refusals(r.placement.refused)}`,
        ...(r.placement.announced ? [] : ['  warning   the provider record could not be announced'])
      ].join('\n'))
    })
}

/** Size of a readable file, and whether it is a regular one; one clear error otherwise (exit 2). */
async function checkReadableFile (file: string): Promise<{ size: number, regular: boolean }> {
  let stat
  try {
    stat = await fs.stat(file)
    await fs.access(file, fs.constants.R_OK)
  } catch (err) {
    if (isCode(err, 'ENOENT') || isCode(err, 'ENOTDIR')) throw new InvalidPathError(`no such file: ${file}`)
    if (isCode(err, 'EACCES') || isCode(err, 'EPERM')) throw new InvalidPathError(`cannot read ${file}: permission denied`)
    throw new InvalidPathError(`cannot read ${file}: ${(err as Error).message}`)
  }
  if (stat.isDirectory()) throw new InvalidPathError(`${file} is a directory, not a file`)
  return { size: stat.size, regular: stat.isFile() }
}

function refusals (refused: Record<string, number>): string {
  const parts = Object.entries(refused).map(([why, n]) => `${n} ${why}`)
  return parts.length > 0 ? ` (${parts.join(', ')})` : ' (not enough peers)'
}

/** One bar: bytes imported (with the copies placed so far beside), then, once the import is over, block copies placed. */
class ShareProgressBars {
  static readonly format = ' {phase} [{bar}] {percentage}% | {amount}'
  private readonly bar: SingleBar
  private phase: 'import' | 'place' = 'import'

  constructor (bar: SingleBar, total: number | undefined) {
    this.bar = bar
    this.bar.start(total ?? 0, 0, { phase: 'importing', amount: formatBytes(0) })
  }

  update (p: ShareProgress): void {
    const copies = `${p.done}/${p.total} copies placed`
    if (this.phase === 'import' && !p.imported) {
      this.bar.update(p.bytes, { amount: `${formatBytes(p.bytes)}, ${copies}` })
      return
    }
    if (this.phase === 'import') {
      this.phase = 'place'
      this.bar.setTotal(p.total)
    }
    this.bar.setTotal(p.total)
    this.bar.update(p.done, { phase: 'placing  ', amount: copies })
  }

  stop (): void {
    this.bar.stop()
  }
}
