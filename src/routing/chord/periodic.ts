/**
 * A maintenance task on an adaptive, jittered timer. Each run is followed
 * by a wait of 0.5-1.5x the current interval (peers started together drift
 * apart instead of stabilizing in lockstep). The current interval starts at
 * the base interval and doubles after every run that changed nothing, up to
 * `maxBackoff` times the base: a settled ring costs little. A run that
 * changed something brings it back to the base and the next run comes at a
 * quarter of that (a ring in motion settles in fewer intervals); so does
 * `wake` (the owner saw a failure or a peer go), without running at once,
 * or `wake(false)` back to the base interval only (the owner saw a change). Runs never overlap; `runNow` brings the next run forward (or
 * queues one right after the run in progress). A paused task runs nothing
 * until it is resumed.
 */
import type { AbortOptions, Logger } from '@libp2p/interface'

export class PeriodicTask {
  private readonly name: string
  private readonly intervalMs: number
  private readonly maxIntervalMs: number
  private readonly task: (options: AbortOptions) => Promise<boolean | void>
  private readonly log: Logger
  private timer: ReturnType<typeof setTimeout> | undefined
  /** When the armed timer fires (performance.now()). */
  private due = Infinity
  private currentMs: number
  private running = false
  private again = false
  private paused = false
  private signal: AbortSignal | undefined

  /** `task` resolves true when it changed something; `maxBackoff` >= 1 (1: a fixed interval). */
  constructor (name: string, intervalMs: number, task: (options: AbortOptions) => Promise<boolean | void>, log: Logger, maxBackoff = 1) {
    this.name = name
    this.intervalMs = intervalMs
    this.maxIntervalMs = intervalMs * Math.max(1, maxBackoff)
    this.currentMs = intervalMs
    this.task = task
    this.log = log
  }

  /** The interval the next wait is drawn around (ms). */
  get currentIntervalMs (): number { return this.currentMs }

  /** Starts the timer; the task gets `signal`, which ends its run when the owner stops. */
  start (signal: AbortSignal): void {
    this.signal = signal
    this.currentMs = this.intervalMs
    this.arm()
  }

  stop (): void {
    clearTimeout(this.timer)
    this.timer = undefined
    this.due = Infinity
    this.signal = undefined
    this.again = false
  }

  /** Paused: the timer is off and `runNow`/`wake` do nothing; resumed: back at the base interval. */
  setPaused (paused: boolean): void {
    if (paused === this.paused) return
    this.paused = paused
    if (paused) {
      clearTimeout(this.timer)
      this.timer = undefined
      this.due = Infinity
      return
    }
    this.currentMs = this.intervalMs
    if (!this.running) this.arm()
  }

  runNow (): void {
    if (this.signal == null || this.paused) return
    if (this.running) { this.again = true; return }
    clearTimeout(this.timer)
    void this.run()
  }

  /**
   * Back to the base interval. `soon`: the next run within a quarter of it;
   * else within the base interval (jittered), unless one is due sooner.
   */
  wake (soon = true): void {
    if (this.signal == null || this.paused) return
    this.currentMs = this.intervalMs
    if (this.running) return
    const delayMs = this.intervalMs * (0.5 + Math.random()) / (soon ? 4 : 1)
    if (this.due - performance.now() > delayMs) this.arm(delayMs)
  }

  private arm (delayMs = this.currentMs * (0.5 + Math.random())): void {
    if (this.signal == null || this.signal.aborted || this.paused) return
    clearTimeout(this.timer)
    this.due = performance.now() + delayMs
    this.timer = setTimeout(() => { void this.run() }, delayMs)
    this.timer.unref?.()
  }

  private async run (): Promise<void> {
    const signal = this.signal
    this.timer = undefined
    this.due = Infinity
    if (signal == null || signal.aborted || this.paused) return
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
    } else if (changed) {
      this.currentMs = this.intervalMs
      this.arm(this.intervalMs * (0.5 + Math.random()) / 4)
    } else {
      const delayMs = this.currentMs * (0.5 + Math.random())
      this.currentMs = Math.min(this.currentMs * 2, this.maxIntervalMs)
      this.arm(delayMs)
    }
  }
}
