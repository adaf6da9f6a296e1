import { readFileSync } from 'node:fs'

/**
 * Is a process with this pid running? A zombie (exited, not yet reaped by
 * its parent, as detached daemons are once their starter has gone) is not.
 */
export function isProcessAlive (pid: number): boolean {
  try {
    process.kill(pid, 0)
  } catch (err) {
    // EPERM: it exists but belongs to someone else
    if ((err as { code?: string }).code !== 'EPERM') return false
  }
  try {
    return !/^\d+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, 'utf8'))
  } catch {
    return true
  }
}

/**
 * This process's limit on open files (the soft limit, which the processes
 * it spawns inherit), or undefined where /proc does not say.
 */
export function openFileLimit (): number | undefined {
  try {
    const line = readFileSync('/proc/self/limits', 'utf8').split('\n').find(l => l.startsWith('Max open files'))
    const soft = line?.split(/\s{2,}/)[1]
    const n = Number(soft)
    return Number.isInteger(n) && n > 0 ? n : undefined
  } catch {
    return undefined
  }
}
