/**
 * Shoal's importer against the reference: Helia's @helia/unixfs with its
 * default settings (ipfs-unixfs-importer underneath). Same root CID, and the
 * same set of blocks with the same bytes.
 */
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { unixfs } from '@helia/unixfs'
import { MemoryBlockstore } from 'blockstore-core/memory'
import { fixedSize } from 'ipfs-unixfs-importer/chunker'
import { balanced } from 'ipfs-unixfs-importer/layout'
import { streamChunks } from '../../src/content/chunker.ts'
import { importChunks } from '../../src/content/importer.ts'
import { readFile } from '../../src/content/dag-reader.ts'
import * as dagPb from '@ipld/dag-pb'
import { CID } from 'multiformats/cid'
import { pieces } from '../helpers/bytes.ts'

const KiB = 1024
const MiB = 1024 * KiB


async function shoalImport (bytes: Uint8Array, chunkSize: number, maxChildren?: number): Promise<{ cid: CID, blocks: Map<string, Uint8Array>, chunks: number }> {
  const blocks = new Map<string, Uint8Array>()
  const result = await importChunks(streamChunks(pieces(bytes), chunkSize), async block => {
    blocks.set(block.cid.toString(), block.bytes)
  }, { maxChildren })
  return { cid: result.cid, blocks, chunks: result.chunks }
}

async function heliaImport (bytes: Uint8Array, chunkSize: number, maxChildren?: number): Promise<{ cid: CID, blockstore: MemoryBlockstore }> {
  const blockstore = new MemoryBlockstore()
  const fs = unixfs({ blockstore })
  const cid = await fs.addByteStream(pieces(bytes), {
    chunker: fixedSize({ chunkSize }),
    ...(maxChildren != null ? { layout: balanced({ maxChildrenPerNode: maxChildren }) } : {})
  })
  return { cid, blockstore }
}

async function assertSameDag (bytes: Uint8Array, chunkSize: number, maxChildren?: number): Promise<CID> {
  const ours = await shoalImport(bytes, chunkSize, maxChildren)
  const ref = await heliaImport(bytes, chunkSize, maxChildren)
  assert.equal(ours.cid.toString(), ref.cid.toString(), `root CID for ${bytes.length} bytes, chunk ${chunkSize}`)
  for (const [cid, block] of ours.blocks) {
    const refBlock = await ref.blockstore.get(CID.parse(cid))
    assert.deepEqual(Buffer.from(await toBytes(refBlock)), Buffer.from(block), `block ${cid}`)
  }
  let refCount = 0
  for await (const _ of ref.blockstore.getAll()) refCount++
  // The reference stores an empty chunk twice under one key; count distinct.
  assert.equal(ours.blocks.size, refCount, 'same number of distinct blocks')
  return ours.cid
}

async function toBytes (value: Uint8Array | AsyncIterable<Uint8Array> | Iterable<Uint8Array>): Promise<Uint8Array> {
  if (value instanceof Uint8Array) return value
  const parts: Uint8Array[] = []
  for await (const p of value) parts.push(p)
  return Buffer.concat(parts)
}

describe('content import: same DAG as Helia/IPFS', function () {
  this.timeout(120_000)

  it('empty file: the CID of the empty raw block', async () => {
    const cid = await assertSameDag(new Uint8Array(0), MiB)
    assert.equal(cid.toString(), 'bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku')
  })

  it('1 byte, exactly one chunk: the raw leaf itself', async () => {
    const one = await assertSameDag(randomBytes(1), MiB)
    assert.equal(one.code, 0x55)
    const chunk = await assertSameDag(randomBytes(MiB), MiB)
    assert.equal(chunk.code, 0x55)
  })

  it('one chunk + 1 byte: a dag-pb root over two leaves', async () => {
    const cid = await assertSameDag(randomBytes(MiB + 1), MiB)
    assert.equal(cid.code, 0x70)
  })

  it('1024 and 1025 chunks (two levels) with 16 KiB chunks', async () => {
    await assertSameDag(randomBytes(1024 * 16 * KiB), 16 * KiB)
    await assertSameDag(randomBytes(1025 * 16 * KiB), 16 * KiB)
    await assertSameDag(randomBytes(1025 * 16 * KiB + 7), 16 * KiB)
  })

  it('other chunk sizes: 16 KiB, 256 KiB, 4 MiB', async () => {
    for (const chunkSize of [16 * KiB, 256 * KiB, 4 * MiB]) {
      await assertSameDag(randomBytes(3 * chunkSize + 12_345), chunkSize)
    }
  })

  it('deeper trees (3 and 4 levels) with a small fan-out, every leaf count', async () => {
    for (let leaves = 1; leaves <= 30; leaves++) {
      await assertSameDag(randomBytes(leaves * 16 * KiB - (leaves % 2)), 16 * KiB, 3)
    }
  })

  it('equals the file entry of Helia\'s addFile (which wraps it in a directory)', async () => {
    for (const size of [1, MiB + 1]) {
      const bytes = randomBytes(size)
      const ours = await shoalImport(bytes, MiB)
      const blockstore = new MemoryBlockstore()
      const dirCid = await unixfs({ blockstore }).addFile({ path: 'file.bin', content: pieces(bytes) })
      const dir = dagPb.decode(await toBytes(await blockstore.get(dirCid)))
      assert.equal(dir.Links.length, 1)
      assert.equal(dir.Links[0].Name, 'file.bin')
      assert.equal(dir.Links[0].Hash.toString(), ours.cid.toString())
    }
  })

  it('reads back the exact bytes, whole and by range', async () => {
    const bytes = randomBytes(5 * 16 * KiB + 99)
    const ours = await shoalImport(bytes, 16 * KiB, 2)
    const get = async (cid: CID): Promise<Uint8Array> => ours.blocks.get(cid.toString())!
    const read = async (offset?: number, length?: number): Promise<Buffer> => {
      const parts: Uint8Array[] = []
      for await (const p of readFile(ours.cid, get, { offset, length })) parts.push(p)
      return Buffer.concat(parts)
    }
    assert.ok((await read()).equals(bytes))
    for (const [offset, length] of [[0, 1], [16 * KiB - 1, 2], [40_000, 50_000], [bytes.length - 5, 100], [bytes.length, 10], [3, 0]]) {
      assert.ok((await read(offset, length)).equals(bytes.subarray(offset, offset + length)), `range ${offset}+${length}`)
    }
  })
})
