/**
 * Runs iproute2's `ip` and `tc`, the only tools the lab uses to build and
 * change its network. Many changes go in one process as a batch (`-batch -`
 * reads one command per line from stdin): a 100-host lab is a few hundred
 * commands, and a process each would cost seconds.
 */
import { execFile } from 'node:child_process'
import { LabCommandError } from './errors.ts'

export interface RunOptions {
  /** Run inside this network namespace (`ip -n NS` / `tc -n NS`). */
  netns?: string
  /** Go on after a failing line of a batch (`-force`), e.g. when deleting what may be gone already. */
  force?: boolean
  signal?: AbortSignal
}

/** `ip ARGS` or `tc ARGS`; resolves with stdout, rejects with the tool's own error line. */
export async function run (tool: 'ip' | 'tc', args: string[], options: RunOptions = {}): Promise<string> {
  const full = [...(options.netns != null ? ['-n', options.netns] : []), ...args]
  return exec(tool, full, undefined, options.signal)
}

/** Several commands of one tool in one process, one per line (each without the tool's name). */
export async function batch (tool: 'ip' | 'tc', lines: string[], options: RunOptions = {}): Promise<string> {
  if (lines.length === 0) return ''
  const full = [...(options.force === true ? ['-force'] : []), ...(options.netns != null ? ['-n', options.netns] : []), '-batch', '-']
  return exec(tool, full, lines.join('\n') + '\n', options.signal)
}

async function exec (tool: string, args: string[], input: string | undefined, signal?: AbortSignal): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = execFile(tool, args, { signal, maxBuffer: 16 * 1024 * 1024 }, (err, stdout, stderr) => {
      if (err == null) {
        resolve(stdout)
        return
      }
      if ((err as { code?: unknown }).code === 'ENOENT') {
        reject(new LabCommandError(`the lab needs the "${tool}" command (iproute2), which is not installed`))
        return
      }
      const why = stderr.trim().split('\n').filter(l => l !== '').slice(0, 3).join('; ') || err.message
      reject(new LabCommandError(`${tool} ${args.join(' ')} failed: ${why}`))
    })
    // a tool that exits early (a bad first line) closes its stdin: its error says why
    child.stdin?.on('error', () => {})
    if (input != null) child.stdin?.end(input)
  })
}
