/**
 * Imports through the content store, whose raw leaves are hashed and
 * written by worker threads (src/store/leaf-workers.ts): the same root CID
 * and the same blocks as Helia's importer, every block where the blockstore
 * looks for it and verifying, repeated chunks stored and counted once, no
 * temp files left behind.
 */
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import fs from 'node:fs/promises'
import path from 'node:path'
import { defaultLogger } from '@libp2p/logger'
import { unixfs } from '@helia/unixfs'
import { MemoryBlockstore } from 'blockstore-core/memory'
import { MemoryDatastore } from 'datastore-core/memory'
import { fixedSize } from 'ipfs-unixfs-importer/chunker'
import { CID } from 'multiformats/cid'
import { FsBlockstore } from '../../src/store/blockstore.ts'
import { ContentStore } from '../../src/store/content-store.ts'
import { tempDir } from '../helpers/cli.ts'
import { pieces } from '../helpers/bytes.ts'

const KiB = 1024
const MiB = 1024 * KiB

async function heliaImport (bytes: Uint8Array, chunkSize: number): Promise<{ cid: CID, blockstore: MemoryBlockstore }> {
  const blockstore = new MemoryBlockstore()
  const cid = await unixfs({ blockstore }).addBytes(bytes, { chunker: fixedSize({ chunkSize }) })
  return { cid, blockstore }
}

async function toBytes (value: Uint8Array | AsyncIterable<Uint8Array> | Iterable<Uint8Array>): Promise<Uint8Array> {
  if (value instanceof Uint8Array) return value
  const parts: Uint8Array[] = []
  for await (const p of value) parts.push(p)
  return Buffer.concat(parts)
}


describe('import through the content store (leaf workers)', function () {
  this.timeout(120_000)
  let dir: string
  beforeEach(async () => { dir = await tempDir('shoal-import-') })
  afterEach(async () => { await fs.rm(dir, { recursive: true, force: true }) })

  /** A content store, and its blockstore for the test to look at the block files. */
  interface Opened { store: ContentStore, blockstore: FsBlockstore }

  async function openStore (sync: boolean): Promise<Opened> {
    const blockstore = new FsBlockstore({}, { dir: path.join(dir, `blocks-${sync}-${Math.random()}`), sync })
    const store = new ContentStore({ datastore: new MemoryDatastore(), blockstore, logger: defaultLogger() })
    await store.open()
    return { store, blockstore }
  }

  /** Every block the store holds, by multihash, with its bytes read back (and verified). */
  async function storedBlocks (blockstore: FsBlockstore): Promise<Map<string, { cid: CID, bytes: Uint8Array }>> {
    const out = new Map<string, { cid: CID, bytes: Uint8Array }>()
    for await (const { cid } of blockstore.list()) out.set(multihashKey(cid), { cid, bytes: await blockstore.get(cid) })
    return out
  }

  // Helia's memory blockstore keys blocks by multihash and lists them as raw CIDs
  function multihashKey (cid: CID): string {
    return Buffer.from(cid.multihash.bytes).toString('hex')
  }

  async function assertSameAsHelia ({ store, blockstore }: Opened, bytes: Uint8Array, chunkSize: number, how: 'file' | 'stream'): Promise<void> {
    const before = await storedBlocks(blockstore)
    let result
    if (how === 'file') {
      const file = path.join(dir, 'input')
      await fs.writeFile(file, bytes)
      result = await store.shareFile(file, { chunkSize })
    } else {
      result = await store.shareStream(pieces(bytes), { chunkSize })
    }
    const ref = await heliaImport(bytes, chunkSize)
    assert.equal(result.cid.toString(), ref.cid.toString(), `${how}: root CID of ${bytes.length} bytes, chunk ${chunkSize}`)
    assert.equal(result.size, bytes.length)
    const after = await storedBlocks(blockstore)
    let refBlocks = 0
    for await (const { cid, bytes: block } of ref.blockstore.getAll()) {
      refBlocks++
      const ours = after.get(multihashKey(cid))
      assert.ok(ours != null, `${how}: block ${cid} is stored`)
      assert.deepEqual(Buffer.from(ours.bytes), Buffer.from(await toBytes(block)))
      await fs.access(blockstore.pathOf(ours.cid))
    }
    // the reference stores an empty chunk twice under one key: compare distinct blocks
    const added = [...after.keys()].filter(k => !before.has(k)).length
    assert.ok(added <= refBlocks && after.size >= refBlocks, `${how}: ${added} new blocks for ${refBlocks} in the reference`)
    assert.equal(store.usage().blocks, after.size, 'the store counts what is on disk')
  }

  for (const sync of [true, false]) {
    it(`same root CID and blocks as Helia, by path and by stream (sync ${sync})`, async () => {
      const opened = await openStore(sync)
      try {
        for (const how of ['file', 'stream'] as const) {
          for (const size of [0, 1, MiB, MiB + 1, 3 * MiB + 12_345]) await assertSameAsHelia(opened, randomBytes(size), MiB, how)
          // 20,000: a chunk size that is no multiple of the filesystem's 4 KiB blocks
          for (const chunkSize of [16 * KiB, 20_000, 256 * KiB, 4 * MiB]) await assertSameAsHelia(opened, randomBytes(3 * chunkSize + 12_345), chunkSize, how)
          // 1025 leaves: two levels of nodes
          await assertSameAsHelia(opened, randomBytes(1025 * 16 * KiB + 7), 16 * KiB, how)
        }
      } finally {
        await opened.store.close()
      }
    })
  }

  it('a repeated chunk is stored and counted once; sharing again writes nothing', async () => {
    const { store, blockstore } = await openStore(true)
    try {
      const chunk = randomBytes(256 * KiB)
      const file = path.join(dir, 'repeats')
      // 16 equal chunks and a different tail: workers hash equal chunks at the same time
      await fs.writeFile(file, Buffer.concat([...new Array(16).fill(chunk), randomBytes(100)]))
      const first = await store.shareFile(file, { chunkSize: 256 * KiB })
      assert.equal(first.chunks, 17)
      const usage = store.usage()
      // the leaf, the tail and the root node
      assert.equal(usage.blocks, 3)
      assert.equal(usage.bytes, 256 * KiB + 100 + (await blockstore.sizeOf(first.cid))!)
      const names = await fs.readdir(blockstore.dir, { recursive: true })
      assert.deepEqual(names.filter(n => n.endsWith('.tmp')), [], 'no temp file left')
      const again = await store.shareFile(file, { chunkSize: 256 * KiB })
      assert.equal(again.cid.toString(), first.cid.toString())
      assert.deepEqual(store.usage(), usage)
    } finally {
      await store.close()
    }
  })
})
