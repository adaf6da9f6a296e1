/**
 * The blockstore's durability: a caller of sync() never returns before the
 * folders its finished writes went into are durable, even when another
 * caller's round of folder fsyncs was already running; a staged block (how
 * a fetch stores) gets its name only after its fsync, while its writer goes
 * on as soon as the bytes are written, and staged bytes are bounded.
 */
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import fs from 'node:fs/promises'
import path from 'node:path'
import { cidOf, RAW_CODE } from '../../src/content/cid.ts'
import { FsBlockstore, type BlockstoreSync } from '../../src/store/blockstore.ts'
import { syncFolder } from '../../src/utils/fs.ts'
import { waitFor } from '../../src/utils/wait.ts'
import { tempDir } from '../helpers/cli.ts'

describe('blockstore folder sync', function () {
  this.timeout(60_000)
  let dir: string
  beforeEach(async () => { dir = await tempDir('shoal-sync-') })
  afterEach(async () => { await fs.rm(dir, { recursive: true, force: true }) })

  it('sync() waits for folder fsyncs already running for earlier writes', async () => {
    // folder fsyncs are slow and logged
    const events: string[] = []
    const fsync: BlockstoreSync = {
      file: async handle => { await handle.sync() },
      folder: async folder => {
        await new Promise(resolve => setTimeout(resolve, 200))
        await syncFolder(folder)
        events.push(`synced ${path.basename(folder)}`)
      }
    }
    const bs = new FsBlockstore({ fsync }, { dir: path.join(dir, 'blocks'), sync: true })
    await bs.open()
    const bytes = randomBytes(1000)
    await bs.put(cidOf(RAW_CODE, bytes), bytes)
    const first = bs.sync()
    // nothing new was written since: still, this caller must not return before the round above
    const second = bs.sync()
    await second
    events.push('second returned')
    await first
    assert.equal(events.indexOf('second returned'), events.length - 1, events.join(', '))
    assert.ok(events.some(e => e.startsWith('synced')), events.join(', '))
    // a write after a round started is synced by a later round before its caller returns
    const third = bs.sync()
    const more = randomBytes(1001)
    const moreCid = cidOf(RAW_CODE, more)
    await bs.put(moreCid, more)
    await bs.sync()
    const shard = path.basename(path.dirname(bs.pathOf(moreCid)))
    assert.ok(events.includes(`synced ${shard}`), events.join(', '))
    await third
  })

  it('stage() returns once the bytes are written; the block is named only after its fsync; waiting fsyncs are bounded', async () => {
    // block fsyncs wait for the gate
    const gate = Promise.withResolvers<void>()
    let held = 0
    const fsync: BlockstoreSync = {
      file: async handle => { held++; await gate.promise; await handle.sync() },
      folder: syncFolder
    }
    const bs = new FsBlockstore({ fsync }, { dir: path.join(dir, 'blocks'), sync: true })
    await bs.open()
    const MiB = 1024 * 1024
    const blocks = Array.from({ length: 40 }, () => randomBytes(MiB))
    const cids = blocks.map(b => cidOf(RAW_CODE, b))
    const copies = blocks.map(b => Buffer.from(b))
    const first = await bs.stage(cids[0], blocks[0])
    // the writer may reuse its buffer now: the bytes are in the file already
    blocks[0].fill(0)
    assert.equal(await bs.has(cids[0]), false, 'not visible before its fsync')
    // staging goes on up to the bound (32 MiB), then waits
    const staged: Array<{ stored: Promise<boolean> } | undefined> = new Array(40)
    staged[0] = first
    const all = cids.slice(1).map(async (cid, j) => { staged[j + 1] = await bs.stage(cid, blocks[j + 1]) })
    const count = (): number => staged.filter(s => s != null).length
    try {
      // staging runs ahead of the held fsyncs, then stops: wait until no block
      // has got through for a while (a stall of a loaded machine can only end
      // this early, below the bound, which the check below still accepts)
      await waitFor(() => count() >= 8, { timeoutMs: 30_000, intervalMs: 10, message: () => `only ${count()} blocks staged while no fsync ended` })
      let last = -1
      let since = Date.now()
      await waitFor(() => {
        if (count() !== last) { last = count(); since = Date.now() }
        return Date.now() - since >= 300
      }, { timeoutMs: 30_000, intervalMs: 10, message: () => `staging never stopped (${count()} blocks)` })
      assert.ok(count() <= 32, `${count()} blocks staged while no fsync ended`)
      assert.ok(held <= 6, `${held} fsyncs in flight at once`)
    } finally {
      // the held fsyncs end either way: nothing of a failed check stays open
      gate.resolve()
    }
    await Promise.all(all)
    assert.deepEqual(await Promise.all(staged.map(async s => s!.stored)), cids.map(() => true))
    for (let i = 0; i < cids.length; i++) assert.ok(copies[i].equals(await bs.get(cids[i])), `block ${i} whole`)
    // staging a block already there resolves false, and writes nothing
    const again = await bs.stage(cids[1], copies[1])
    assert.equal(await again.stored, false)
    assert.equal(bs.usage().blocks, 40)
  })
})
