/**
 * A Chord peer's routing contacts kept in its datastore (the repo's
 * LevelDB in a Shoal peer), so that a restarted peer finds its way back to
 * the ring by itself, as kad-dht does from its saved routing table: its
 * successor list in order, its predecessor and its fingers, each with the
 * addresses last known for it. Written a moment after the routing state
 * changes (one write for a burst of changes) and when the peer stops; a
 * peer that has lost every successor keeps what it saved before.
 */
import { peerIdFromString } from '@libp2p/peer-id'
import { multiaddr } from '@multiformats/multiaddr'
import type { AbortOptions, Logger } from '@libp2p/interface'
import type { Datastore } from 'interface-datastore'
import { Key } from 'interface-datastore'
import { MAX_ADDRS_PER_PEER, MAX_PEERS_PER_MESSAGE } from './constants.ts'
import { withPeerId, type PeerInfo } from './messages.ts'
import type { RingState } from './ring-state.ts'

/** Where the contacts live in the datastore. */
export const CONTACTS_KEY = new Key('/shoal/chord/contacts')
/** A burst of routing changes is written once, this long after the first. */
export const CONTACTS_WRITE_DELAY_MS = 2_000

export interface SavedContacts {
  /** Nearest first. */
  successors: PeerInfo[]
  predecessor?: PeerInfo
  fingers: PeerInfo[]
}

interface StoredPeer { id: string, addrs: string[] }
interface StoredContacts { successors: StoredPeer[], predecessor?: StoredPeer, fingers: StoredPeer[] }

export class ContactStore {
  private readonly datastore: Pick<Datastore, 'get' | 'put' | 'has'> | undefined
  private readonly snapshot: () => SavedContacts | undefined
  private readonly log: Logger
  private timer: ReturnType<typeof setTimeout> | undefined
  private writing: Promise<void> = Promise.resolve()

  /** `snapshot`: the contacts to write now, or undefined when there is nothing worth keeping. */
  constructor (datastore: Pick<Datastore, 'get' | 'put' | 'has'> | undefined, snapshot: () => SavedContacts | undefined, log: Logger) {
    this.datastore = datastore
    this.snapshot = snapshot
    this.log = log
  }

  /** The contacts saved by an earlier run, if any (unreadable ones are ignored). */
  async load (options: AbortOptions = {}): Promise<SavedContacts | undefined> {
    if (this.datastore == null || !(await this.datastore.has(CONTACTS_KEY, options))) return undefined
    try {
      const stored = JSON.parse(new TextDecoder().decode(await this.datastore.get(CONTACTS_KEY, options))) as StoredContacts
      return {
        successors: peers(stored.successors),
        predecessor: stored.predecessor != null ? peers([stored.predecessor])[0] : undefined,
        fingers: peers(stored.fingers)
      }
    } catch (err) {
      if (options.signal?.aborted === true) throw err
      this.log('the saved Chord contacts are unreadable, starting without: %s', (err as Error).message)
      return undefined
    }
  }

  /** The routing state changed: write it soon. */
  changed (): void {
    if (this.datastore == null || this.timer != null) return
    this.timer = setTimeout(() => {
      this.timer = undefined
      void this.write()
    }, CONTACTS_WRITE_DELAY_MS)
    this.timer.unref?.()
  }

  /** Writes the contacts now (stop, leave); waits for a write under way. */
  async flush (): Promise<void> {
    clearTimeout(this.timer)
    this.timer = undefined
    await this.write()
  }

  private async write (): Promise<void> {
    const contacts = this.datastore != null ? this.snapshot() : undefined
    if (contacts == null) return this.writing
    const saved: StoredContacts = {
      successors: contacts.successors.map(toStored),
      ...(contacts.predecessor != null ? { predecessor: toStored(contacts.predecessor) } : {}),
      fingers: contacts.fingers.map(toStored)
    }
    const bytes = new TextEncoder().encode(JSON.stringify(saved))
    this.writing = this.writing.then(async () => {
      await this.datastore!.put(CONTACTS_KEY, bytes)
    }).catch(err => {
      this.log('could not save the Chord contacts: %s', (err as Error).message)
    })
    return this.writing
  }
}

/** What is worth saving of a routing state: nothing while it knows no successor (what was saved before stays). */
export function contactsOf (state: RingState, info: (peer: string) => PeerInfo): SavedContacts | undefined {
  if (state.successors.length === 0) return undefined
  return {
    successors: state.successors.map(info),
    predecessor: state.predecessor != null ? info(state.predecessor) : undefined,
    fingers: [...state.fingers.peers()].map(info)
  }
}

function toStored (peer: PeerInfo): StoredPeer {
  return { id: peer.id, addrs: peer.addrs.map(a => a.toString()) }
}

/** Peers as saved, checked: a valid peer ID, its addresses (ending in it), no more than a message holds. */
function peers (list: StoredPeer[] | undefined): PeerInfo[] {
  if (!Array.isArray(list)) throw new Error('a list of peers is missing')
  return list.slice(0, MAX_PEERS_PER_MESSAGE).map(peer => {
    const id = peerIdFromString(String(peer.id)).toString()
    const addrs = (Array.isArray(peer.addrs) ? peer.addrs : []).slice(0, MAX_ADDRS_PER_PEER).map(a => withPeerId(multiaddr(String(a)), id))
    return { id, addrs }
  })
}
