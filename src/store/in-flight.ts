/**
 * Blocks of the imports and downloads in progress, which GC must not sweep
 * although no holding reaches them yet: each operation has its own set of
 * block keys (cidKey), from the moment it writes or counts on a block until
 * it ends (its holding recorded, or given up).
 */
export class InFlight {
  private readonly sets = new Set<Set<string>>()

  /** A new operation's set: add the key of every block it writes or counts on. */
  open (): Set<string> {
    const keys = new Set<string>()
    this.sets.add(keys)
    return keys
  }

  /** The operation ended: its blocks are GC's to judge again. */
  close (keys: Set<string>): void {
    this.sets.delete(keys)
  }

  has (key: string): boolean {
    for (const keys of this.sets) if (keys.has(key)) return true
    return false
  }
}
