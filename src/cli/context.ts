/**
 * What every command gets: the global options resolved, and output helpers
 * that respect --json (one JSON document on stdout) and keep progress on
 * stderr, only on a TTY.
 */
import type { SingleBar } from 'cli-progress'
import type { Command } from 'commander'
import { resolveRepoPath } from '../peer/repo-path.ts'

export interface GlobalOptions {
  repo: string
  json: boolean
}

export function globals (command: Command): GlobalOptions {
  const opts = command.optsWithGlobals<{ repo?: string, json?: boolean }>()
  return { repo: resolveRepoPath(opts.repo), json: opts.json === true }
}

/** Prints `value` as JSON with --json, else the text from `text`. */
export function output<T> (g: GlobalOptions, value: T, text: (value: T) => string): void {
  if (g.json) {
    process.stdout.write(JSON.stringify(value, null, 2) + '\n')
  } else {
    const out = text(value)
    if (out !== '') process.stdout.write(out.endsWith('\n') ? out : out + '\n')
  }
}

export function showProgress (g: GlobalOptions): boolean {
  return process.stderr.isTTY === true && !g.json
}

/**
 * A progress bar on stderr with `format`. cli-progress is loaded here, on a
 * TTY only: commands whose output is not a terminal never pay for it.
 */
export async function progressBar (format: string): Promise<SingleBar> {
  const { default: cliProgress } = await import('cli-progress')
  return new cliProgress.SingleBar({ format, stream: process.stderr, hideCursor: true }, cliProgress.Presets.shades_classic)
}
