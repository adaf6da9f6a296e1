/**
 * The clock of one download: when it reached its steps (reported with the
 * result) and when it last moved (the stall timeout reads it).
 */

/**
 * Milliseconds from the start of the job: layout resolved, first source
 * found, first and last block stored; and `cpuMs`, the CPU time of this
 * daemon's process (every thread) while the job ran, whatever else it did
 * meanwhile (serving others counts too).
 */
export interface FetchTimings {
  layoutMs: number
  firstSourceMs?: number
  firstBlockMs?: number
  lastBlockMs?: number
  cpuMs?: number
}

export class FetchClock {
  readonly timings: FetchTimings = { layoutMs: 0 }
  /** When the download last moved (performance.now()): a block written, a DAG node fetched, a kept leaf re-hashed. */
  lastProgressAt = performance.now()
  private readonly startedAt = performance.now()
  private readonly cpuAtStart = process.cpuUsage()

  /** Progress, not a stall. */
  moved (): void {
    this.lastProgressAt = performance.now()
  }

  layoutResolved (): void {
    this.moved()
    this.timings.layoutMs = Math.round(this.lastProgressAt - this.startedAt)
  }

  sourceFound (): void {
    this.timings.firstSourceMs ??= Math.round(performance.now() - this.startedAt)
  }

  blockWritten (): void {
    this.moved()
    this.timings.firstBlockMs ??= Math.round(this.lastProgressAt - this.startedAt)
    this.timings.lastBlockMs = Math.round(this.lastProgressAt - this.startedAt)
  }

  /** The timings, with the CPU time spent since the start. */
  finish (): FetchTimings {
    const cpu = process.cpuUsage(this.cpuAtStart)
    this.timings.cpuMs = Math.round((cpu.user + cpu.system) / 1000)
    return this.timings
  }
}
