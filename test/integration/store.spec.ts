/**
 * The content store on a real disk: garbage collection removes exactly what
 * nothing holds, the quota refuses an import without leaving any of it,
 * verify finds and removes corrupt blocks, and the repo survives reopening.
 */
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import fs from 'node:fs/promises'
import path from 'node:path'
import { defaultLogger } from '@libp2p/logger'
import { LevelDatastore } from 'datastore-level'
import type { CID } from 'multiformats/cid'
import { MAX_RANKED_REPLICAS } from '../../src/constants.ts'
import { cidKey, cidOf, RAW_CODE } from '../../src/content/cid.ts'
import { FsBlockstore } from '../../src/store/blockstore.ts'
import { StoreClosedError } from '../../src/store/errors.ts'
import { ContentStore } from '../../src/store/content-store.ts'
import { raceSignal } from '../../src/utils/wait.ts'
import { tempDir } from '../helpers/cli.ts'

const KiB = 1024

/** A store on `dir`; the test keeps its blockstore to look at the block files. */
async function openStore (dir: string, quota: number | 'auto' = 'auto', replicas?: number): Promise<{ store: ContentStore, blockstore: FsBlockstore, close: () => Promise<void> }> {
  const datastore = new LevelDatastore(path.join(dir, 'datastore'))
  await datastore.open()
  const blockstore = new FsBlockstore({}, { dir: path.join(dir, 'blocks') })
  const store = new ContentStore({ datastore, blockstore, logger: defaultLogger() }, { quota, ...(replicas != null ? { replicas } : {}) })
  await store.open()
  return { store, blockstore, close: async () => { await store.close(); await datastore.close() } }
}

async function storedKeys (blockstore: FsBlockstore): Promise<Set<string>> {
  const keys = new Set<string>()
  for await (const block of blockstore.list()) keys.add(cidKey(block.cid))
  return keys
}

async function dagKeys (file: Buffer, chunkSize: number): Promise<Set<string>> {
  // what the DAG of `file` consists of: import it into a scratch store
  const dir = await tempDir('shoal-dag-')
  const scratch = await openStore(dir)
  const src = path.join(dir, 'f')
  await fs.writeFile(src, file)
  await scratch.store.shareFile(src, { chunkSize })
  const keys = await storedKeys(scratch.blockstore)
  await scratch.close()
  await fs.rm(dir, { recursive: true, force: true })
  return keys
}

async function tempFiles (dir: string): Promise<string[]> {
  const out: string[] = []
  for (const entry of await fs.readdir(dir, { recursive: true })) if (entry.endsWith('.tmp')) out.push(entry)
  return out
}

describe('content store on disk', function () {
  this.timeout(60_000)
  let dir: string
  beforeEach(async () => { dir = await tempDir('shoal-store-') })
  afterEach(async () => { await fs.rm(dir, { recursive: true, force: true }) })

  it('GC removes exactly the blocks no holding reaches', async () => {
    const { store, blockstore, close } = await openStore(dir)
    const chunk = 16 * KiB
    const a = randomBytes(5 * chunk + 100)
    // b starts with a's first 3 chunks: those leaves are shared by both DAGs
    const b = Buffer.concat([a.subarray(0, 3 * chunk), randomBytes(4 * chunk)])
    await fs.writeFile(path.join(dir, 'a'), a)
    await fs.writeFile(path.join(dir, 'b'), b)
    const ra = await store.shareFile(path.join(dir, 'a'), { chunkSize: chunk })
    const rb = await store.shareFile(path.join(dir, 'b'), { chunkSize: chunk })
    const aKeys = await dagKeys(a, chunk)
    const bKeys = await dagKeys(b, chunk)
    // an orphan block (a block file nothing holds, as an interrupted import leaves) and a replica
    const orphan = randomBytes(1000)
    const orphanCid = cidOf(RAW_CODE, orphan)
    await blockstore.put(orphanCid, orphan)
    const replica = randomBytes(2000)
    const replicaCid = cidOf(RAW_CODE, replica)
    assert.deepEqual(await store.storeReplicas([{ cid: replicaCid, bytes: replica, replicas: 3 }]), [true])

    const all = new Set([...aKeys, ...bKeys, cidKey(orphanCid), cidKey(replicaCid)])
    assert.deepEqual(await storedKeys(blockstore), all)

    const gc = await store.gc()
    assert.deepEqual(gc, { blocks: 1, bytes: 1000 })
    assert.deepEqual(await storedKeys(blockstore), new Set([...aKeys, ...bKeys, cidKey(replicaCid)]))

    const removed = await store.remove(ra.cid)
    assert.equal(removed.removed.length, 1)
    const onlyA = [...aKeys].filter(k => !bKeys.has(k))
    assert.equal(removed.freed.blocks, onlyA.length)
    assert.deepEqual(await storedKeys(blockstore), new Set([...bKeys, cidKey(replicaCid)]))

    // the shared leaves still serve b, byte for byte
    const parts: Uint8Array[] = []
    for await (const p of store.read(rb.cid)) parts.push(p)
    assert.ok(Buffer.concat(parts).equals(b))
    await close()
  })

  it('runs a GC asked for during a long streamed import without waiting for its end, and sweeps none of its blocks', async () => {
    const { store, close } = await openStore(dir)
    try {
      const pieces = Array.from({ length: 12 }, () => randomBytes(256 * KiB))
      const halfway = Promise.withResolvers<void>()
      const gcDone = Promise.withResolvers<void>()
      // a source that stops halfway until gc has returned: if gc waited for
      // the import's end, it would never return
      async function * gated (): AsyncGenerator<Uint8Array> {
        for (const [i, piece] of pieces.entries()) {
          if (i === 6) { halfway.resolve(); await gcDone.promise }
          yield piece
        }
      }
      const importing = store.shareStream(gated(), { chunkSize: 64 * KiB })
      importing.catch(() => {})
      await halfway.promise
      try {
        await raceSignal(store.gc(), AbortSignal.timeout(30_000)).catch((err: Error) => {
          throw new Error(`gc did not return while the import was held halfway: ${err.message}`)
        })
      } finally {
        gcDone.resolve()
      }
      const { cid } = await importing
      const chunks: Uint8Array[] = []
      for await (const chunk of store.read(cid)) chunks.push(chunk)
      assert.ok(Buffer.concat(chunks).equals(Buffer.concat(pieces)), 'every block of the import survived the gc')
    } finally {
      await close()
    }
  })

  it('refuses an import past the quota and keeps none of it', async () => {
    const first = randomBytes(40 * KiB)
    await fs.writeFile(path.join(dir, 'first'), first)
    await fs.writeFile(path.join(dir, 'big'), randomBytes(200 * KiB))
    const { store, blockstore, close } = await openStore(dir, 100 * KiB)
    const kept = await store.shareFile(path.join(dir, 'first'), { chunkSize: 16 * KiB })
    const before = await storedKeys(blockstore)
    await assert.rejects(store.shareFile(path.join(dir, 'big'), { chunkSize: 16 * KiB }), (err: Error) => {
      assert.equal(err.name, 'QuotaExceededError')
      assert.match(err.message, /storage quota exceeded/)
      return true
    })
    assert.deepEqual(await storedKeys(blockstore), before, 'nothing of the refused import is left')
    assert.deepEqual(await tempFiles(path.join(dir, 'blocks')), [])
    assert.deepEqual((await store.list()).map(h => h.cid), [cidKey(kept.cid)])
    assert.equal(store.usage().bytes, 40 * KiB + (await store.blockSize(kept.cid))!)
    await close()
  })

  it('verify finds corrupt blocks and --repair removes them; reading one fails and removes it', async () => {
    const data = randomBytes(50 * KiB)
    await fs.writeFile(path.join(dir, 'f'), data)
    const { store, blockstore, close } = await openStore(dir)
    await store.shareFile(path.join(dir, 'f'), { chunkSize: 16 * KiB })
    assert.deepEqual((await store.verify()).bad, [])
    // flip a byte of one leaf on disk
    let victim: string | undefined
    let victimCid: string | undefined
    for await (const block of blockstore.list()) if (block.cid.code === RAW_CODE) { victim = blockstore.pathOf(block.cid); victimCid = cidKey(block.cid); break }
    const bytes = await fs.readFile(victim!)
    bytes[0] ^= 0xff
    await fs.writeFile(victim!, bytes)
    const report = await store.verify()
    assert.deepEqual(report.bad, [victimCid])
    assert.equal(report.removed, false)
    const repaired = await store.verify({ repair: true })
    assert.equal(repaired.removed, true)
    assert.deepEqual((await store.verify()).bad, [])
    await assert.rejects(fs.access(victim!), { code: 'ENOENT' })
    // a read of a rotten block fails, and removes it (a good copy can take its place)
    let other: CID | undefined
    for await (const block of blockstore.list()) if (block.cid.code === RAW_CODE) { other = block.cid; break }
    const otherBytes = await fs.readFile(blockstore.pathOf(other!))
    otherBytes[0] ^= 0xff
    await fs.writeFile(blockstore.pathOf(other!), otherBytes)
    await assert.rejects(store.readBlock(other!), { name: 'BlockMismatchError' })
    await assert.rejects(fs.access(blockstore.pathOf(other!)), { code: 'ENOENT' })
    await close()
  })

  it('a closed store writes no block that arrives late and starts no leaf worker for it', async () => {
    const opened = await openStore(dir)
    await opened.close()
    const bytes = randomBytes(KiB)
    await assert.rejects(opened.blockstore.putReceivedLeaf(cidOf(RAW_CODE, bytes), bytes), StoreClosedError)
    assert.equal(opened.blockstore['workers'], undefined, 'no leaf worker started')
    assert.equal(await opened.blockstore.has(cidOf(RAW_CODE, bytes)), false)
  })

  it('keeps holdings and blocks across reopening, and sweeps temp files a crash left', async () => {
    const data = randomBytes(70 * KiB)
    await fs.writeFile(path.join(dir, 'f'), data)
    let opened = await openStore(dir)
    const r = await opened.store.shareFile(path.join(dir, 'f'), { chunkSize: 16 * KiB, name: 'f' })
    const usage = opened.store.usage()
    await opened.close()
    const shard = (await fs.readdir(path.join(dir, 'blocks')))[0]
    await fs.writeFile(path.join(dir, 'blocks', shard, 'bafkreigarbage.1234.tmp'), 'half a block')
    opened = await openStore(dir)
    assert.deepEqual(await tempFiles(path.join(dir, 'blocks')), [])
    assert.equal(opened.store.usage().blocks, usage.blocks)
    assert.equal(opened.store.usage().bytes, usage.bytes)
    const [holding] = await opened.store.list()
    assert.equal(holding.cid, cidKey(r.cid))
    assert.equal(holding.name, 'f')
    assert.equal(holding.size, data.length)
    const parts: Uint8Array[] = []
    for await (const p of opened.store.read(r.cid)) parts.push(p)
    assert.ok(Buffer.concat(parts).equals(data))
    await opened.close()
  })

  it('never lowers a replica\'s k on anyone\'s word: keeps the larger, never below its own replicas, never above the largest k a put is ranked against', async () => {
    const { store, close } = await openStore(dir, 'auto', 3)
    const block = randomBytes(1000)
    const cid = cidOf(RAW_CODE, block)
    const k = async (): Promise<number | undefined> => (await store.list(cid)).find(h => h.reason === 'replica')?.replicas
    // placed for k = 5, then re-put by someone else for k = 1 (the block is here already)
    assert.deepEqual(await store.storeReplicas([{ cid, bytes: block, replicas: 5 }]), [true])
    assert.deepEqual(await store.storeReplicas([{ cid, bytes: block, replicas: 1 }]), [false])
    assert.equal(await k(), 5)
    // a put may raise it, up to the largest k a put is ranked against
    await store.storeReplicas([{ cid, bytes: block, replicas: 6 }])
    assert.equal(await k(), 6)
    await store.storeReplicas([{ cid, bytes: block, replicas: 64 }])
    assert.equal(await k(), MAX_RANKED_REPLICAS)
    // a new replica placed for fewer copies than this peer keeps is kept for its own replicas
    const other = randomBytes(1000)
    const otherCid = cidOf(RAW_CODE, other)
    await store.storeReplicas([{ cid: otherCid, bytes: other, replicas: 1 }])
    assert.equal((await store.list(otherCid))[0].replicas, 3)
    await close()
  })
})
