/**
 * The finger table: finger i is the successor of self + 2^i, for i = 0..255.
 * In a ring of N peers only about log2 N of the 256 are distinct (the low
 * ones all point at the first successor), so the table is held as runs:
 * `runs[j]` covers indices runs[j].index up to the next run's index - 1,
 * and adjacent runs never repeat a peer. `peer` is undefined for a run of
 * fingers not known yet.
 */
import { RING_BITS } from './constants.ts'

interface Run {
  index: number
  peer: string | undefined
}

export class FingerTable {
  private runs: Run[] = [{ index: 0, peer: undefined }]

  get (index: number): string | undefined {
    checkIndex(index)
    let found: string | undefined
    for (const run of this.runs) {
      if (run.index > index) break
      found = run.peer
    }
    return found
  }

  /** Sets fingers from..to (inclusive) to `peer`. */
  setRange (from: number, to: number, peer: string): void {
    checkIndex(from)
    checkIndex(to)
    const all = this.expand()
    for (let i = from; i <= to; i++) all[i] = peer
    this.compress(all)
  }

  /** Changes any fingers at once, on the table laid out as 256 entries. */
  edit (change: (fingers: Array<string | undefined>) => void): void {
    const all = this.expand()
    change(all)
    this.compress(all)
  }

  /**
   * Drops a peer found dead. A finger past it keeps working as its
   * stand-in: it lies at or after every start the dead one covered, so
   * routing through it stays correct until fix-fingers finds the true one.
   */
  remove (peer: string): boolean {
    const all = this.expand()
    let changed = false
    for (let i = RING_BITS - 1; i >= 0; i--) {
      if (all[i] !== peer) continue
      all[i] = i + 1 < RING_BITS ? all[i + 1] : undefined
      changed = true
    }
    if (changed) this.compress(all)
    return changed
  }

  clear (): void {
    this.runs = [{ index: 0, peer: undefined }]
  }

  /** The known fingers, one entry per run: the lowest index pointing at each peer there. */
  distinct (): Array<{ index: number, peerId: string }> {
    return this.runs.filter(run => run.peer != null).map(run => ({ index: run.index, peerId: run.peer as string }))
  }

  peers (): Set<string> {
    return new Set(this.distinct().map(f => f.peerId))
  }

  private expand (): Array<string | undefined> {
    const all = new Array<string | undefined>(RING_BITS)
    this.runs.forEach((run, j) => {
      const end = j + 1 < this.runs.length ? this.runs[j + 1].index : RING_BITS
      for (let i = run.index; i < end; i++) all[i] = run.peer
    })
    return all
  }

  private compress (all: Array<string | undefined>): void {
    const runs: Run[] = []
    for (let i = 0; i < RING_BITS; i++) {
      if (runs.length === 0 || runs[runs.length - 1].peer !== all[i]) runs.push({ index: i, peer: all[i] })
    }
    this.runs = runs
  }
}

function checkIndex (index: number): void {
  if (!Number.isInteger(index) || index < 0 || index >= RING_BITS) throw new RangeError(`finger index ${index} outside 0..${RING_BITS - 1}`)
}
