/**
 * How a Chord peer gets onto the ring, and back onto it. Three ways in,
 * each shaped by what the peer can trust at that moment:
 *
 *   join(addrs)                  dial + ping each; alone or stranded:
 *                                look up our own position through them
 *                                (Maintenance.join, Zave's join)
 *   join(addrs, { successors })  a launcher's list (and fingers), adopted
 *                                as it is: Maintenance.seed, no lookup
 *   saved contacts (restart)     the saved successors that answer a ping
 *                                (Maintenance.restore), at the first
 *                                stabilize; else a join through them all
 *
 * Why a seeded join takes the list without a lookup: `swarm up` starts
 * every peer at once, and a peer that has not joined yet answers every
 * lookup with itself, so lookups through a ring still forming find wrong
 * successors that stabilize then repairs slowly. The launcher knows the
 * true ring, so each peer takes what it is handed. Only the first
 * successor is reached before the list is adopted: it is the one
 * stabilize talks to, and this peer's notify makes it that peer's
 * predecessor; pinging all r successors (and the fingers) of every peer at
 * once would cost r streams per peer at the busiest moment of a swarm's
 * start, for what the stabilize brought forward and fix-fingers check
 * anyway. Handed-out fingers spare the first lookups and fix-fingers a
 * walk round the ring one successor list at a time.
 *
 * Every peer given to join() (and every saved contact) is kept as a way
 * back: a peer that found nobody yet, or lost every successor, joins again
 * through them. One join runs at a time: join() and the stabilize timer's
 * retry of a peer still alone share the one under way.
 */
import { multiaddr } from '@multiformats/multiaddr'
import type { AbortOptions, Logger } from '@libp2p/interface'
import type { JoinOptions } from '../index.ts'
import type { AddressBook } from './address-book.ts'
import type { ContactStore } from './contacts.ts'
import type { Maintenance } from './maintenance.ts'
import type { PeerInfo } from './messages.ts'
import type { RingState } from './ring-state.ts'
import type { ChordRpc } from './rpc.ts'

export interface JoinResult {
  /** Peers reached that speak Chord. */
  connected: number
  /** Dials that failed, and peers refused. */
  failed: number
}

export interface RingJoinInit {
  state: Pick<RingState, 'self' | 'alone' | 'stranded'>
  rpc: Pick<ChordRpc, 'reach'>
  addresses: Pick<AddressBook, 'add'>
  maintenance: Pick<Maintenance, 'join' | 'seed' | 'restore'>
  contacts: Pick<ContactStore, 'load'>
  /** A saved contact's addresses, remembered. */
  learn: (peer: PeerInfo) => void
  /** Brings the next stabilize round forward (it checks what a join took). */
  stabilizeNow: () => void
  log: Logger
}

export class RingJoin {
  private readonly init: RingJoinInit
  /** Peers given to join() and saved contacts: the way back when every successor is lost. */
  private readonly bootstrap = new Set<string>()
  /** Successors saved by the last run, tried once at the first stabilize. */
  private restoring: string[] | undefined
  private joining: Promise<void> | undefined

  constructor (init: RingJoinInit) {
    this.init = init
  }

  /** Whether `peer` is a way back to the ring (its addresses are worth keeping). */
  isWayBack (peer: string): boolean {
    return this.bootstrap.has(peer)
  }

  /** Every way back to the ring. */
  waysBack (): string[] {
    return [...this.bootstrap]
  }

  /** Whether saved successors wait for the first stabilize (a restarted peer goes back to them at once). */
  get restorePending (): boolean {
    return this.restoring != null
  }

  /**
   * Dials each address and checks with a ping that the peer speaks Chord
   * (`connected` counts those; `failed` the dials that failed and the peers
   * refused). A peer not on a ring yet (alone, or stranded) then joins
   * through them; one already on a ring keeps them as a way back.
   */
  async join (multiaddrs: string[], options: JoinOptions = {}): Promise<JoinResult> {
    if (options.successors === true) return this.adoptSuccessors(multiaddrs, options)
    const { state } = this.init
    const reached: string[] = []
    let failed = 0
    await Promise.all(multiaddrs.map(async text => {
      try {
        const peer = await this.init.rpc.reach(text, state.self, options)
        this.bootstrap.add(peer)
        reached.push(peer)
      } catch (err) {
        if (options.signal?.aborted === true) throw err
        this.init.log('bootstrap peer %s: %s', text, (err as Error).message)
        failed++
      }
    }))
    if (reached.length > 0 && (state.stranded || state.alone)) {
      await this.joinThrough(reached, options, reached)
    }
    return { connected: reached.length, failed }
  }

  /** A restarted peer first tries the successors it saved; a peer whose join found nobody yet tries again through its ways back. */
  async findTheRing (options: AbortOptions): Promise<void> {
    const { state } = this.init
    const saved = this.restoring
    this.restoring = undefined
    if (saved != null && state.alone) await this.init.maintenance.restore(saved, options)
    if (state.alone && this.bootstrap.size > 0) await this.joinThrough([...this.bootstrap], options)
  }

  /** Learns the contacts an earlier run saved: its successors to try first, every one a way back. */
  async restoreContacts (): Promise<void> {
    const saved = await this.init.contacts.load().catch(err => {
      this.init.log('could not read the saved Chord contacts: %s', (err as Error).message)
      return undefined
    })
    if (saved == null) return
    const all = [...saved.successors, ...(saved.predecessor != null ? [saved.predecessor] : []), ...saved.fingers]
    for (const peer of all) {
      this.init.learn(peer)
      this.bootstrap.add(peer.id)
    }
    this.restoring = saved.successors.map(p => p.id)
    this.init.log('%d saved contacts, %d of them successors', this.bootstrap.size, this.restoring.length)
  }

  /**
   * The launcher's successor list for this peer (JoinOptions.successors):
   * every peer's addresses remembered, the first one reached, the list
   * adopted as it is and the fingers placed (Maintenance.seed); the
   * stabilize brought forward checks it as it checks any.
   */
  private async adoptSuccessors (multiaddrs: string[], options: JoinOptions): Promise<JoinResult> {
    const { state } = this.init
    const first = new Map<string, string>()
    const learn = (list: string[]): string[] => {
      const ids: string[] = []
      for (const text of list) {
        const addr = multiaddr(text)
        const id = addr.getComponents().findLast(c => c.name === 'p2p')?.value
        if (id == null || id === state.self) continue
        this.init.addresses.add(id, [addr])
        if (!first.has(id)) first.set(id, text)
        if (!ids.includes(id)) ids.push(id)
      }
      return ids
    }
    const ids = learn(multiaddrs)
    const fingers = learn(options.fingers ?? [])
    if (ids.length === 0) return { connected: 0, failed: multiaddrs.length }
    try {
      await this.init.rpc.reach(first.get(ids[0])!, state.self, options)
    } catch (err) {
      if (options.signal?.aborted === true) throw err
      this.init.log('successor %s did not answer: %s', ids[0], (err as Error).message)
      return { connected: 0, failed: 1 }
    }
    this.bootstrap.add(ids[0])
    this.init.maintenance.seed(ids, fingers)
    this.init.stabilizeNow()
    return { connected: 1, failed: 0 }
  }

  /** One join at a time: a second caller (the stabilize timer retrying) waits for the one under way. */
  private async joinThrough (seeds: string[], options: AbortOptions, live: string[] = []): Promise<void> {
    if (this.joining == null) {
      this.joining = this.init.maintenance.join(seeds, options, live)
        .then(joined => { if (joined) this.init.stabilizeNow() })
        .catch(err => {
          if (options.signal?.aborted === true) throw err
          this.init.log('joining through %d peers failed: %s', seeds.length, (err as Error).message)
        })
        .finally(() => { this.joining = undefined })
    }
    await this.joining
  }
}
