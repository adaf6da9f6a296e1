/**
 * The blockstore's folder sync: a caller never returns before the folders
 * its finished writes went into are durable, even when another caller's
 * round of folder fsyncs was already running.
 */
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import fs from 'node:fs/promises'
import path from 'node:path'
import { cidOf, RAW_CODE } from '../../src/content/cid.ts'
import { FsBlockstore } from '../../src/store/blockstore.ts'
import { tempDir } from '../helpers/cli.ts'

describe('blockstore folder sync', function () {
  this.timeout(60_000)
  let dir: string
  beforeEach(async () => { dir = await tempDir('shoal-sync-') })
  afterEach(async () => { await fs.rm(dir, { recursive: true, force: true }) })

  it('sync() waits for folder fsyncs already running for earlier writes', async () => {
    const bs = new FsBlockstore(path.join(dir, 'blocks'), { quotaBytes: Infinity, sync: true })
    await bs.open()
    const bytes = randomBytes(1000)
    await bs.put(cidOf(RAW_CODE, bytes), bytes)
    // folder fsyncs are slow and logged
    const events: string[] = []
    const open = fs.open
    fs.open = (async (file: string, flags?: string) => {
      const handle = await open(file, flags)
      if (flags !== 'r') return handle
      return {
        sync: async () => {
          await new Promise(resolve => setTimeout(resolve, 200))
          await handle.sync()
          events.push(`synced ${path.basename(file)}`)
        },
        close: async () => { await handle.close() }
      }
    }) as typeof fs.open
    try {
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
    } finally {
      fs.open = open
    }
  })
})
