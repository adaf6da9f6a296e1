/**
 * A write-back cache for libp2p's peer store, in front of the repo's LevelDB.
 *
 * Why: libp2p's persistent peer store reads and rewrites a peer's whole
 * record in LevelDB on every merge, and merges happen all the time: for every
 * peer named in every DHT reply (kad-dht is a peer-discovery source), on every
 * stream opened in either direction (protocol list), on every dial (last-dial
 * time), on every routing-table tag. Measured in a 50-peer in-process swarm:
 * ~26,000 merges and ~30,000 gets while the swarm came up, i.e. ~800 LevelDB
 * get+put pairs a second, which were the largest single CPU cost (see
 * docs/benchmarks.md).
 *
 * How: keys under `/peers/` live in a Map; a miss reads through to LevelDB
 * once (an absent key is remembered as absent); writes and deletes change the
 * Map and mark the key dirty; dirty keys are written to LevelDB in one batch
 * every `flushIntervalMs` and when libp2p stops (`afterStop`), so a restarted
 * peer still finds the peers it knew. Every other key (DHT records,
 * providers, ...) goes straight to LevelDB, unchanged. A crash loses at most
 * the last interval's peer-store updates, which are only hints.
 */
import { Key, type Batch, type Datastore, type KeyQuery, type Pair, type Query } from 'interface-datastore'
import { NotFoundError, type AbortOptions, type Startable } from '@libp2p/interface'

const PEERS = '/peers/'
export const PEER_STORE_FLUSH_INTERVAL_MS = 5_000

export interface PeerStoreCacheInit {
  flushIntervalMs?: number
  onError?: (err: unknown) => void
}

/**
 * A missing key, as datastores report it: an error named NotFoundError
 * (interface-store's class from LevelDB; libp2p's peer store checks the
 * name too). Not one of Shoal's errors, and not always the same class, so
 * it is matched by its name.
 */
const isNotFound = (err: unknown): boolean => (err as { name?: string })?.name === 'NotFoundError'

export class PeerStoreCache implements Datastore, Startable {
  private readonly inner: Datastore
  private readonly init: PeerStoreCacheInit
  /** Key string -> value, or null: known not to exist. */
  private readonly entries = new Map<string, Uint8Array | null>()
  private readonly dirty = new Set<string>()
  /** True once every peer key from LevelDB is in `entries`. */
  private loadedAll = false
  private timer?: ReturnType<typeof setInterval>
  private flushing: Promise<void> = Promise.resolve()

  constructor (inner: Datastore, init: PeerStoreCacheInit = {}) {
    this.inner = inner
    this.init = init
  }

  // libp2p starts and stops its datastore component with the node
  start (): void {
    clearInterval(this.timer)
    this.timer = setInterval(() => { void this.flush().catch(err => this.init.onError?.(err)) }, this.init.flushIntervalMs ?? PEER_STORE_FLUSH_INTERVAL_MS)
    this.timer.unref()
  }

  stop (): void {
    clearInterval(this.timer)
    this.timer = undefined
  }

  /** After every service has stopped (and made its last peer-store writes). */
  async afterStop (): Promise<void> {
    await this.flush()
  }

  /** Writes every dirty peer record to the inner datastore in one batch. */
  async flush (): Promise<void> {
    // a flush that failed was reported to its own caller; this one retries its keys
    this.flushing = this.flushing.catch(() => {}).then(async () => {
      if (this.dirty.size === 0) return
      const keys = [...this.dirty]
      this.dirty.clear()
      const batch = this.inner.batch()
      for (const k of keys) {
        const value = this.entries.get(k)
        if (value == null) batch.delete(new Key(k))
        else batch.put(new Key(k), value)
      }
      try {
        await batch.commit()
      } catch (err) {
        keys.forEach(k => this.dirty.add(k))
        throw err
      }
    })
    return this.flushing
  }

  private static isPeerKey (key: Key | string): boolean {
    return key.toString().startsWith(PEERS)
  }

  private async lookup (key: Key, options?: AbortOptions): Promise<Uint8Array | null> {
    const k = key.toString()
    const cached = this.entries.get(k)
    if (cached !== undefined || this.loadedAll) return cached ?? null
    let value: Uint8Array | null
    try {
      value = await this.inner.get(key, options)
    } catch (err) {
      if (!isNotFound(err)) throw err
      value = null
    }
    // a write may have landed while LevelDB was read: it wins
    if (!this.entries.has(k)) this.entries.set(k, value)
    return this.entries.get(k) ?? null
  }

  async get (key: Key, options?: AbortOptions): Promise<Uint8Array> {
    if (!PeerStoreCache.isPeerKey(key)) return this.inner.get(key, options)
    const value = await this.lookup(key, options)
    if (value == null) throw new NotFoundError()
    return value
  }

  async has (key: Key, options?: AbortOptions): Promise<boolean> {
    if (!PeerStoreCache.isPeerKey(key)) return this.inner.has(key, options)
    return (await this.lookup(key, options)) != null
  }

  async put (key: Key, value: Uint8Array, options?: AbortOptions): Promise<Key> {
    if (!PeerStoreCache.isPeerKey(key)) return this.inner.put(key, value, options)
    this.entries.set(key.toString(), value)
    this.dirty.add(key.toString())
    return key
  }

  async delete (key: Key, options?: AbortOptions): Promise<void> {
    if (!PeerStoreCache.isPeerKey(key)) return this.inner.delete(key, options)
    this.entries.set(key.toString(), null)
    this.dirty.add(key.toString())
  }

  async * putMany (source: Iterable<Pair> | AsyncIterable<Pair>, options?: AbortOptions): AsyncGenerator<Key> {
    for await (const { key, value } of source) yield this.put(key, value, options)
  }

  async * getMany (source: Iterable<Key> | AsyncIterable<Key>, options?: AbortOptions): AsyncGenerator<Pair> {
    for await (const key of source) yield { key, value: await this.get(key, options) }
  }

  async * deleteMany (source: Iterable<Key> | AsyncIterable<Key>, options?: AbortOptions): AsyncGenerator<Key> {
    for await (const key of source) {
      await this.delete(key, options)
      yield key
    }
  }

  batch (): Batch {
    const inner = this.inner.batch()
    const peerOps: Array<[Key, Uint8Array | null]> = []
    return {
      put: (key, value) => { if (PeerStoreCache.isPeerKey(key)) peerOps.push([key, value]); else inner.put(key, value) },
      delete: key => { if (PeerStoreCache.isPeerKey(key)) peerOps.push([key, null]); else inner.delete(key) },
      commit: async options => {
        await inner.commit(options)
        for (const [key, value] of peerOps) {
          this.entries.set(key.toString(), value)
          this.dirty.add(key.toString())
        }
      }
    }
  }

  /** Can a query with this prefix match a peer key / a non-peer key? */
  private static reach (prefix = ''): { peers: boolean, others: boolean } {
    return { peers: prefix.startsWith(PEERS) || PEERS.startsWith(prefix), others: !prefix.startsWith(PEERS) }
  }

  private async loadAll (options?: AbortOptions): Promise<void> {
    if (this.loadedAll) return
    for await (const { key, value } of this.inner.query({ prefix: PEERS }, options)) {
      if (!this.entries.has(key.toString())) this.entries.set(key.toString(), value)
    }
    this.loadedAll = true
  }

  private peerPairs (prefix = ''): Pair[] {
    const pairs: Pair[] = []
    for (const [k, value] of this.entries) {
      if (value != null && k.startsWith(prefix)) pairs.push({ key: new Key(k), value })
    }
    return pairs
  }

  async * query (q: Query, options?: AbortOptions): AsyncGenerator<Pair> {
    const reach = PeerStoreCache.reach(q.prefix)
    if (!reach.peers) {
      yield * this.inner.query(q, options)
      return
    }
    await this.loadAll(options)
    let pairs = this.peerPairs(q.prefix)
    if (reach.others) {
      for await (const pair of this.inner.query({ prefix: q.prefix }, options)) {
        if (!PeerStoreCache.isPeerKey(pair.key)) pairs.push(pair)
      }
    }
    for (const f of q.filters ?? []) pairs = pairs.filter(f)
    for (const o of q.orders ?? []) pairs = [...pairs].sort(o)
    yield * pairs.slice(q.offset ?? 0, q.limit == null ? undefined : (q.offset ?? 0) + q.limit)
  }

  async * queryKeys (q: KeyQuery, options?: AbortOptions): AsyncGenerator<Key> {
    const reach = PeerStoreCache.reach(q.prefix)
    if (!reach.peers) {
      yield * this.inner.queryKeys(q, options)
      return
    }
    await this.loadAll(options)
    let keys = this.peerPairs(q.prefix).map(p => p.key)
    if (reach.others) {
      for await (const key of this.inner.queryKeys({ prefix: q.prefix }, options)) {
        if (!PeerStoreCache.isPeerKey(key)) keys.push(key)
      }
    }
    for (const f of q.filters ?? []) keys = keys.filter(f)
    for (const o of q.orders ?? []) keys = [...keys].sort(o)
    yield * keys.slice(q.offset ?? 0, q.limit == null ? undefined : (q.offset ?? 0) + q.limit)
  }
}
