/**
 * A token bucket per remote peer: each peer may spend `perSecond` units a
 * second on average and `burst` at once. At most `maxPeers` buckets are
 * kept, the least recently used forgotten first.
 */
export interface RateLimit {
  perSecond: number
  burst: number
}

interface Bucket {
  tokens: number
  at: number
}

export class PeerRateLimit {
  readonly limit: RateLimit
  private readonly maxPeers: number
  private readonly buckets = new Map<string, Bucket>()

  constructor (limit: RateLimit, maxPeers: number) {
    this.limit = limit
    this.maxPeers = maxPeers
  }

  /** Milliseconds until `peer` may spend `amount` (0: now). */
  waitMs (peer: string, amount: number, now = performance.now()): number {
    const tokens = this.tokens(peer, now)
    const need = Math.min(amount, this.limit.burst)
    return tokens >= need ? 0 : Math.ceil((need - tokens) / this.limit.perSecond * 1000)
  }

  /** Spends `amount` of `peer`'s tokens (it may go below zero: a block larger than what is left). */
  take (peer: string, amount: number, now = performance.now()): void {
    const tokens = this.tokens(peer, now)
    this.buckets.delete(peer) // re-inserted last: the map is in order of last use
    this.buckets.set(peer, { tokens: tokens - amount, at: now })
    if (this.buckets.size > this.maxPeers) this.forget()
  }

  private tokens (peer: string, now: number): number {
    const bucket = this.buckets.get(peer)
    if (bucket == null) return this.limit.burst
    return Math.min(this.limit.burst, bucket.tokens + (now - bucket.at) / 1000 * this.limit.perSecond)
  }

  /** Past `maxPeers`: the least recently used go (forgetting a bucket gives its peer a full one). */
  private forget (): void {
    for (const peer of this.buckets.keys()) {
      if (this.buckets.size <= this.maxPeers) return
      this.buckets.delete(peer)
    }
  }
}
