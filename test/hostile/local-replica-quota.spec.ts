/**
 * Replicas kept for others have their own quota: a flood of unsolicited
 * replicas (twice the quota) fills only that, and the owner's own share
 * and fetch still fit in theirs; dropping a replica frees its room; the
 * count survives a restart.
 */
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import fs from 'node:fs/promises'
import path from 'node:path'
import { defaultLogger } from '@libp2p/logger'
import { LevelDatastore } from 'datastore-level'
import { cidOf, RAW_CODE } from '../../src/content/cid.ts'
import { FsBlockstore } from '../../src/store/blockstore.ts'
import { ContentStore } from '../../src/store/content-store.ts'
import { tempDir } from '../helpers/cli.ts'

const KiB = 1024

describe('hostile: a flood of replicas against the owner\'s quota', function () {
  this.timeout(60_000)
  let dir: string
  beforeEach(async () => { dir = await tempDir('shoal-replica-quota-') })
  afterEach(async () => { await fs.rm(dir, { recursive: true, force: true }) })

  async function openStore (): Promise<{ store: ContentStore, close: () => Promise<void> }> {
    const datastore = new LevelDatastore(path.join(dir, 'datastore'))
    await datastore.open()
    const blockstore = new FsBlockstore({}, { dir: path.join(dir, 'blocks') })
    const store = new ContentStore({ datastore, blockstore, logger: defaultLogger() }, { quota: 200 * KiB, replicaQuota: 100 * KiB })
    await store.open()
    return { store, close: async () => { await store.close(); await datastore.close() } }
  }

  it('refuses replicas past their own quota, and the owner\'s share and fetch still work', async () => {
    let { store, close } = await openStore()
    const flood = Array.from({ length: 20 }, () => {
      const bytes = randomBytes(10 * KiB)
      return { cid: cidOf(RAW_CODE, bytes), bytes, replicas: 3 }
    })
    const results = await store.storeReplicas(flood)
    const stored = results.filter(r => r === true).length
    assert.equal(stored, 10, 'the replica quota filled')
    for (const r of results) if (r !== true) assert.ok(r instanceof Error && r.name === 'QuotaExceededError' && /^replica quota exceeded/.test(r.message), String(r))
    assert.equal(store.usage().replicaBytes, 100 * KiB)

    // the owner's own share (150 KiB of their 200)
    const data = randomBytes(150 * KiB)
    await fs.writeFile(path.join(dir, 'mine'), data)
    const shared = await store.shareFile(path.join(dir, 'mine'), { chunkSize: 16 * KiB })
    // and a fetched block (40 KiB more)
    const fetched = randomBytes(40 * KiB)
    const session = store.openFetch()
    await (await session.storeBlock(cidOf(RAW_CODE, fetched), fetched)).stored
    await session.commit(cidOf(RAW_CODE, fetched), { size: fetched.length, blocks: 1 })
    session.close()
    const parts: Uint8Array[] = []
    for await (const p of store.read(shared.cid)) parts.push(p)
    assert.ok(Buffer.concat(parts).equals(data))

    // a dropped replica frees its room for another (the puts ran at once:
    // which ten got in is the scheduler's choice)
    await store.dropReplica(flood[results.indexOf(true)].cid)
    const refused = flood.filter((_, i) => results[i] !== true)
    assert.deepEqual(await store.storeReplicas([refused[0]]), [true])

    // the count survives a restart
    await close()
    ;({ store, close } = await openStore())
    assert.equal(store.usage().replicaBytes, 100 * KiB)
    assert.ok(await store.storeReplicas([refused[1]]).then(([r]) => r instanceof Error && r.name === 'QuotaExceededError'))
    await close()
  })
})
