/**
 * A maintenance task on a jittered timer: each run is followed by a wait of
 * 0.5-1.5x the interval (peers started together drift apart instead of
 * stabilizing in lockstep), or a quarter of that when the run reports that
 * it changed something (a ring in motion settles in fewer intervals; a
 * settled one costs no more). Runs never overlap; `runNow` brings the next
 * run forward (or queues one right after the run in progress).
 */
import type { AbortOptions, Logger } from '@libp2p/interface'

export class PeriodicTask {
  private readonly name: string
  private readonly intervalMs: number
  private readonly task: (options: AbortOptions) => Promise<boolean | void>
  private readonly log: Logger
  private timer: ReturnType<typeof setTimeout> | undefined
  private running = false
  private again = false
  private signal: AbortSignal | undefined

  /** `task` resolves true when it changed something. */
  constructor (name: string, intervalMs: number, task: (options: AbortOptions) => Promise<boolean | void>, log: Logger) {
    this.name = name
    this.intervalMs = intervalMs
    this.task = task
    this.log = log
  }

  /** Starts the timer; the task gets `signal`, which ends its run when the owner stops. */
  start (signal: AbortSignal): void {
    this.signal = signal
    this.arm()
  }

  stop (): void {
    clearTimeout(this.timer)
    this.timer = undefined
    this.signal = undefined
    this.again = false
  }

  runNow (): void {
    if (this.signal == null) return
    if (this.running) { this.again = true; return }
    clearTimeout(this.timer)
    void this.run()
  }

  private arm (delayMs = this.intervalMs * (0.5 + Math.random()), soon = false): void {
    if (soon) delayMs /= 4
    if (this.signal == null || this.signal.aborted) return
    clearTimeout(this.timer)
    this.timer = setTimeout(() => { void this.run() }, delayMs)
    this.timer.unref?.()
  }

  private async run (): Promise<void> {
    const signal = this.signal
    if (signal == null || signal.aborted) return
    this.running = true
    let changed = false
    try {
      changed = (await this.task({ signal })) === true
    } catch (err) {
      if (!signal.aborted) this.log('%s failed: %s', this.name, (err as Error).message)
    } finally {
      this.running = false
    }
    if (this.again) {
      this.again = false
      this.arm(0)
    } else {
      this.arm(undefined, changed)
    }
  }
}
