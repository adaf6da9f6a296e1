/**
 * Who may hold the blocks of one fetch, and asking them. First the peers at
 * hand, with no lookup: the provider records found so far and up to
 * MAX_CONNECTED_ASKED connected peers, each asked once, with one have list
 * of the pieces still needed (~36 bytes per block). Only the pieces nobody
 * at hand holds go to the overlay: their 2k responsible peers (where
 * placement put them) and the root's provider records (peers that shared or
 * fetched the whole file). Pieces still without a holder are asked about
 * again every REFRESH_MS (peers fetching the same file serve what they
 * already have). Each answer goes to the scheduler.
 */
import type { Logger } from '@libp2p/interface'
import type { CID } from 'multiformats/cid'
import { mapConcurrent, sleep } from '../utils/wait.ts'
import type { FetchConnection, FetchOverlay } from './index.ts'
import type { BlockScheduler } from './scheduler.ts'
import type { SessionPool } from './session-pool.ts'

/** Provider records looked for. */
const MAX_PROVIDERS = 20
/** Connected peers asked first, before any lookup. */
const MAX_CONNECTED_ASKED = 20
/** Sources asked at once. */
const SOURCES_AT_ONCE = 8
/** How often pieces without a known holder are asked about again. */
const REFRESH_MS = 2_000
/** How long a lookup of provider records may run. */
const PROVIDERS_TIMEOUT_MS = 30_000

export interface SourceFinderComponents {
  connection: Pick<FetchConnection, 'peerId' | 'getPeers'>
  overlay: Pick<FetchOverlay, 'planner' | 'findProviders'>
  sessions: SessionPool
}

export interface SourceFinderInit {
  root: CID
  /** Each key's 2 × replicas responsible peers are looked up. */
  replicas: number
  log: Logger
  /** A peer said it holds some of the pieces asked about. */
  onSource: () => void
}

/** The download being fed: its scheduler, and the CID of each of its pieces. */
interface Target {
  scheduler: BlockScheduler
  cids: CID[]
}

export class SourceFinder {
  private readonly components: SourceFinderComponents
  private readonly init: SourceFinderInit
  /** Peers that announced the root (they hold the whole file). */
  private readonly providers = new Set<string>()
  private discovering = false
  private target?: Target

  constructor (components: SourceFinderComponents, init: SourceFinderInit) {
    this.components = components
    this.init = init
  }

  get selfId (): string {
    return this.components.connection.peerId.toString()
  }

  connected (): string[] {
    return this.components.connection.getPeers().map(p => p.toString())
  }

  /** Peers to ask first, no lookup needed: providers found so far, then connected peers. */
  atHand (): string[] {
    const connected = this.connected().filter(p => !this.providers.has(p)).slice(0, MAX_CONNECTED_ASKED)
    return [...this.providers, ...connected].filter(p => p !== this.selfId)
  }

  /** Providers found so far and every connected peer: where else to look for a block. */
  known (): string[] {
    return [...new Set([...this.providers, ...this.connected()])].filter(p => p !== this.selfId)
  }

  /** The 2k responsible peers of each key (a block's multihash bytes), in responsibility order. */
  async responsible (keys: Uint8Array[], signal: AbortSignal): Promise<string[][]> {
    const plan = await this.components.overlay.planner().plan(keys, 2 * this.init.replicas, { signal })
    return plan.responsible
  }

  /** Looks up the root's provider records (once); a provider found later is asked about everything still needed. */
  discoverProviders (signal: AbortSignal): void {
    if (this.discovering) return
    this.discovering = true
    void this.findProviders(signal)
  }

  /**
   * Feeds `scheduler` (whose piece i is block `cids[i]`) with sources until
   * it is done or `signal` aborts: those at hand, then the responsible
   * peers of the pieces nobody at hand holds, then those pieces again
   * every REFRESH_MS.
   */
  async run (scheduler: BlockScheduler, cids: CID[], signal: AbortSignal): Promise<void> {
    this.target = { scheduler, cids }
    try {
      const needed = scheduler.needed()
      const atHand = this.atHand()
      const asked = new Set([this.selfId, ...atHand])
      await mapConcurrent(atHand, SOURCES_AT_ONCE, async peer => { await this.ask(peer, needed, signal) })
      const orphans = scheduler.orphans()
      if (orphans.length > 0) {
        this.discoverProviders(signal)
        const responsible = await this.responsible(orphans.map(i => cids[i].multihash.bytes), signal)
        const byPeer = new Map<string, number[]>()
        responsible.forEach((peers, j) => {
          for (const peer of peers) {
            if (asked.has(peer)) continue
            let list = byPeer.get(peer)
            if (list == null) byPeer.set(peer, list = [])
            list.push(orphans[j])
          }
        })
        await mapConcurrent([...byPeer], SOURCES_AT_ONCE, async ([peer, indexes]) => { await this.ask(peer, indexes, signal) })
      }
      while (!scheduler.done && !signal.aborted) {
        await sleep(REFRESH_MS, signal)
        const orphans = scheduler.orphans()
        if (orphans.length === 0) continue
        this.discoverProviders(signal)
        const peers = new Set([...this.components.sessions.peers(), ...this.providers, ...this.connected().slice(0, MAX_CONNECTED_ASKED)])
        peers.delete(this.selfId)
        await mapConcurrent([...peers], SOURCES_AT_ONCE, async peer => { await this.ask(peer, orphans, signal) })
      }
    } catch (err) {
      if (!signal.aborted) this.init.log('finding sources of %s: %s', this.init.root, (err as Error).message)
    }
  }

  private async findProviders (signal: AbortSignal): Promise<void> {
    if (this.components.connection.getPeers().length === 0) return
    try {
      const lookup = AbortSignal.any([signal, AbortSignal.timeout(PROVIDERS_TIMEOUT_MS)])
      for await (const id of this.components.overlay.findProviders(this.init.root, { signal: lookup })) {
        if (id === this.selfId || this.providers.has(id)) continue
        this.providers.add(id)
        // a provider holds the whole file: ask it about everything still needed
        const scheduler = this.target?.scheduler
        if (scheduler != null && !scheduler.done) void this.ask(id, scheduler.needed(), signal)
        if (this.providers.size >= MAX_PROVIDERS) break
      }
    } catch (err) {
      if (!signal.aborted) this.init.log('finding providers of %s: %s', this.init.root, (err as Error).message)
    }
  }

  /** Asks `peer` which of pieces `indexes` it holds, and tells the scheduler. */
  private async ask (peer: string, indexes: number[], signal: AbortSignal): Promise<void> {
    const target = this.target
    if (target == null || indexes.length === 0 || target.scheduler.isBanned(peer)) return
    try {
      const session = await this.components.sessions.get(peer, signal)
      const held = await session.have(indexes.map(i => target.cids[i]), signal)
      const has = indexes.filter((_, j) => held[j])
      if (has.length > 0) this.init.onSource()
      if (has.length > 0 || target.scheduler.hasPeer(peer)) target.scheduler.addPeer(session, has)
    } catch (err) {
      if (signal.aborted) return
      this.components.sessions.drop(peer, (err as Error).message)
    }
  }
}
