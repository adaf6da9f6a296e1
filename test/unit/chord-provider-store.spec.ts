import assert from 'node:assert/strict'
import { ProviderStore } from '../../src/routing/chord/provider-store.ts'

describe('chord provider records', () => {
  it('keeps a provider until its record expires, and renews it when announced again', () => {
    let now = 1_000
    const store = new ProviderStore(100, () => now)
    const key = Uint8Array.from([1, 2, 3])
    assert.ok(store.add(key, { id: 'a', addrs: [] }))
    now += 60
    assert.ok(store.add(key, { id: 'b', addrs: [] }))
    assert.deepEqual(store.get(key).map(p => p.id), ['a', 'b'])
    now += 50
    // a's record is 110 ms old: gone; b's is 50
    assert.deepEqual(store.get(key).map(p => p.id), ['b'])
    store.add(key, { id: 'b', addrs: [] })
    now += 90
    assert.deepEqual(store.get(key).map(p => p.id), ['b'])
    now += 20
    assert.deepEqual(store.get(key), [])
    store.prune()
    assert.equal(store.size, 0)
    assert.deepEqual(store.all(), [])
  })
})
