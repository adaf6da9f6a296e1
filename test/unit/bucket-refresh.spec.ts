/**
 * The far-bucket refresh that ends a Kademlia join (bucket-refresh.ts):
 * which buckets are due, the random key it looks up in each, and that a
 * refresh whose lookup failed is tried again next time.
 */
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { BucketRefresh, BUCKET_REFRESH_INTERVAL_MS, keyInBucket, REFRESH_BELOW } from '../../src/routing/kademlia/bucket-refresh.ts'
import { commonPrefixLength, kadIdOfKey } from '../../src/routing/kademlia/kad-distance.ts'

/** A keyspace ID sharing exactly `prefix` leading bits with `self`. */
function idInBucket (self: Uint8Array, prefix: number): Uint8Array {
  const id = Uint8Array.from(randomBytes(32))
  for (let bit = 0; bit <= prefix; bit++) {
    const byte = bit >> 3
    const mask = 0x80 >> (bit & 7)
    const want = bit < prefix ? self[byte] & mask : (self[byte] & mask) ^ mask
    id[byte] = (id[byte] & ~mask) | want
  }
  return id
}

describe('Kademlia bucket refresh', () => {
  const self = Uint8Array.from(randomBytes(32))

  it('a random key for bucket i shares exactly i leading bits with this peer', () => {
    for (const prefix of [0, 1, 5, 12]) {
      for (let i = 0; i < 5; i++) assert.equal(commonPrefixLength(self, kadIdOfKey(keyInBucket(self, prefix))), prefix)
    }
  })

  it('refreshes the buckets farther than the nearest neighbour that hold fewer than REFRESH_BELOW peers', () => {
    // nearest neighbour in bucket 6; bucket 2 full enough, bucket 4 one short
    const known = [
      ...Array.from({ length: REFRESH_BELOW }, () => idInBucket(self, 2)),
      ...Array.from({ length: REFRESH_BELOW - 1 }, () => idInBucket(self, 4)),
      idInBucket(self, 6)
    ]
    const refresh = new BucketRefresh({ selfKadId: self, knownKadIds: () => known, lookup: async () => [] })
    assert.deepEqual(refresh.due(0), [0, 1, 3, 4, 5])
  })

  it('looks up a key in each due bucket, and not again until the interval has passed', async () => {
    let now = 1_000
    const known = [idInBucket(self, 3)]
    const asked: number[] = []
    const refresh = new BucketRefresh({
      selfKadId: self,
      knownKadIds: () => known,
      lookup: async key => { asked.push(commonPrefixLength(self, kadIdOfKey(key))) },
      now: () => now
    })
    assert.deepEqual(await refresh.run(), [0, 1, 2])
    assert.deepEqual(asked.sort(), [0, 1, 2])
    assert.deepEqual(await refresh.run(), [], 'refreshed a moment ago')
    now += BUCKET_REFRESH_INTERVAL_MS
    assert.deepEqual(await refresh.run(), [0, 1, 2])
  })

  it('a bucket whose lookup failed is due again at the next run', async () => {
    let failing = true
    const known = [idInBucket(self, 2)]
    const refresh = new BucketRefresh({
      selfKadId: self,
      knownKadIds: () => known,
      lookup: async key => {
        if (failing && commonPrefixLength(self, kadIdOfKey(key)) === 1) throw new Error('no peer answered')
      }
    })
    assert.deepEqual(await refresh.run(), [0])
    failing = false
    assert.deepEqual(await refresh.run(), [1])
  })

  it('stops when its signal aborts', async () => {
    const controller = new AbortController()
    const refresh = new BucketRefresh({
      selfKadId: self,
      knownKadIds: () => [idInBucket(self, 4)],
      lookup: async () => { controller.abort(new Error('stopping')) }
    })
    await assert.rejects(refresh.run({ signal: controller.signal }), /stopping/)
  })
})
