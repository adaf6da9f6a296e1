/**
 * A readers-writer lock for async work: many shared holders at once, or one
 * exclusive holder. Writers are not starved: once one waits, new readers
 * queue behind it.
 */
export class RwLock {
  private readers = 0
  private writer = false
  private readonly queue: Array<{ exclusive: boolean, grant: () => void }> = []

  async shared<T> (fn: () => Promise<T>): Promise<T> {
    await this.acquire(false)
    try { return await fn() } finally { this.release(false) }
  }

  async exclusive<T> (fn: () => Promise<T>): Promise<T> {
    await this.acquire(true)
    try { return await fn() } finally { this.release(true) }
  }

  private async acquire (exclusive: boolean): Promise<void> {
    if (this.queue.length === 0 && this.canGrant(exclusive)) {
      this.take(exclusive)
      return
    }
    await new Promise<void>(resolve => { this.queue.push({ exclusive, grant: resolve }) })
  }

  private canGrant (exclusive: boolean): boolean {
    return exclusive ? !this.writer && this.readers === 0 : !this.writer
  }

  private take (exclusive: boolean): void {
    if (exclusive) this.writer = true
    else this.readers++
  }

  private release (exclusive: boolean): void {
    if (exclusive) this.writer = false
    else this.readers--
    while (this.queue.length > 0 && this.canGrant(this.queue[0].exclusive)) {
      const next = this.queue.shift()!
      this.take(next.exclusive)
      next.grant()
      if (next.exclusive) break
    }
  }
}
