/**
 * What the user was told is done stays done, on a real disk: holdings are
 * written durably before a share resolves; GC never sweeps under a held
 * DAG it cannot walk whole (a node missing or rotten), and records it as
 * needing repair until a fetch brings the blocks back; verify --repair
 * records what it removed from held DAGs; a datastore error while storing
 * replicas leaves no orphan block; a periodic GC sweeps orphans unasked.
 */
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import fs from 'node:fs/promises'
import path from 'node:path'
import { defaultLogger } from '@libp2p/logger'
import { LevelDatastore } from 'datastore-level'
import type { CID } from 'multiformats/cid'
import { cidKey, cidOf, RAW_CODE } from '../../src/content/cid.ts'
import { FsBlockstore } from '../../src/store/blockstore.ts'
import { ContentStore, type ContentStoreInit } from '../../src/store/content-store.ts'
import { waitFor } from '../../src/utils/wait.ts'
import { tempDir } from '../helpers/cli.ts'

const KiB = 1024

interface Opened {
  store: ContentStore
  blockstore: FsBlockstore
  datastore: LevelDatastore
  close: () => Promise<void>
}

async function openStore (dir: string, init: ContentStoreInit = {}): Promise<Opened> {
  const datastore = new LevelDatastore(path.join(dir, 'datastore'))
  await datastore.open()
  const blockstore = new FsBlockstore({}, { dir: path.join(dir, 'blocks') })
  const store = new ContentStore({ datastore, blockstore, logger: defaultLogger() }, init)
  await store.open()
  return { store, blockstore, datastore, close: async () => { await store.close(); await datastore.close() } }
}

async function blockKeys (blockstore: FsBlockstore): Promise<Set<string>> {
  const keys = new Set<string>()
  for await (const block of blockstore.list()) keys.add(cidKey(block.cid))
  return keys
}

describe('hostile: local durability of what was reported done', function () {
  this.timeout(60_000)
  let dir: string
  beforeEach(async () => { dir = await tempDir('shoal-durable-') })
  afterEach(async () => { await fs.rm(dir, { recursive: true, force: true }) })

  async function share (opened: Opened, size = 40 * 16 * KiB): Promise<{ root: CID, data: Buffer }> {
    const data = randomBytes(size)
    await fs.writeFile(path.join(dir, 'f'), data)
    const { cid } = await opened.store.shareFile(path.join(dir, 'f'), { chunkSize: 16 * KiB })
    return { root: cid, data }
  }

  it('a share resolves only after its holding is written with a synced LevelDB write', async () => {
    const opened = await openStore(dir)
    const writes: Array<{ key: string, sync: boolean }> = []
    const db = opened.datastore.db
    const put = db.put.bind(db) as (key: string, value: Uint8Array, options?: { sync?: boolean }) => Promise<void>
    db.put = (async (key: string, value: Uint8Array, options?: { sync?: boolean }) => {
      writes.push({ key, sync: options?.sync === true })
      return put(key, value, options)
    }) as typeof db.put
    const batch = db.batch.bind(db)
    db.batch = ((...args: Parameters<typeof batch>) => {
      writes.push({ key: 'batch', sync: false })
      return batch(...args)
    }) as typeof db.batch
    const { root } = await share(opened)
    const holding = writes.findIndex(w => w.key.startsWith(`/shoal/holdings/${cidKey(root)}/shared`))
    assert.ok(holding >= 0, JSON.stringify(writes))
    assert.ok(writes.slice(holding + 1).some(w => w.sync), `a synced write after the holding: ${JSON.stringify(writes)}`)

    // replicas: one synced write after the batch's last holding, not one per block
    writes.length = 0
    const blocks = Array.from({ length: 3 }, () => { const bytes = randomBytes(1000); return { cid: cidOf(RAW_CODE, bytes), bytes, replicas: 3 } })
    await opened.store.storeReplicas(blocks)
    const last = writes.findLastIndex(w => w.key.startsWith('/shoal/holdings/') && w.key.endsWith('/replica'))
    assert.ok(last >= 0)
    assert.equal(writes.slice(last + 1).filter(w => w.sync).length, 1, JSON.stringify(writes))
    assert.equal(writes.filter(w => w.sync).length, 1, 'one fsync for the batch')
    await opened.close()
  })

  for (const damage of ['missing', 'corrupt'] as const) {
    it(`gc sweeps nothing under a held DAG whose root node is ${damage}, and records it as needing repair until a fetch completes it`, async () => {
      const opened = await openStore(dir)
      const { root } = await share(opened)
      const before = await blockKeys(opened.blockstore)
      const rootBytes = await fs.readFile(opened.blockstore.pathOf(root))
      // an orphan, which a whole store would sweep
      const orphan = randomBytes(1000)
      await opened.blockstore.put(cidOf(RAW_CODE, orphan), orphan)
      if (damage === 'missing') await fs.rm(opened.blockstore.pathOf(root))
      else await fs.writeFile(opened.blockstore.pathOf(root), Buffer.concat([rootBytes.subarray(0, 10), Buffer.from([rootBytes[10] ^ 1]), rootBytes.subarray(11)]))
      const result = await opened.store.gc()
      assert.deepEqual(result, { blocks: 0, bytes: 0, incomplete: [cidKey(root)] })
      const after = await blockKeys(opened.blockstore)
      for (const key of before) if (key !== cidKey(root)) assert.ok(after.has(key), `leaf ${key} kept`)
      assert.deepEqual((await opened.store.needingRepair()).map(n => n.cid), [cidKey(root)])
      // a fetch brings the node back (here: its good bytes) and commits: whole again
      if (damage === 'corrupt') await fs.rm(opened.blockstore.pathOf(root))
      const session = opened.store.openFetch()
      const { stored } = await session.storeBlock(root, rootBytes)
      await stored
      await session.commit(root, { size: 40 * 16 * KiB, blocks: 41 })
      session.close()
      assert.deepEqual(await opened.store.needingRepair(), [])
      const swept = await opened.store.gc()
      assert.deepEqual(swept, { blocks: 1, bytes: 1000 }, 'now the orphan, and only it, goes')
      await opened.close()
    })
  }

  it('verify --repair removes a rotten DAG node but records its DAG as needing repair, and gc keeps the rest', async () => {
    const opened = await openStore(dir)
    const { root } = await share(opened)
    const file = opened.blockstore.pathOf(root)
    const bytes = await fs.readFile(file)
    bytes[12] ^= 0x40
    await fs.writeFile(file, bytes)
    const report = await opened.store.verify({ repair: true })
    assert.deepEqual(report.bad, [cidKey(root)])
    assert.deepEqual(report.needsRepair, [cidKey(root)])
    const leaves = (await blockKeys(opened.blockstore)).size
    assert.equal(leaves, 40)
    await opened.store.gc()
    assert.equal((await blockKeys(opened.blockstore)).size, 40, 'no leaf swept')
    await opened.close()
  })

  it('a datastore error while storing replicas leaves no orphan block', async () => {
    const opened = await openStore(dir)
    const block = randomBytes(3000)
    const cid = cidOf(RAW_CODE, block)
    const put = opened.datastore.put.bind(opened.datastore)
    opened.datastore.put = (async (key, value, options) => {
      if (key.toString().startsWith('/shoal/holdings/')) throw new Error('LevelDB: IO error')
      return put(key, value, options)
    }) as typeof opened.datastore.put
    const [result] = await opened.store.storeReplicas([{ cid, bytes: block, replicas: 3 }])
    assert.ok(result instanceof Error && /IO error/.test(result.message))
    assert.equal(await opened.blockstore.has(cid), false, 'the block it wrote is gone')
    assert.equal(opened.store.usage().blocks, 0)
    await opened.close()
  })

  it('a periodic gc sweeps orphans without anyone asking', async () => {
    const opened = await openStore(dir, { gcIntervalMs: 100 })
    const { root } = await share(opened)
    const orphan = randomBytes(1000)
    const orphanCid = cidOf(RAW_CODE, orphan)
    await opened.blockstore.put(orphanCid, orphan)
    await waitFor(async () => !(await opened.blockstore.has(orphanCid)), { timeoutMs: 10_000, intervalMs: 50, message: () => 'the orphan was not swept' })
    assert.ok(await opened.blockstore.has(root))
    await opened.close()
  })
})
