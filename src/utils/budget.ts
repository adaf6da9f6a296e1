/**
 * A counting semaphore with weights: at most `capacity` units taken at once,
 * granted in arrival order (a large request is not starved by small ones).
 * A request larger than the capacity is granted when nothing else is taken,
 * so it cannot wait forever.
 */
export class Budget {
  readonly capacity: number
  private taken = 0
  private readonly queue: Array<{ units: number, grant: () => void }> = []

  constructor (capacity: number) {
    this.capacity = capacity
  }

  get inUse (): number {
    return this.taken
  }

  async acquire (units: number): Promise<void> {
    if (this.queue.length === 0 && this.fits(units)) {
      this.taken += units
      return
    }
    await new Promise<void>(resolve => { this.queue.push({ units, grant: resolve }) })
  }

  release (units: number): void {
    this.taken -= units
    while (this.queue.length > 0 && this.fits(this.queue[0].units)) {
      const next = this.queue.shift()!
      this.taken += next.units
      next.grant()
    }
  }

  /** Runs `fn` holding `units`. */
  async run<T> (units: number, fn: () => Promise<T>): Promise<T> {
    await this.acquire(units)
    try { return await fn() } finally { this.release(units) }
  }

  private fits (units: number): boolean {
    return this.taken === 0 || this.taken + units <= this.capacity
  }
}
