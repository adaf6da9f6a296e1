/**
 * Chord's provider records on the network: announcing a root to its key's
 * k responsible peers (and again every reprovide interval), finding a
 * root's providers by asking those peers, deciding whether a record sent
 * here is this peer's to keep, and handing the records kept here to the
 * successors when this peer leaves. The records themselves live in
 * provider-store.ts.
 */
import type { AbortOptions, Logger } from '@libp2p/interface'
import type { Multiaddr } from '@multiformats/multiaddr'
import type { CID } from 'multiformats/cid'
import type { LookupResult } from '../index.ts'
import { MAX_PEERS_PER_MESSAGE, MAX_RECORDS_PER_MESSAGE } from './constants.ts'
import { ProvideFailedError } from './errors.ts'
import { decodePeers, type PeerInfo, type PeerMessage } from './messages.ts'
import type { ProviderStore } from './provider-store.ts'
import type { ChordRpc } from './rpc.ts'

export interface ProviderRecordsInit {
  store: ProviderStore
  rpc: ChordRpc
  /** k for provider records. */
  replicas: number
  self: string
  lookup: (key: Uint8Array, k: number, options: AbortOptions) => Promise<LookupResult>
  /** Where this peer can be reached. */
  ownAddrs: () => Multiaddr[]
  peerMessage: (peer: string) => PeerMessage
  infoMessage: (peer: PeerInfo) => PeerMessage
  /** A provider found: remember its addresses and publish them to the peer store. */
  found: (provider: PeerInfo) => void
  /** How many of `among` precede `peer` clockwise from `key`. */
  rank: (key: Uint8Array, peer: string, among: Iterable<string>) => number
  knownPeers: () => string[]
  log: Logger
}

export class ProviderRecords {
  private readonly init: ProviderRecordsInit
  /** Roots this peer announced, announced again every reprovide interval. */
  private readonly provided = new Map<string, CID>()

  constructor (init: ProviderRecordsInit) {
    this.init = init
  }

  async provide (root: CID, options: AbortOptions = {}): Promise<void> {
    const { init } = this
    const key = root.multihash.bytes
    this.provided.set(root.toString(), root)
    const { responsible } = await init.lookup(key, init.replicas, options)
    const self: PeerInfo = { id: init.self, addrs: init.ownAddrs() }
    let kept = 0
    await Promise.all(responsible.map(async peer => {
      if (peer === init.self) {
        if (init.store.add(key, self)) kept++
        return
      }
      try {
        const response = await init.rpc.request(peer, {
          add_providers: { replicas: init.replicas, records: [{ key, providers: [init.peerMessage(init.self)] }] }
        }, options)
        if ((response.add_providers?.accepted ?? 0) > 0) kept++
      } catch (err) {
        if (options.signal?.aborted === true) throw err
        init.log('%s did not take a provider record: %s', peer, (err as Error).message)
      }
    }))
    if (kept === 0) throw new ProvideFailedError(`none of the ${responsible.length} peers responsible for ${root} kept its provider record`)
  }

  async * findProviders (root: CID, options: AbortOptions = {}): AsyncIterable<string> {
    const { init } = this
    const key = root.multihash.bytes
    const { responsible } = await init.lookup(key, init.replicas, options)
    const seen = new Set<string>([init.self])
    const found = (providers: PeerInfo[]): string[] => {
      const fresh: string[] = []
      for (const provider of providers) {
        if (seen.has(provider.id)) continue
        seen.add(provider.id)
        init.found(provider)
        fresh.push(provider.id)
      }
      return fresh
    }
    if (responsible.includes(init.self)) yield * found(init.store.get(key))
    // every responsible peer asked at once; providers yielded as each answers
    const pending = new Map<string, Promise<{ peer: string, providers: PeerInfo[] }>>()
    for (const peer of responsible) {
      if (peer === init.self) continue
      pending.set(peer, init.rpc.request(peer, { get_providers: { key } }, options)
        .then(response => ({ peer, providers: decodePeers(response.get_providers!.providers) }))
        .catch(err => {
          init.log('%s did not answer get-providers: %s', peer, (err as Error).message)
          return { peer, providers: [] }
        }))
    }
    while (pending.size > 0) {
      options.signal?.throwIfAborted()
      const { peer, providers } = await Promise.race(pending.values())
      pending.delete(peer)
      yield * found(providers)
    }
  }

  /** Announces every root this peer provides again. */
  async reprovide (options: AbortOptions): Promise<void> {
    for (const root of [...this.provided.values()]) {
      try {
        await this.provide(root, options)
      } catch (err) {
        if (options.signal?.aborted === true) throw err
        this.init.log('announcing %s again failed: %s', root, (err as Error).message)
      }
    }
  }

  /** Keeps a record for `key` when this peer ranks among its `replicas` responsible peers it knows, with a margin (as /shoal/store does). */
  accepts (key: Uint8Array, replicas: number): boolean {
    const k = Math.min(Math.max(replicas, 1), MAX_PEERS_PER_MESSAGE)
    return this.init.rank(key, this.init.self, this.init.knownPeers()) < k + Math.max(2, k)
  }

  /** Provider records kept here go to the peers that take over: among a leaver's first k successors is each root's new k-th. */
  async handOff (successors: string[], options: AbortOptions): Promise<void> {
    const { init } = this
    const to = successors.slice(0, init.replicas)
    const records = init.store.all()
    if (records.length === 0 || to.length === 0) return
    const batches: Array<typeof records> = []
    for (let i = 0; i < records.length; i += MAX_RECORDS_PER_MESSAGE) batches.push(records.slice(i, i + MAX_RECORDS_PER_MESSAGE))
    await Promise.all(to.map(async peer => {
      for (const batch of batches) {
        try {
          await init.rpc.request(peer, {
            add_providers: {
              replicas: init.replicas,
              records: batch.map(r => ({ key: r.key, providers: r.providers.slice(-MAX_PEERS_PER_MESSAGE).map(p => init.infoMessage(p)) }))
            }
          }, options)
        } catch (err) {
          if (options.signal?.aborted === true) return
          init.log('handing provider records to %s failed: %s', peer, (err as Error).message)
          return
        }
      }
    }))
  }
}
