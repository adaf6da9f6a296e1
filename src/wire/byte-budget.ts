/**
 * Bytes that peers' streams may hold in this peer's memory (received blocks
 * waiting to be stored, blocks read ahead to be sent), bounded twice: over
 * all peers, and per remote peer, so that one peer, however many streams it
 * opens, holds at most its share and the others still find room.
 *
 * Grants go in arrival order, so a large reservation is not starved by
 * small ones; a waiter held back only by its own peer's share does not hold
 * up other peers' waiters. A reservation larger than a bound is granted
 * when nothing is held against that bound, so it cannot wait for ever.
 */
export class ByteBudget {
  readonly capacityBytes: number
  readonly perPeerBytes: number
  private taken = 0
  private readonly byPeer = new Map<string, number>()
  private readonly waiters: Waiter[] = []

  constructor (capacityBytes: number, perPeerBytes = capacityBytes) {
    this.capacityBytes = capacityBytes
    this.perPeerBytes = perPeerBytes
  }

  /** Bytes reserved now, over all peers. */
  get inUseBytes (): number {
    return this.taken
  }

  /** Bytes reserved now for `peer`. */
  heldBy (peer: string): number {
    return this.byPeer.get(peer) ?? 0
  }

  /**
   * Reserves `bytes` for `peer`, waiting for room; rejects with the signal's
   * reason if it aborts first (nothing is then reserved).
   */
  async reserve (peer: string, bytes: number, signal?: AbortSignal): Promise<Reservation> {
    signal?.throwIfAborted()
    if (this.fits(peer, bytes) === 'yes' && this.waiters.every(w => w.peer !== peer && this.fits(w.peer, w.bytes) === 'peer')) {
      this.take(peer, bytes)
      return new Reservation(this, peer, bytes)
    }
    return new Promise<Reservation>((resolve, reject) => {
      const waiter: Waiter = {
        peer,
        bytes,
        grant: () => {
          signal?.removeEventListener('abort', onAbort)
          resolve(new Reservation(this, peer, bytes))
        }
      }
      const onAbort = (): void => {
        const i = this.waiters.indexOf(waiter)
        if (i >= 0) this.waiters.splice(i, 1)
        reject(signal?.reason as Error)
        // it may have been holding others up
        this.grantWaiting()
      }
      signal?.addEventListener('abort', onAbort, { once: true })
      this.waiters.push(waiter)
    })
  }

  /** @internal by Reservation */
  give (peer: string, bytes: number): void {
    if (bytes <= 0) return
    this.taken -= bytes
    const left = (this.byPeer.get(peer) ?? 0) - bytes
    if (left > 0) this.byPeer.set(peer, left)
    else this.byPeer.delete(peer)
    this.grantWaiting()
  }

  private take (peer: string, bytes: number): void {
    this.taken += bytes
    this.byPeer.set(peer, (this.byPeer.get(peer) ?? 0) + bytes)
  }

  private fits (peer: string, bytes: number): 'yes' | 'peer' | 'total' {
    if (this.taken > 0 && this.taken + bytes > this.capacityBytes) return 'total'
    const held = this.byPeer.get(peer) ?? 0
    if (held > 0 && held + bytes > this.perPeerBytes) return 'peer'
    return 'yes'
  }

  private grantWaiting (): void {
    for (let i = 0; i < this.waiters.length;) {
      const w = this.waiters[i]
      const fit = this.fits(w.peer, w.bytes)
      // arrival order over all peers; one peer at its share waits alone
      if (fit === 'total') return
      if (fit === 'peer') { i++; continue }
      this.waiters.splice(i, 1)
      this.take(w.peer, w.bytes)
      w.grant()
    }
  }
}

interface Waiter {
  peer: string
  bytes: number
  grant: () => void
}

/** Bytes reserved in a ByteBudget; give them back with `release` (more than once is harmless). */
export class Reservation {
  private readonly budget: ByteBudget
  readonly peer: string
  private held: number

  constructor (budget: ByteBudget, peer: string, bytes: number) {
    this.budget = budget
    this.peer = peer
    this.held = bytes
  }

  get bytes (): number {
    return this.held
  }

  /** Keeps only `bytes` of the reservation (a block turned out smaller than reserved for). */
  shrink (bytes: number): void {
    if (bytes >= this.held) return
    const freed = this.held - bytes
    this.held = bytes
    this.budget.give(this.peer, freed)
  }

  release (): void {
    const freed = this.held
    this.held = 0
    this.budget.give(this.peer, freed)
  }
}
