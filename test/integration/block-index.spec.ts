/**
 * The block index on a real disk: `holdsBlocks` (a remote `has`) answers
 * from it without reading a block, it follows shares, fetches and
 * removals (a leaf of two DAGs stays held while one is), and a store
 * whose index is missing or left half-removed rebuilds it when it opens.
 */
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import fs from 'node:fs/promises'
import path from 'node:path'
import { defaultLogger } from '@libp2p/logger'
import { LevelDatastore } from 'datastore-level'
import { Key } from 'interface-datastore'
import type { CID } from 'multiformats/cid'
import { cidOf, RAW_CODE } from '../../src/content/cid.ts'
import { FsBlockstore } from '../../src/store/blockstore.ts'
import { ContentStore } from '../../src/store/content-store.ts'
import { tempDir } from '../helpers/cli.ts'

const KiB = 1024

describe('block index', function () {
  this.timeout(60_000)
  let dir: string
  beforeEach(async () => { dir = await tempDir('shoal-index-') })
  afterEach(async () => { await fs.rm(dir, { recursive: true, force: true }) })

  async function openStore (): Promise<{ store: ContentStore, blockstore: FsBlockstore, datastore: LevelDatastore, reads: () => number, close: () => Promise<void> }> {
    const datastore = new LevelDatastore(path.join(dir, 'datastore'))
    await datastore.open()
    const blockstore = new FsBlockstore({}, { dir: path.join(dir, 'blocks') })
    let reads = 0
    const get = blockstore.get.bind(blockstore)
    blockstore.get = async (...args) => { reads++; return get(...args) }
    const store = new ContentStore({ datastore, blockstore, logger: defaultLogger() }, { gcIntervalMs: 0 })
    await store.open()
    return { store, blockstore, datastore, reads: () => reads, close: async () => { await store.close(); await datastore.close() } }
  }

  async function share (store: ContentStore, data: Buffer, name: string): Promise<{ root: CID, leaves: CID[] }> {
    await fs.writeFile(path.join(dir, name), data)
    const { cid } = await store.shareFile(path.join(dir, name), { chunkSize: 16 * KiB })
    return { root: cid, leaves: (await store.dagCids(cid)).filter(c => c.code === RAW_CODE) }
  }

  it('answers has from the index, without reading a block, and follows shares, fetches and removals', async () => {
    const { store, reads, close } = await openStore()
    const a = randomBytes(20 * 16 * KiB)
    const first = await share(store, a, 'a')
    // the second file starts with the first one's bytes: the same leaves, another DAG
    const second = await share(store, Buffer.concat([a, randomBytes(16 * KiB)]), 'b')
    const stranger = randomBytes(1000)
    const before = reads()
    assert.deepEqual(await store.holdsBlocks([first.root, ...first.leaves, cidOf(RAW_CODE, stranger)]), [true, ...first.leaves.map(() => true), false])
    assert.equal(reads() - before, 0, 'no block read')

    await store.remove(first.root)
    assert.deepEqual(await store.holdsBlocks(first.leaves), first.leaves.map(() => true), 'still held by the second DAG')
    await store.remove(second.root)
    assert.deepEqual(await store.holdsBlocks(second.leaves), second.leaves.map(() => false))

    // a fetched DAG is indexed when it commits
    const leaf = randomBytes(5000)
    const leafCid = cidOf(RAW_CODE, leaf)
    const session = store.openFetch()
    await (await session.storeBlock(leafCid, leaf)).stored
    assert.deepEqual(await store.holdsBlocks([leafCid]), [false], 'not before the commit')
    await session.commit(leafCid, { size: leaf.length, blocks: 1 })
    session.close()
    assert.deepEqual(await store.holdsBlocks([leafCid]), [true])
    await close()
  })

  it('rebuilds a missing index when the store opens, and clears what a crash left of a removed DAG', async () => {
    let opened = await openStore()
    const held = await share(opened.store, randomBytes(10 * 16 * KiB), 'held')
    await opened.close()
    // the index gone (a repo from before it), and a marker of a DAG no longer held
    const datastore = new LevelDatastore(path.join(dir, 'datastore'))
    await datastore.open()
    for await (const key of datastore.queryKeys({ prefix: '/shoal/' })) {
      if (/^\/shoal\/(block-dags|dag-blocks|dag-indexed)\//.test(key.toString())) await datastore.delete(key)
    }
    await datastore.put(new Key('/shoal/dag-indexed/bafkgone'), new Uint8Array(0))
    await datastore.put(new Key('/shoal/block-dags/bafkleaf/bafkgone'), new Uint8Array(0))
    await datastore.put(new Key('/shoal/dag-blocks/bafkgone/bafkleaf'), new Uint8Array(0))
    await datastore.close()

    opened = await openStore()
    const before = opened.reads()
    assert.deepEqual(await opened.store.holdsBlocks(held.leaves), held.leaves.map(() => true))
    assert.equal(opened.reads() - before, 0)
    const left: string[] = []
    for await (const key of opened.datastore.queryKeys({ prefix: '/shoal/' })) if (key.toString().includes('bafkgone')) left.push(key.toString())
    assert.deepEqual(left, [])
    await opened.close()
  })
})
