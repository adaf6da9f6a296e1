import assert from 'node:assert/strict'
import fs from 'node:fs/promises'
import { LevelDatastore } from 'datastore-level'
import { Key } from 'interface-datastore'
import { PeerStoreCache } from '../../src/routing/peer-store-cache.ts'
import { tempDir } from '../helpers/cli.ts'

describe('peer-store write-back cache', () => {
  let dir: string
  let level: LevelDatastore
  beforeEach(async () => {
    dir = await tempDir()
    level = new LevelDatastore(dir)
    await level.open()
  })
  afterEach(async () => {
    await level.close()
    await fs.rm(dir, { recursive: true, force: true })
  })

  const bytes = (s: string): Uint8Array => new TextEncoder().encode(s)
  const text = (b: Uint8Array): string => new TextDecoder().decode(b)

  it('keeps peer records in memory and writes them back on flush; other keys go straight through', async () => {
    const cache = new PeerStoreCache(level)
    cache.start()
    await cache.put(new Key('/peers/a'), bytes('1'))
    await cache.put(new Key('/shoal/dht/x'), bytes('record'))
    assert.equal(text(await cache.get(new Key('/peers/a'))), '1')
    await assert.rejects(level.get(new Key('/peers/a')), { name: 'NotFoundError' }, 'not written yet')
    assert.equal(text(await level.get(new Key('/shoal/dht/x'))), 'record')
    cache.stop()
    await cache.afterStop()
    assert.equal(text(await level.get(new Key('/peers/a'))), '1')
  })

  it('reads through once, remembers absent keys, and deletes on flush', async () => {
    await level.put(new Key('/peers/b'), bytes('old'))
    const cache = new PeerStoreCache(level)
    assert.equal(text(await cache.get(new Key('/peers/b'))), 'old')
    assert.equal(await cache.has(new Key('/peers/none')), false)
    await assert.rejects(cache.get(new Key('/peers/none')), { name: 'NotFoundError' })
    await cache.delete(new Key('/peers/b'))
    assert.equal(await cache.has(new Key('/peers/b')), false)
    await cache.flush()
    assert.equal(await level.has(new Key('/peers/b')), false)
  })

  it('answers peer queries from memory merged with what LevelDB held', async () => {
    await level.put(new Key('/peers/c'), bytes('c'))
    await level.put(new Key('/peers/d'), bytes('d'))
    const cache = new PeerStoreCache(level)
    await cache.put(new Key('/peers/e'), bytes('e'))
    await cache.delete(new Key('/peers/d'))
    const keys = []
    for await (const { key } of cache.query({ prefix: '/peers/' })) keys.push(key.toString())
    assert.deepEqual(keys.sort(), ['/peers/c', '/peers/e'])
    const limited = []
    for await (const { key } of cache.query({ prefix: '/peers/', filters: [p => p.key.toString() !== '/peers/c'], limit: 1 })) limited.push(key.toString())
    assert.deepEqual(limited, ['/peers/e'])
  })

  it('holds at most maxEntries read and maxEntries dirty keys, negative lookups included, and loses nothing it evicts', async () => {
    const cache = new PeerStoreCache(level, { maxEntries: 100 })
    for (let i = 0; i < 1_000; i++) {
      await cache.put(new Key(`/peers/p${i}`), bytes(String(i)))
      assert.ok(cache.pendingWrites <= 100, `${cache.pendingWrites} dirty keys`)
    }
    for (let i = 0; i < 1_000; i++) assert.equal(await cache.has(new Key(`/peers/absent${i}`)), false)
    assert.ok(cache.cachedEntries <= 100, `${cache.cachedEntries} cached keys`)
    for (let i = 0; i < 1_000; i += 97) assert.equal(text(await cache.get(new Key(`/peers/p${i}`))), String(i))
    let count = 0
    for await (const _ of cache.query({ prefix: '/peers/' })) count++
    assert.equal(count, 1_000)
  })

})
