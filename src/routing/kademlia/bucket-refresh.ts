/**
 * The last step of a Kademlia join (Maymounkov and Mazières, section 2.3):
 * after its self-lookup a peer "refreshes all k-buckets further away than
 * its closest neighbor", with a lookup of a random key in each one's range.
 *
 * Why: a self-lookup only meets the peers near this one. The far buckets
 * (the half of the keyspace that differs in the first bit, the quarter that
 * differs in the second, ...) fill only with the peers that happened to
 * dial this one, and in a swarm joined through a few seeds some peers ended
 * with a far bucket empty while its region held dozens of peers
 * (docs/overlays.md). A lookup for a key in such a region, from this peer or
 * through it, ends at the closest peers it knows and misses the true k. A
 * refresh lookup connects to peers in the region on its way to a random key
 * there: both ends add each other to their routing tables.
 *
 * Bucket i holds the peers whose keyspace ID shares exactly i leading bits
 * with this peer's. A bucket is refreshed when it holds fewer than
 * REFRESH_BELOW peers and was not refreshed in the last
 * BUCKET_REFRESH_INTERVAL_MS.
 */
import { randomBytes } from 'node:crypto'
import type { AbortOptions } from '@libp2p/interface'
import { mapConcurrent } from '../../utils/wait.ts'
import { commonPrefixLength, kadIdOfKey } from './kad-distance.ts'

/** Refresh lookups in flight at once (each keeps its own ALPHA queries out). */
export const REFRESH_CONCURRENCY = 3
/**
 * A bucket with at least this many peers is not refreshed: only empty ones
 * are. A lookup into a region it knows one peer of still starts there, and
 * its other first queries go to peers that know the region too. Refreshing
 * every bucket with fewer than ALPHA peers left none thin, but each
 * refresh lookup opens connections, and a 1,000-peer join through seeds
 * took much longer for no lookup more found right (docs/overlays.md).
 */
export const REFRESH_BELOW = 1
/** A bucket refreshed this recently is not refreshed again. */
export const BUCKET_REFRESH_INTERVAL_MS = 10 * 60_000
/**
 * Deepest bucket refreshed: finding a key that shares i leading bits with
 * this peer takes about 2^(i+1) hashes, and a network needs about 2^i x k
 * peers before bucket i is one its nearest neighbour lies beyond.
 */
export const MAX_REFRESH_PREFIX = 16
/** Peers a refresh lookup looks for (the peers it asks on the way are what fills the bucket). */
export const REFRESH_LOOKUP_COUNT = 3

export interface BucketRefreshComponents {
  /** This peer's keyspace ID. */
  selfKadId: Uint8Array
  /** Keyspace IDs of the routing table's peers (not this peer). */
  knownKadIds: () => Uint8Array[]
  /** A lookup of a key: the overlay's iterative lookup, which fills the table as it goes. */
  lookup: (key: Uint8Array, count: number, options: AbortOptions) => Promise<unknown>
  now?: () => number
}

export class BucketRefresh {
  private readonly components: BucketRefreshComponents
  /** When each bucket (by shared prefix length) was last refreshed. */
  private readonly refreshedAt = new Map<number, number>()

  constructor (components: BucketRefreshComponents) {
    this.components = components
  }

  /**
   * Refreshes every bucket farther than this peer's nearest known neighbour
   * that holds fewer than REFRESH_BELOW peers and was not refreshed lately.
   * Resolves with the buckets refreshed; a lookup that fails leaves its
   * bucket for the next run.
   */
  async run (options: AbortOptions = {}): Promise<number[]> {
    const now = this.components.now ?? Date.now
    const buckets = this.due(now())
    const refreshed: number[] = []
    await mapConcurrent(buckets, REFRESH_CONCURRENCY, async prefix => {
      options.signal?.throwIfAborted()
      try {
        await this.components.lookup(keyInBucket(this.components.selfKadId, prefix), REFRESH_LOOKUP_COUNT, options)
        this.refreshedAt.set(prefix, now())
        refreshed.push(prefix)
      } catch (err) {
        if (options.signal?.aborted === true) throw err
      }
    })
    return refreshed.sort((a, b) => a - b)
  }

  /** Buckets to refresh now, by shared prefix length. */
  due (now: number): number[] {
    const { selfKadId } = this.components
    const counts = new Map<number, number>()
    let nearest = -1
    for (const kadId of this.components.knownKadIds()) {
      const prefix = commonPrefixLength(selfKadId, kadId)
      counts.set(prefix, (counts.get(prefix) ?? 0) + 1)
      nearest = Math.max(nearest, prefix)
    }
    const due: number[] = []
    for (let prefix = 0; prefix < Math.min(nearest, MAX_REFRESH_PREFIX + 1); prefix++) {
      if ((counts.get(prefix) ?? 0) >= REFRESH_BELOW) continue
      const at = this.refreshedAt.get(prefix)
      if (at != null && now - at < BUCKET_REFRESH_INTERVAL_MS) continue
      due.push(prefix)
    }
    return due
  }

  clear (): void {
    this.refreshedAt.clear()
  }
}

/**
 * A random key whose keyspace ID shares exactly `prefix` leading bits with
 * `selfKadId`: random keys are hashed until one lands in the bucket, which
 * takes 2^(prefix+1) tries on average.
 */
export function keyInBucket (selfKadId: Uint8Array, prefix: number): Uint8Array {
  if (prefix > MAX_REFRESH_PREFIX) throw new RangeError(`no random key for a bucket deeper than ${MAX_REFRESH_PREFIX} bits`)
  for (;;) {
    const key = randomBytes(32)
    if (commonPrefixLength(selfKadId, kadIdOfKey(key)) === prefix) return key
  }
}
