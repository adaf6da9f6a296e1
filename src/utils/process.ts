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
