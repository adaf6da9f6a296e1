/**
 * The DAG nodes of one fetch: the root and the levels of links that give
 * the file's layout (raw leaves are the scheduler's). A node already here
 * is read from the store (re-checked: a raw root may be a leaf kept in a
 * file the user deleted since). Else those at hand are asked first, with
 * one have query each, while nothing else is known; the overlay (the node's
 * responsible peers, the root's providers) only when none of them has it.
 * Every node is checked against its CID; a fetched one is stored in the
 * background (an fsync must not hold up the layout), and `stored()` waits
 * for those writes before the download commits.
 */
import type { CID } from 'multiformats/cid'
import { BlockMismatchError, cidKey, matchesCid } from '../content/cid.ts'
import type { FetchSession } from '../store/fetch-session.ts'
import { ContentNotFoundError } from '../store/errors.ts'
import { raceSignal, sleep } from '../utils/wait.ts'
import type { FetchStore } from './index.ts'
import type { SessionPool } from './session-pool.ts'
import type { SourceFinder } from './source-finder.ts'

/** How long peers at hand get to say whether they hold a node. */
const HAVE_AT_HAND_MS = 2_000
/** One try at a node from one peer. */
const NODE_TRY_MS = 10_000
/** Wait before asking again when nobody had the node. */
const RETRY_MS = 1_000

export interface NodeResolverComponents {
  content: Pick<FetchStore, 'hasBlocks' | 'readBlock'>
  store: Pick<FetchSession, 'keep' | 'kept' | 'storeBlock'>
  sessions: SessionPool
  sources: SourceFinder
}

export interface NodeResolverInit {
  /** A node arrived: progress, not a stall. */
  onNode: () => void
}

export class NodeResolver {
  private readonly components: NodeResolverComponents
  private readonly init: NodeResolverInit
  /** Nodes that were here already. */
  local = 0
  /** Fetched nodes being written to the store. */
  private readonly storing: Array<Promise<void>> = []

  constructor (components: NodeResolverComponents, init: NodeResolverInit) {
    this.components = components
    this.init = init
  }

  /** Resolves once every fetched node is durable in the store. */
  async stored (): Promise<void> {
    await Promise.all(this.storing)
  }

  /** A node's verified bytes: from the store, else from whoever holds it. */
  async get (cid: CID, signal: AbortSignal): Promise<Uint8Array> {
    const { content, store, sessions, sources } = this.components
    store.keep(cid)
    await store.kept()
    const [here] = await content.hasBlocks([cid], { recheck: true })
    if (here) {
      try {
        const bytes = await content.readBlock(cid)
        this.local++
        return bytes
      } catch (err) {
        // rotted since it was re-checked: the store removed it, fetch a good copy
        if (!(err instanceof BlockMismatchError)) throw err
      }
    }
    const tried = new Set<string>()
    while (true) {
      signal.throwIfAborted()
      const holder = await this.firstHolder(cid, sources.atHand().filter(p => !tried.has(p)), signal)
      let candidates = [holder ?? '']
      if (holder == null) {
        sources.discoverProviders(signal)
        const [responsible] = await sources.responsible([cid.multihash.bytes], signal)
        candidates = [...new Set([...responsible, ...sources.known()])].filter(p => p !== sources.selfId && !tried.has(p))
      }
      if (candidates.length === 0 && tried.size === 0 && sources.connected().length === 0) {
        throw new ContentNotFoundError(`${cidKey(cid)} is not held here and no peer is connected to fetch it from`)
      }
      for (const peer of candidates) {
        tried.add(peer)
        try {
          const session = await sessions.get(peer, signal)
          const bytes = await raceSignal(session.want(cid), AbortSignal.any([signal, AbortSignal.timeout(NODE_TRY_MS)]))
          if (bytes == null) continue
          if (!matchesCid(cid, bytes)) {
            sessions.drop(peer, 'sent a block that does not match its CID')
            continue
          }
          const storing = store.storeBlock(cid, bytes, { verified: true }).then(async s => { await s.stored })
          storing.catch(() => {}) // awaited by stored(), before the commit
          this.storing.push(storing)
          this.init.onNode()
          return bytes
        } catch (err) {
          signal.throwIfAborted()
          sessions.drop(peer, (err as Error).message)
        }
      }
      if (holder != null) continue // it failed us: try the others, without waiting
      // nobody had it yet: providers may still turn up, peers may join
      await sleep(RETRY_MS, signal)
      if (candidates.length === 0) tried.clear()
    }
  }

  /** The first of `peers` to say it holds `cid` (have queries at once), or undefined. */
  private async firstHolder (cid: CID, peers: string[], signal: AbortSignal): Promise<string | undefined> {
    if (peers.length === 0) return undefined
    return new Promise(resolve => {
      let left = peers.length
      const done = (): void => { if (--left === 0) resolve(undefined) }
      const deadline = AbortSignal.any([signal, AbortSignal.timeout(HAVE_AT_HAND_MS)])
      for (const peer of peers) {
        this.components.sessions.get(peer, deadline)
          .then(async session => session.have([cid], deadline))
          .then(([held]) => { if (held) resolve(peer); done() }, () => { done() })
      }
    })
  }
}
