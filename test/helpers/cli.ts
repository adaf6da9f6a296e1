import { execFile, spawn, type ChildProcess } from 'node:child_process'
import fs from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'

export const BIN = fileURLToPath(new URL('../../bin/shoal.mjs', import.meta.url))

export interface CliResult {
  code: number
  stdout: string
  stderr: string
}

/** Runs `shoal ARGS` as a real process with this Node (26). */
export async function runCli (args: string[], options: { env?: NodeJS.ProcessEnv, timeoutMs?: number } = {}): Promise<CliResult> {
  return new Promise(resolve => {
    execFile(process.execPath, [BIN, ...args], {
      env: { ...process.env, ...options.env },
      timeout: options.timeoutMs ?? 120_000
    }, (err, stdout, stderr) => {
      const code = err == null ? 0 : typeof (err as { code?: unknown }).code === 'number' ? (err as { code: number }).code : 1
      resolve({ code, stdout, stderr })
    })
  })
}

/** Like runCli, with stdin given, stdout as raw bytes and no size limit (cat of a big file). */
export async function runCliBytes (args: string[], stdin?: Uint8Array): Promise<{ code: number, stdout: Buffer, stderr: string }> {
  const child = spawn(process.execPath, [BIN, ...args], { stdio: [stdin != null ? 'pipe' : 'ignore', 'pipe', 'pipe'] })
  child.stdin?.end(stdin)
  const out: Buffer[] = []
  let stderr = ''
  child.stdout!.on('data', (d: Buffer) => { out.push(d) })
  child.stderr!.on('data', (d: Buffer) => { stderr += d.toString() })
  const code = await new Promise<number>(resolve => child.on('close', c => { resolve(c ?? 1) }))
  return { code, stdout: Buffer.concat(out), stderr }
}

export interface DaemonProcess {
  child: ChildProcess
  output: () => string
  exited: Promise<number | null>
}

/** Starts `shoal daemon` and resolves once it prints that it is ready (or exits). */
export async function startDaemon (args: string[]): Promise<DaemonProcess> {
  const child = spawn(process.execPath, [BIN, 'daemon', ...args], { stdio: ['ignore', 'pipe', 'pipe'] })
  let out = ''
  child.stdout.on('data', (d: Buffer) => { out += d.toString() })
  child.stderr.on('data', (d: Buffer) => { out += d.toString() })
  const exited = new Promise<number | null>(resolve => child.on('exit', code => { resolve(code) }))
  await Promise.race([
    exited,
    new Promise<void>(resolve => {
      const check = (): void => { if (out.includes('daemon is ready')) resolve(); else setTimeout(check, 25) }
      check()
    })
  ])
  return { child, output: () => out, exited }
}

export async function tempDir (prefix = 'shoal-test-'): Promise<string> {
  return fs.mkdtemp(path.join(os.tmpdir(), prefix))
}

export { isProcessAlive as isAlive } from '../../src/utils/process.ts'
