/**
 * Peers as Chord names them: where each can be reached (the address book),
 * this peer's own addresses as it introduces itself, a peer as it goes on
 * the wire, and the addresses of the peers Chord finds written to the
 * libp2p peer store, so that Shoal's other protocols can dial them by ID.
 */
import { peerIdFromString } from '@libp2p/peer-id'
import type { Logger, PeerStore } from '@libp2p/interface'
import type { AddressManager } from '@libp2p/interface-internal'
import type { Multiaddr } from '@multiformats/multiaddr'
import type { AddressBook } from './address-book.ts'
import { MAX_ADDRS_PER_PEER, MAX_REFUSED_PEERS, SELF_ADDRESSES_MS } from './constants.ts'
import { peerIdBytes, withPeerId, type PeerInfo, type PeerMessage } from './messages.ts'

export interface PeerDirectoryInit {
  self: string
  addresses: AddressBook
  /** Peers never to remember (refused). */
  refused: (peer: string) => boolean
  addressManager: Pick<AddressManager, 'getAddresses'>
  peerStore: Pick<PeerStore, 'merge'>
  log: Logger
}

export class PeerDirectory {
  private readonly init: PeerDirectoryInit
  /** Addresses already written to the peer store, per peer. */
  private readonly published = new Map<string, string>()
  private own: { at: number, addrs: Multiaddr[], message: PeerMessage } | undefined

  constructor (init: PeerDirectoryInit) {
    this.init = init
  }

  /** Remembers where a peer named in a message can be reached. */
  learn (peer: PeerInfo): void {
    if (peer.id === this.init.self || this.init.refused(peer.id)) return
    this.init.addresses.add(peer.id, peer.addrs)
  }

  /** A peer with the addresses known for it. */
  info (peer: string): PeerInfo {
    return { id: peer, addrs: this.init.addresses.get(peer) }
  }

  /** Writes a peer's addresses to the peer store (once per address set), for Shoal's other protocols. */
  publish (peer: string): void {
    if (peer === this.init.self) return
    const addrs = this.init.addresses.get(peer)
    if (addrs.length === 0) return
    const text = addrs.map(a => a.toString()).join(' ')
    if (this.published.get(peer) === text) return
    this.published.set(peer, text)
    if (this.published.size > 4 * MAX_REFUSED_PEERS) this.published.delete(this.published.keys().next().value as string)
    this.init.peerStore.merge(peerIdFromString(peer), { multiaddrs: addrs }).catch(err => {
      this.init.log('could not record the addresses of %s: %s', peer, (err as Error).message)
    })
  }

  /** This peer's addresses, read again at most every SELF_ADDRESSES_MS (reading them asks every listener). */
  ownAddrs (): Multiaddr[] {
    return this.ownEntry().addrs
  }

  peerMessage (peer: string): PeerMessage {
    if (peer === this.init.self) return this.ownEntry().message
    return this.infoMessage(this.info(peer))
  }

  infoMessage (peer: PeerInfo): PeerMessage {
    return { id: peerIdBytes(peer.id), addrs: peer.addrs.slice(0, MAX_ADDRS_PER_PEER).map(a => a.bytes) }
  }

  private ownEntry (): { addrs: Multiaddr[], message: PeerMessage } {
    const now = performance.now()
    if (this.own == null || now - this.own.at > SELF_ADDRESSES_MS) {
      const self = this.init.self
      const addrs = this.init.addressManager.getAddresses()
        .map(addr => { try { return withPeerId(addr, self) } catch { return undefined } })
        .filter((addr): addr is Multiaddr => addr != null)
        .slice(0, MAX_ADDRS_PER_PEER)
      this.own = { at: now, addrs, message: this.infoMessage({ id: self, addrs }) }
    }
    return this.own
  }
}
