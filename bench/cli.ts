/**
 * Client-command latency: how long a user waits for a command that talks to
 * a running daemon, run as the README tells users to run it (`shoal`, the
 * linked bin/shoal), beside the other ways to start it (`npx shoal`, and
 * `shoal --version`, which starts the CLI and talks to no one). Wall time
 * of the whole process, measured from here; each command is run once
 * unmeasured first (Node's compile cache, the page cache), then
 * SHOAL_BENCH_CLI_RUNS times (default 15): median and p90. Goal
 * (PRODUCT.md): `shoal status` <= 0.2 s.
 */
import { spawn, spawnSync } from 'node:child_process'
import fs from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { median, round } from './stats.ts'

const SHOAL = fileURLToPath(new URL('../bin/shoal', import.meta.url))
const ROOT = fileURLToPath(new URL('../', import.meta.url))
const STATUS_GOAL_S = 0.2

export interface CliRow {
  command: string
  runs: number
  medianS: number
  p90S: number
  goalS?: number
}

export interface CliBenchResult {
  rows: CliRow[]
}

export async function benchCli (log: (s: string) => void): Promise<CliBenchResult> {
  const runs = Number(process.env.SHOAL_BENCH_CLI_RUNS ?? 15)
  const repo = await fs.mkdtemp(path.join(os.tmpdir(), 'shoal-bench-cli-'))
  const env = { ...process.env, SHOAL_REPO: repo, npm_config_update_notifier: 'false' }
  mustSucceed(spawnSync(SHOAL, ['init'], { env }), 'shoal init')
  const daemon = spawn(SHOAL, ['daemon', '--listen', '/ip4/127.0.0.1/tcp/0', '--api', '127.0.0.1:0'], { env, stdio: ['ignore', 'pipe', 'pipe'] })
  try {
    await untilReady(daemon)
    const cases: Array<{ command: string, file: string, args: string[], goalS?: number, runs: number }> = [
      { command: 'shoal status', file: SHOAL, args: ['status'], goalS: STATUS_GOAL_S, runs },
      { command: 'shoal --version', file: SHOAL, args: ['--version'], runs },
      { command: 'npx shoal status', file: 'npx', args: ['shoal', 'status'], runs: Math.min(runs, 5) }
    ]
    const rows: CliRow[] = []
    for (const c of cases) {
      const time = (): number => {
        const started = performance.now()
        mustSucceed(spawnSync(c.file, c.args, { env, cwd: ROOT }), c.command)
        return (performance.now() - started) / 1000
      }
      time() // warm: compile cache, page cache
      const seconds = Array.from({ length: c.runs }, time).sort((a, b) => a - b)
      const row: CliRow = { command: c.command, runs: c.runs, medianS: round(median(seconds), 3), p90S: round(seconds[Math.min(seconds.length - 1, Math.floor(seconds.length * 0.9))], 3), goalS: c.goalS }
      rows.push(row)
      log(`  ${c.command}: median ${row.medianS} s, p90 ${row.p90S} s${c.goalS != null ? ` (goal <= ${c.goalS} s)` : ''}`)
    }
    return { rows }
  } finally {
    daemon.kill('SIGTERM')
    await new Promise(resolve => daemon.once('exit', resolve))
    await fs.rm(repo, { recursive: true, force: true })
  }
}

export function renderCli (r: CliBenchResult): string[] {
  return [
    '### Client commands (wall time of the whole process against a running daemon)',
    '',
    '| command | runs | median (s) | p90 (s) | goal (s) | median / goal |',
    '| --- | ---: | ---: | ---: | ---: | ---: |',
    ...r.rows.map(x => `| \`${x.command}\` | ${x.runs} | ${x.medianS} | ${x.p90S} | ${x.goalS ?? ''} | ${x.goalS != null ? round(x.medianS / x.goalS, 2) : ''} |`)
  ]
}

function mustSucceed (r: ReturnType<typeof spawnSync>, what: string): void {
  if (r.status !== 0) throw new Error(`${what} exited ${r.status ?? r.signal}: ${String(r.stderr)}`)
}

async function untilReady (daemon: ReturnType<typeof spawn>): Promise<void> {
  let out = ''
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => { reject(new Error(`the daemon did not get ready in 60 s:\n${out}`)) }, 60_000)
    const onData = (d: Buffer): void => {
      out += d.toString()
      if (out.includes('daemon is ready')) { clearTimeout(timer); resolve() }
    }
    daemon.stdout?.on('data', onData)
    daemon.stderr?.on('data', onData)
    daemon.once('exit', code => { clearTimeout(timer); reject(new Error(`the daemon exited (${code}):\n${out}`)) })
  })
}
