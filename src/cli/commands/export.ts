/**
 * shoal cat CID / shoal get CID -o PATH: the local export. The daemon walks
 * the DAG and verifies every block as it reads it; `get` writes to a temp
 * file beside PATH and renames it only once every byte has arrived, so PATH
 * is never left half-written.
 */
import { randomBytes } from 'node:crypto'
import fs from 'node:fs/promises'
import path from 'node:path'
import { Readable, Writable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import type { SingleBar } from 'cli-progress'
import type { Command } from 'commander'
import { ApiClient } from '../../api/client.ts'
import { ShoalError } from '../../errors.ts'
import { isCode } from '../../utils/fs.ts'
import { InvalidPathError, OutputExistsError } from '../../store/errors.ts'
import { formatBytes } from '../../utils/bytes.ts'
import type { FetchProgress } from '../../exchange/fetcher.ts'
import { globals, output, progressBar, showProgress } from '../context.ts'
import { cidArgument, intOption } from '../parse.ts'

export function registerExport (program: Command): void {
  program.command('cat')
    .description('write a file held by this peer to stdout, verifying every block')
    .argument('<cid>', 'CID of the file', cidArgument)
    .action(async (cid: string, _opts, command: Command) => {
      const g = globals(command)
      const response = await (await ApiClient.fromRepo(g.repo)).read(cid, { local: true })
      const expected = Number(response.headers.get('content-length'))
      let written = 0
      const counting = new Writable({
        write (chunk: Buffer, _enc, done) {
          written += chunk.length
          if (process.stdout.write(chunk)) done()
          else process.stdout.once('drain', done)
        }
      })
      try {
        await pipeline(Readable.fromWeb(response.body as never), counting)
      } catch (err) {
        if (isCode(err, 'EPIPE')) return // the reader went away (cat | head): not an error
        throw cutShort(cid, written, expected, err)
      }
      if (written !== expected) throw cutShort(cid, written, expected)
    })

  program.command('fetch')
    .description('download a file from every peer that holds it at once, verify every block, write it to PATH (default ./CID); an interrupted fetch resumes')
    .argument('<cid>', 'CID of the file', cidArgument)
    .option('-o, --output <path>', 'where to write (a folder puts it inside as CID)')
    .option('--force', 'overwrite PATH if it exists')
    .option('--timeout <seconds>', 'give up when no block has arrived for this long', intOption('--timeout', 1, 86_400), 60)
    .action(async (cid: string, opts: { output?: string, force?: boolean, timeout: number }, command: Command) => {
      const g = globals(command)
      const target = await outputPath(opts.output, cid, opts.force === true)
      const client = await ApiClient.fromRepo(g.repo)
      const bar = showProgress(g) ? new FetchProgressBar(await progressBar(FetchProgressBar.format)) : undefined
      let fetched
      try {
        fetched = await client.fetch(cid, {
          path: target,
          force: opts.force === true,
          timeoutSeconds: opts.timeout,
          onProgress: bar != null ? p => { bar.update(p) } : undefined
        })
      } finally {
        bar?.stop()
      }
      const rate = fetched.seconds > 0 ? (fetched.size / 2 ** 20) / fetched.seconds : 0
      output(g, { ...fetched, path: target, seconds: round(fetched.seconds), mibPerSecond: round(rate) },
        r => [
          Object.keys(r.peers).length === 0
            ? `wrote ${r.path} (${formatBytes(r.size)}) in ${r.seconds} s from what this peer already held: nothing downloaded`
            : `wrote ${r.path} (${formatBytes(r.size)}) in ${r.seconds} s, ${r.mibPerSecond} MiB/s, from ${Object.keys(r.peers).length} peer${Object.keys(r.peers).length === 1 ? '' : 's'}`,
          ...Object.entries(r.peers).sort((a, b) => b[1] - a[1]).map(([peer, bytes]) => `  ${formatBytes(bytes).padStart(10)} from ${peer}`),
          ...(r.local > 0 ? [`  ${r.local} block${r.local === 1 ? ' was' : 's were'} already here`] : [])
        ].join('\n'))
    })

  program.command('get')
    .description('write a file held by this peer to PATH (default ./CID), verifying every block')
    .argument('<cid>', 'CID of the file', cidArgument)
    .option('-o, --output <path>', 'where to write (a folder puts it inside as CID)')
    .option('--force', 'overwrite PATH if it exists')
    .action(async (cid: string, opts: { output?: string, force?: boolean }, command: Command) => {
      const g = globals(command)
      const target = await outputPath(opts.output, cid, opts.force === true)
      const client = await ApiClient.fromRepo(g.repo)
      const started = performance.now()
      const response = await client.read(cid, { local: true })
      const expected = Number(response.headers.get('content-length'))
      const size = await writeAtomically(target, Readable.fromWeb(response.body as never), expected, cid)
      const seconds = (performance.now() - started) / 1000
      output(g, { cid, path: target, size, seconds: round(seconds) },
        r => `wrote ${r.path} (${formatBytes(r.size)}) in ${r.seconds} s`)
    })
}

/** Resolves -o: default ./CID, a folder means inside it; refuses to overwrite. */
async function outputPath (given: string | undefined, cid: string, force: boolean): Promise<string> {
  let target = path.resolve(given ?? cid)
  const stat = await fs.stat(target).catch((err: unknown) => {
    if (isCode(err, 'ENOENT')) return undefined
    if (isCode(err, 'ENOTDIR')) throw new InvalidPathError(`cannot write ${target}: a parent is not a folder`)
    throw err
  })
  if (stat?.isDirectory() === true) {
    target = path.join(target, cid)
    if (await fs.access(target).then(() => true, () => false) && !force) {
      throw new OutputExistsError(`${target} already exists (use --force to overwrite)`)
    }
  } else if (stat != null && !force) {
    throw new OutputExistsError(`${target} already exists (use --force to overwrite)`)
  }
  const parent = await fs.stat(path.dirname(target)).catch(() => undefined)
  if (parent?.isDirectory() !== true) throw new InvalidPathError(`cannot write ${target}: folder ${path.dirname(target)} does not exist`)
  return target
}

/** Streams into a temp file beside `target`, fsyncs, renames; cleans up on failure. */
async function writeAtomically (target: string, source: Readable, expected: number, cid: string): Promise<number> {
  const tmp = path.join(path.dirname(target), `.${path.basename(target)}.${randomBytes(4).toString('hex')}.part`)
  let handle: fs.FileHandle
  try {
    handle = await fs.open(tmp, 'wx', 0o644)
  } catch (err) {
    throw new InvalidPathError(`cannot write in ${path.dirname(target)}: ${(err as Error).message}`)
  }
  let written = 0
  try {
    try {
      for await (const piece of source) {
        await handle.write(piece as Buffer)
        written += (piece as Buffer).length
      }
    } catch (err) {
      if (isCode(err, 'ENOSPC')) throw new ShoalError(`disk full while writing ${target}`)
      throw cutShort(cid, written, expected, err)
    }
    if (written !== expected) throw cutShort(cid, written, expected)
    await handle.sync()
    await handle.close()
    await fs.rename(tmp, target)
    return written
  } catch (err) {
    // the write's error is the one to report; the temp file goes either way
    await handle.close().catch(() => {})
    await fs.rm(tmp, { force: true })
    throw err
  }
}

function cutShort (cid: string, written: number, expected: number, cause?: unknown): ShoalError {
  const why = cause != null ? ` (${(cause as Error).message})` : ''
  return new ShoalError(`the daemon stopped sending ${cid} after ${written} of ${expected} bytes${why}; a block may be corrupt: run "shoal verify"`)
}

function round (n: number): number {
  return Math.round(n * 1000) / 1000
}

/** Blocks, bytes, peers in use, rate and time left of a fetch, on stderr. */
class FetchProgressBar {
  static readonly format = ' fetching [{bar}] {percentage}% | {blocks} blocks | {amount} | {peers} peers | {rate}/s | ETA {left}'
  private readonly bar: SingleBar
  private started = false

  constructor (bar: SingleBar) {
    this.bar = bar
  }

  update (p: FetchProgress): void {
    const values = {
      blocks: `${p.blocks}/${p.totalBlocks}`,
      amount: `${formatBytes(p.bytes)} of ${formatBytes(p.size)}`,
      peers: p.peers,
      rate: formatBytes(p.rate),
      left: p.eta != null ? `${p.eta} s` : '?'
    }
    if (!this.started) {
      this.started = true
      this.bar.start(Math.max(1, p.size), p.bytes, values)
    }
    this.bar.setTotal(Math.max(1, p.size))
    this.bar.update(p.bytes, values)
  }

  stop (): void {
    if (this.started) this.bar.stop()
  }
}
