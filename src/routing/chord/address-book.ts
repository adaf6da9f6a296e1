/**
 * Where to reach the peers Chord knows of: the addresses each peer gave
 * for itself, or that another peer passed on with its ID. Answers carry
 * them so a querier can dial a peer it only just heard of. Peers in the
 * routing state are kept; the others are forgotten least recently used
 * first past MAX_REMEMBERED_PEERS.
 */
import type { Multiaddr } from '@multiformats/multiaddr'
import { MAX_ADDRS_PER_PEER, MAX_REMEMBERED_PEERS } from './constants.ts'

export class AddressBook {
  private readonly entries = new Map<string, Multiaddr[]>()
  private readonly keep: (peer: string) => boolean

  /** `keep`: peers never forgotten (those in the routing state). */
  constructor (keep: (peer: string) => boolean) {
    this.keep = keep
  }

  get (peer: string): Multiaddr[] {
    return this.entries.get(peer) ?? []
  }

  /** Remembers a peer's addresses (an empty list keeps what is known). */
  add (peer: string, addrs: Multiaddr[]): void {
    const known = this.entries.get(peer)
    this.entries.delete(peer)
    this.entries.set(peer, addrs.length > 0 ? addrs.slice(0, MAX_ADDRS_PER_PEER) : known ?? [])
    if (this.entries.size > MAX_REMEMBERED_PEERS) this.evict()
  }

  private evict (): void {
    for (const peer of this.entries.keys()) {
      if (this.entries.size <= MAX_REMEMBERED_PEERS) return
      if (!this.keep(peer)) this.entries.delete(peer)
    }
  }
}
