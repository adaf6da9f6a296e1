/**
 * CPU time and RSS of a swarm's daemon processes (Linux /proc), for the
 * benchmarks that report them per peer (bench/scale.ts, bench/overlay.ts).
 */
import { execFileSync } from 'node:child_process'
import fs from 'node:fs/promises'

const ticksPerSecond = ((): number => {
  try {
    return Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100
  } catch {
    return 100
  }
})()

/** CPU seconds (user + system) a process has used, and its RSS in bytes (Linux /proc). */
async function processUsage (pid: number): Promise<{ cpuSeconds: number, rssBytes: number }> {
  const stat = await fs.readFile(`/proc/${pid}/stat`, 'utf8')
  // fields after the command name, which is in parentheses and may hold spaces
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
  const cpuSeconds = (Number(fields[11]) + Number(fields[12])) / ticksPerSecond
  const status = await fs.readFile(`/proc/${pid}/status`, 'utf8')
  const rssKiB = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0)
  return { cpuSeconds, rssBytes: rssKiB * 1024 }
}

export async function usageOf (pids: number[]): Promise<{ cpuSeconds: number, rssBytes: number }> {
  const all = await Promise.all(pids.map(processUsage))
  return { cpuSeconds: all.reduce((a, u) => a + u.cpuSeconds, 0), rssBytes: all.reduce((a, u) => a + u.rssBytes, 0) }
}
