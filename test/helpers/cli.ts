import assert from 'node:assert/strict'
import { execFile, spawn, type ChildProcess } from 'node:child_process'
import fs from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'

export const BIN = fileURLToPath(new URL('../../bin/shoal.mjs', import.meta.url))

/** How a process ended: its exit code, or (code null) the signal that killed it. */
export interface Exit {
  code: number | null
  signal: NodeJS.Signals | null
}

export interface CliResult extends Exit {
  stdout: string
  stderr: string
}

/**
 * Asserts the process exited by itself with `code`: a crash (killed by a
 * signal) or a hang (killed by the timeout) is never taken for an exit code.
 */
export function assertExit (result: Exit & { stderr?: string }, code: number, message?: string): void {
  assert.deepEqual({ code: result.code, signal: result.signal }, { code, signal: null },
    `${message != null ? `${message}: ` : ''}expected exit ${code}${result.stderr != null ? `\nstderr: ${result.stderr}` : ''}`)
}

/** Runs `shoal ARGS` as a real process with this Node (26); a run past timeoutMs is killed (signal SIGTERM). */
export async function runCli (args: string[], options: { env?: NodeJS.ProcessEnv, timeoutMs?: number } = {}): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    execFile(process.execPath, [BIN, ...args], {
      env: { ...process.env, ...options.env },
      timeout: options.timeoutMs ?? 120_000,
      maxBuffer: 64 * 1024 * 1024
    }, (err, stdout, stderr) => {
      if (err == null) { resolve({ code: 0, signal: null, stdout, stderr }); return }
      const e = err as { code?: unknown, signal?: NodeJS.Signals | null }
      if (typeof e.code !== 'number' && e.signal == null) { reject(err); return } // not an exit: a spawn failure
      resolve({ code: typeof e.code === 'number' ? e.code : null, signal: e.signal ?? null, stdout, stderr })
    })
  })
}

/** Like runCli, with stdin given, stdout as raw bytes and no size limit (cat of a big file). */
export async function runCliBytes (args: string[], stdin?: Uint8Array): Promise<Exit & { stdout: Buffer, stderr: string }> {
  const child = spawn(process.execPath, [BIN, ...args], { stdio: [stdin != null ? 'pipe' : 'ignore', 'pipe', 'pipe'] })
  child.stdin?.end(stdin)
  const out: Buffer[] = []
  let stderr = ''
  child.stdout!.on('data', (d: Buffer) => { out.push(d) })
  child.stderr!.on('data', (d: Buffer) => { stderr += d.toString() })
  const exit = await new Promise<Exit>(resolve => child.on('close', (code, signal) => { resolve({ code, signal }) }))
  return { ...exit, stdout: Buffer.concat(out), stderr }
}

export interface DaemonProcess {
  child: ChildProcess
  output: () => string
  /** Resolves when the daemon process has exited. */
  exited: Promise<Exit>
}

const DAEMON_READY_TIMEOUT_MS = 60_000

/**
 * Starts `shoal daemon` and resolves once it prints that it is ready;
 * rejects (with everything it printed) if it exits first or is not ready
 * within timeoutMs (the process is then killed).
 */
export async function startDaemon (args: string[], options: { timeoutMs?: number } = {}): Promise<DaemonProcess> {
  const child = spawn(process.execPath, [BIN, 'daemon', ...args], { stdio: ['ignore', 'pipe', 'pipe'] })
  let out = ''
  const ready = Promise.withResolvers<void>()
  const onData = (d: Buffer): void => {
    out += d.toString()
    if (out.includes('daemon is ready')) ready.resolve()
  }
  child.stdout.on('data', onData)
  child.stderr.on('data', onData)
  const exited = new Promise<Exit>(resolve => child.on('exit', (code, signal) => { resolve({ code, signal }) }))
  const timeoutMs = options.timeoutMs ?? DAEMON_READY_TIMEOUT_MS
  let timer: NodeJS.Timeout | undefined
  try {
    await Promise.race([
      ready.promise,
      exited.then(exit => { throw new Error(`the daemon exited (code ${exit.code}, signal ${exit.signal}) before it was ready:\n${out}`) }),
      new Promise<never>((_resolve, reject) => {
        timer = setTimeout(() => { reject(new Error(`the daemon was not ready within ${timeoutMs} ms:\n${out}`)) }, timeoutMs)
      })
    ])
  } catch (err) {
    child.kill('SIGKILL')
    await exited
    throw err
  } finally {
    clearTimeout(timer)
  }
  return { child, output: () => out, exited }
}

export async function tempDir (prefix = 'shoal-test-'): Promise<string> {
  return fs.mkdtemp(path.join(os.tmpdir(), prefix))
}

export { isProcessAlive as isAlive } from '../../src/utils/process.ts'
