/**
 * Where to reach the peers this Kademlia peer knows, for the answers it
 * gives (a querier dials the closer peers it is told of): the addresses a
 * peer announced for itself in identify, else those another peer passed on
 * in an answer, else, once, what libp2p's peer store holds (read on a miss
 * and kept: a peer-store read decodes the peer's whole record, several
 * times what an answer costs otherwise). Addresses a peer announced itself
 * are never replaced by hearsay. Least recently used peers are forgotten
 * past MAX_REMEMBERED_ADDRESSES.
 */
import type { AbortOptions, PeerId, PeerStore } from '@libp2p/interface'
import type { Multiaddr } from '@multiformats/multiaddr'
import { MAX_ADDRS_PER_PEER, MAX_REMEMBERED_ADDRESSES } from './constants.ts'
import { withPeerId } from './find-messages.ts'

interface Entry {
  addrs: Multiaddr[]
  /** Announced by the peer itself (identify). */
  own: boolean
}

export class KadAddressBook {
  private readonly entries = new Map<string, Entry>()
  private readonly peerStore: Pick<PeerStore, 'get'>
  private readonly maxEntries: number

  constructor (peerStore: Pick<PeerStore, 'get'>, maxEntries = MAX_REMEMBERED_ADDRESSES) {
    this.peerStore = peerStore
    this.maxEntries = maxEntries
  }

  get size (): number {
    return this.entries.size
  }

  /** The addresses known for `peer`, each ending in /p2p/<peer>; [] when none. */
  get (peer: string): Multiaddr[] {
    const entry = this.entries.get(peer)
    if (entry == null) return []
    this.entries.delete(peer)
    this.entries.set(peer, entry)
    return entry.addrs
  }

  /** The addresses of `peer`, from the peer store when not known yet. */
  async resolve (peerId: PeerId, options: AbortOptions = {}): Promise<Multiaddr[]> {
    const id = peerId.toString()
    if (this.entries.has(id)) return this.get(id)
    let addrs: Multiaddr[] = []
    try {
      addrs = (await this.peerStore.get(peerId, options)).addresses.map(a => a.multiaddr)
    } catch (err) {
      if ((err as Error).name !== 'NotFoundError') throw err
    }
    if (!this.entries.has(id)) this.set(id, addrs, false)
    return this.get(id)
  }

  /** The addresses `peer` announced for itself (identify). */
  announced (peer: string, addrs: Multiaddr[]): void {
    if (addrs.length > 0) this.set(peer, addrs, true)
  }

  /** Addresses another peer gave for `peer`: kept only when nothing better is known. */
  heard (peer: string, addrs: Multiaddr[]): void {
    const known = this.entries.get(peer)
    if (addrs.length === 0 || known?.own === true || (known != null && known.addrs.length > 0)) return
    this.set(peer, addrs, false)
  }

  forget (peer: string): void {
    this.entries.delete(peer)
  }

  clear (): void {
    this.entries.clear()
  }

  private set (peer: string, addrs: Multiaddr[], own: boolean): void {
    const withId: Multiaddr[] = []
    for (const addr of addrs) {
      if (withId.length === MAX_ADDRS_PER_PEER) break
      try {
        withId.push(withPeerId(addr, peer))
      } catch {
        // an address naming another peer is not one of this peer's
      }
    }
    this.entries.delete(peer)
    this.entries.set(peer, { addrs: withId, own })
    for (const oldest of this.entries.keys()) {
      if (this.entries.size <= this.maxEntries) break
      this.entries.delete(oldest)
    }
  }
}
