/** PeerRateLimit: a token bucket per peer, and a bounded number of buckets. */
import assert from 'node:assert/strict'
import { PeerRateLimit } from '../../src/wire/peer-rate-limit.ts'

describe('per-peer rate limit', () => {
  it('allows a burst, then the rate, per peer', () => {
    const limit = new PeerRateLimit({ perSecond: 10, burst: 20 }, 100)
    assert.equal(limit.waitMs('a', 20, 0), 0)
    limit.take('a', 20, 0)
    assert.equal(limit.waitMs('a', 5, 0), 500, 'empty: 5 units take half a second at 10/s')
    assert.equal(limit.waitMs('b', 20, 0), 0, 'another peer has its own bucket')
    assert.equal(limit.waitMs('a', 5, 500), 0)
    assert.equal(limit.waitMs('a', 100, 10_000), 0, 'more than the burst waits only for a full bucket')
  })

  it('keeps at most maxPeers buckets, forgetting the least recently used', () => {
    const limit = new PeerRateLimit({ perSecond: 1, burst: 1 }, 2)
    limit.take('a', 1, 0)
    limit.take('b', 1, 0)
    limit.take('c', 1, 0)
    assert.equal(limit.waitMs('a', 1, 0), 0, 'a was forgotten')
    assert.ok(limit.waitMs('c', 1, 0) > 0)
  })
})
