/**
 * A placement's copies on their way to one peer (place-stream.ts): the
 * queue its store session takes them from, and the copy itself, whose
 * block bytes are let go once every copy of the block is answered or
 * given up.
 */
import type { PutItem } from './store-client.ts'

/** One copy of a block for one peer, as its session offers it. */
export interface Copy extends PutItem {
  index: number
  /** Answered, or given up: the block's bytes are let go once every copy is. */
  settled: boolean
  release: () => void
}

export function settle (copy: Copy): void {
  if (copy.settled) return
  copy.settled = true
  copy.release()
}

/**
 * A peer's copies waiting to be offered: a PutSource that waits for more
 * until closed, or until nothing came for `idleMs` (its session then ends,
 * and copies for the peer after that go on a new one).
 */
export class PeerQueue {
  /** Nothing came for idleMs: the source ended and takes no more copies. */
  endedIdle = false
  private readonly idleMs: number
  private readonly items: Copy[] = []
  /** Copies handed to the session and not yet settled: given back by `drain` if the session fails. */
  private readonly taken = new Set<Copy>()
  private closed = false
  /** Its session ended: copies pushed now are given up at once. */
  private dead = false
  private wake?: () => void

  constructor (idleMs: number) {
    this.idleMs = idleMs
  }

  push (copy: Copy): void {
    if (this.dead) {
      settle(copy)
      return
    }
    this.items.push(copy)
    this.wake?.()
  }

  close (): void {
    this.closed = true
    this.wake?.()
  }

  async next (): Promise<Copy | undefined> {
    while (this.items.length === 0 && !this.closed) {
      const woken = await new Promise<boolean>(resolve => {
        const idle = setTimeout(() => { resolve(false) }, this.idleMs)
        this.wake = () => { clearTimeout(idle); resolve(true) }
      })
      this.wake = undefined
      if (!woken && this.items.length === 0 && !this.closed) {
        this.endedIdle = true
        return undefined
      }
    }
    const copy = this.items.shift()
    if (copy != null) this.taken.add(copy)
    // taken copies already settled (answered) need not be kept
    for (const c of this.taken) if (c.settled) this.taken.delete(c)
    return copy
  }

  /** Gives up every copy not answered: queued, or handed out and never answered. */
  drain (): void {
    this.dead = true
    const left = [...this.taken, ...this.items.splice(0)]
    this.taken.clear()
    for (const copy of left) settle(copy)
  }
}
