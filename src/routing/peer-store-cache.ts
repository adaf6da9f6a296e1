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
 * How: keys under `/peers/` are read through to LevelDB once and kept in
 * an LRU map (an absent key is remembered as absent); writes and deletes go
 * to a map of dirty keys, written to LevelDB in one batch every
 * `flushIntervalMs`, when the dirty map reaches `maxEntries`, and when libp2p
 * stops (`afterStop`), so a restarted peer still finds the peers it knew.
 * Every other key (DHT records, providers, ...) goes straight to LevelDB,
 * unchanged. A crash loses at most the last interval's peer-store updates,
 * which are only hints.
 *
 * Bounded: any DHT reply can name thousands of peers, and each becomes a
 * peer record, so memory holds at most `maxEntries` read-cached keys, at most
 * `maxEntries` dirty ones (a write that finds the dirty map full waits for
 * the flush it starts) and the batch being written. Evicted keys are read
 * from LevelDB again when asked for.
 */
import { Key, type Batch, type Datastore, type KeyQuery, type Pair, type Query } from 'interface-datastore'
import { NotFoundError, type AbortOptions, type Startable } from '@libp2p/interface'

const PEERS = '/peers/'
export const PEER_STORE_FLUSH_INTERVAL_MS = 5_000
/**
 * Peer records kept in memory, read-cached and dirty each: several times
 * what a peer of a 100-peer swarm or a busy public peer knows.
 */
export const PEER_STORE_CACHE_MAX_ENTRIES = 4_096

export interface PeerStoreCacheInit {
  flushIntervalMs?: number
  /** Default PEER_STORE_CACHE_MAX_ENTRIES. */
  maxEntries?: number
  onError?: (err: unknown) => void
}

/**
 * A missing key, as datastores report it: an error named NotFoundError
 * (interface-store's class from LevelDB; libp2p's peer store checks the
 * name too). Not one of Shoal's errors, and not always the same class, so
 * it is matched by its name.
 */
const isNotFound = (err: unknown): boolean => (err as { name?: string })?.name === 'NotFoundError'

/** Key string -> value, or null: known not to exist / deleted. */
type Entries = Map<string, Uint8Array | null>

export class PeerStoreCache implements Datastore, Startable {
  private readonly inner: Datastore
  private readonly init: PeerStoreCacheInit
  private readonly maxEntries: number
  /** What LevelDB holds, least recently used first. */
  private readonly clean: Entries = new Map()
  /** Writes not yet given to LevelDB. */
  private dirty: Entries = new Map()
  /** Writes of the batch LevelDB is committing now. */
  private writing: Entries = new Map()
  private timer?: ReturnType<typeof setInterval>
  private flushing: Promise<void> = Promise.resolve()

  constructor (inner: Datastore, init: PeerStoreCacheInit = {}) {
    this.inner = inner
    this.init = init
    this.maxEntries = init.maxEntries ?? PEER_STORE_CACHE_MAX_ENTRIES
  }

  /** Peer keys held in memory as read from LevelDB (at most `maxEntries`). */
  get cachedEntries (): number {
    return this.clean.size
  }

  /** Peer keys written but not yet on disk (at most `maxEntries`, plus the batch being written). */
  get pendingWrites (): number {
    return this.dirty.size + this.writing.size
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
      this.writing = this.dirty
      this.dirty = new Map()
      const batch = this.inner.batch()
      for (const [k, value] of this.writing) {
        if (value == null) batch.delete(new Key(k))
        else batch.put(new Key(k), value)
      }
      const written = this.writing
      try {
        await batch.commit()
        for (const [k, value] of written) {
          if (!this.dirty.has(k)) this.remember(k, value)
        }
      } catch (err) {
        for (const [k, value] of written) {
          if (!this.dirty.has(k)) this.dirty.set(k, value)
        }
        throw err
      } finally {
        this.writing = new Map()
      }
    })
    return this.flushing
  }

  private static isPeerKey (key: Key | string): boolean {
    return key.toString().startsWith(PEERS)
  }

  /** Caches what LevelDB holds for `k`, most recently used, evicting the least. */
  private remember (k: string, value: Uint8Array | null): void {
    this.clean.delete(k)
    this.clean.set(k, value)
    for (const oldest of this.clean.keys()) {
      if (this.clean.size <= this.maxEntries) break
      this.clean.delete(oldest)
    }
  }

  private pending (k: string): Uint8Array | null | undefined {
    return this.dirty.has(k) ? this.dirty.get(k) : this.writing.get(k)
  }

  private async lookup (key: Key, options?: AbortOptions): Promise<Uint8Array | null> {
    const k = key.toString()
    const pending = this.pending(k)
    if (pending !== undefined) return pending
    const cached = this.clean.get(k)
    if (cached !== undefined) {
      this.remember(k, cached)
      return cached
    }
    let value: Uint8Array | null
    try {
      value = await this.inner.get(key, options)
    } catch (err) {
      if (!isNotFound(err)) throw err
      value = null
    }
    // a write may have landed while LevelDB was read: it wins
    const written = this.pending(k)
    if (written !== undefined) return written
    this.remember(k, value)
    return value
  }

  private async write (key: Key, value: Uint8Array | null): Promise<void> {
    const k = key.toString()
    this.clean.delete(k)
    this.dirty.set(k, value)
    // a full dirty map waits for its flush: a flood of writes cannot outgrow it
    if (this.dirty.size >= this.maxEntries) await this.flush()
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
    await this.write(key, value)
    return key
  }

  async delete (key: Key, options?: AbortOptions): Promise<void> {
    if (!PeerStoreCache.isPeerKey(key)) return this.inner.delete(key, options)
    await this.write(key, null)
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
        for (const [key, value] of peerOps) await this.write(key, value)
      }
    }
  }

  /** Can a query with this prefix match a peer key / a non-peer key? */
  private static reach (prefix = ''): { peers: boolean, others: boolean } {
    return { peers: prefix.startsWith(PEERS) || PEERS.startsWith(prefix), others: !prefix.startsWith(PEERS) }
  }

  /**
   * Every pair under `prefix`: LevelDB's, with the writes it does not have
   * yet laid over them (taken before LevelDB is read, so a flush finishing
   * meanwhile changes nothing).
   */
  private async pairs (prefix: string | undefined, options?: AbortOptions): Promise<Pair[]> {
    const overlay: Entries = new Map([...this.writing, ...this.dirty])
    const pairs: Pair[] = []
    for await (const pair of this.inner.query({ prefix }, options)) {
      const k = pair.key.toString()
      if (!overlay.has(k)) pairs.push(pair)
    }
    for (const [k, value] of overlay) {
      if (value != null && k.startsWith(prefix ?? '')) pairs.push({ key: new Key(k), value })
    }
    return pairs
  }

  async * query (q: Query, options?: AbortOptions): AsyncGenerator<Pair> {
    if (!PeerStoreCache.reach(q.prefix).peers) {
      yield * this.inner.query(q, options)
      return
    }
    let pairs = await this.pairs(q.prefix, options)
    for (const f of q.filters ?? []) pairs = pairs.filter(f)
    for (const o of q.orders ?? []) pairs = [...pairs].sort(o)
    yield * pairs.slice(q.offset ?? 0, q.limit == null ? undefined : (q.offset ?? 0) + q.limit)
  }

  async * queryKeys (q: KeyQuery, options?: AbortOptions): AsyncGenerator<Key> {
    if (!PeerStoreCache.reach(q.prefix).peers) {
      yield * this.inner.queryKeys(q, options)
      return
    }
    let keys = (await this.pairs(q.prefix, options)).map(p => p.key)
    for (const f of q.filters ?? []) keys = keys.filter(f)
    for (const o of q.orders ?? []) keys = [...keys].sort(o)
    yield * keys.slice(q.offset ?? 0, q.limit == null ? undefined : (q.offset ?? 0) + q.limit)
  }
}
