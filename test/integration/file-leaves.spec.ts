/**
 * File-backed leaves: a fetched file's raw leaves stay in the output file
 * (not a second copy in the blockstore), and the peer serves them from
 * there, re-hashing every read; a change to the file is caught, `rm`
 * forgets the file without deleting it, and the records survive a restart
 * (also a crash between the rename and its record) but not the file's
 * removal.
 */
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import fs from 'node:fs/promises'
import path from 'node:path'
import { defaultLogger } from '@libp2p/logger'
import { LevelDatastore } from 'datastore-level'
import type { CID } from 'multiformats/cid'
import { cidKey, cidOf, RAW_CODE } from '../../src/content/cid.ts'
import { FileLeaves } from '../../src/store/file-leaves.ts'
import { createTestSwarm, type TestSwarm } from '../../src/swarm/test-swarm.ts'
import { tempDir } from '../helpers/cli.ts'

const MiB = 1024 * 1024

describe('leaves kept in fetched files', function () {
  this.timeout(120_000)
  let swarm: TestSwarm
  before(async () => { swarm = await createTestSwarm(4) })
  after(async () => { await swarm?.destroy() })

  it('keeps a fetched file\'s leaves only in the file, serves them from it, and catches a change to the file', async () => {
    const [holder, fetcher, second] = swarm.peers
    const data = randomBytes(6 * MiB + 5)
    const source = path.join(swarm.dir, 'source')
    await fs.writeFile(source, data)
    const root = (await holder.content.shareFile(source, { chunkSize: MiB })).cid
    await holder.placement.place(root, [], 0)

    const storedBefore = fetcher.content.usage().bytes
    const target = path.join(swarm.dir, 'fetched.bin')
    await fetcher.fetcher.fetch(root, { output: { path: target }, timeoutMs: 30_000 })
    assert.ok((await fs.readFile(target)).equals(data))
    const leaves = await leafCids(fetcher.content.dagCids(root))
    assert.equal(leaves.length, 7)
    assert.ok(fetcher.content.usage().bytes - storedBefore < 64 * 1024, 'the blockstore got the root node, not the leaves')
    for (const [i, leaf] of leaves.entries()) {
      assert.ok(fetcher.content.fileLeaves.isKeptAt(leaf, target, i * MiB), `leaf ${i} kept in the output file`)
      assert.ok(await fetcher.content.hasBlock(leaf))
    }

    // the only other holder leaves: a new fetcher gets every byte from the file-backed peer
    await holder.stop()
    const copy = path.join(swarm.dir, 'second.bin')
    const result = await second.fetcher.fetch(root, { output: { path: copy }, timeoutMs: 30_000 })
    assert.ok((await fs.readFile(copy)).equals(data))
    assert.deepEqual(Object.keys(result.peers), [fetcher.peerId.toString()])

    // the user changes the file: verify reports the leaf (and changes nothing), a read refuses it
    const handle = await fs.open(target, 'r+')
    await handle.write(Buffer.from('not the bytes you fetched'), 0, undefined, 3 * MiB + 100)
    await handle.close()
    const report = await fetcher.content.verify()
    assert.deepEqual(report.bad, [cidKey(leaves[3])])
    assert.ok(await fetcher.content.hasBlock(leaves[3]), 'verify without --repair forgets nothing')
    await assert.rejects(fetcher.content.readBlock(leaves[3]), /not in the store/)
    assert.equal(await fetcher.content.hasBlock(leaves[3]), false, 'a leaf its file no longer holds is forgotten')
    assert.ok(await fetcher.content.hasBlock(leaves[4]))

    // rm forgets the file's leaves; the file is the user's and stays
    await fetcher.content.remove(root)
    assert.equal(fetcher.content.fileLeaves.roots().has(cidKey(root)), false)
    assert.equal(await fetcher.content.hasBlock(leaves[4]), false)
    await fs.access(target)
  })
})

describe('file-leaves records', function () {
  let dir: string
  let datastore: LevelDatastore
  const log = defaultLogger().forComponent('test:file-leaves')
  beforeEach(async () => {
    dir = await tempDir('shoal-file-leaves-')
    datastore = new LevelDatastore(path.join(dir, 'datastore'))
    await datastore.open()
  })
  afterEach(async () => {
    await datastore.close()
    await fs.rm(dir, { recursive: true, force: true })
  })

  it('survive a restart, find the file under its final name after a crash before the rename was recorded, and go with the file', async () => {
    const blocks = [randomBytes(1000), randomBytes(1000), randomBytes(500)]
    const cids = blocks.map(b => cidOf(RAW_CODE, b))
    const part = path.join(dir, '.f.part')
    const final = path.join(dir, 'f')
    await fs.writeFile(part, Buffer.concat(blocks))
    const root = cids[0] // any CID names the record
    const first = new FileLeaves(datastore, log)
    await first.open()
    await first.add(root, part, final, cids.map((cid, i) => ({ cid, offset: i * 1000, size: blocks[i].length })))
    // the fetch renames the file, and the daemon dies before recording it
    await fs.rename(part, final)

    const reopened = new FileLeaves(datastore, log)
    await reopened.open()
    assert.equal(reopened.locate(cids[2])?.path, final)
    assert.ok(Buffer.from((await reopened.read(cids[2]))!).equals(blocks[2]))

    // the user deletes the file: the next start forgets its leaves
    await fs.rm(final)
    const afterRemoval = new FileLeaves(datastore, log)
    await afterRemoval.open()
    assert.equal(afterRemoval.has(cids[0]), false)
    assert.deepEqual(afterRemoval.all(), [])
    const records = []
    for await (const entry of datastore.query({ prefix: '/shoal/file-leaves' })) records.push(entry.key.toString())
    assert.deepEqual(records, [], 'no record left behind')
  })
})

async function leafCids (cids: Promise<CID[]>): Promise<CID[]> {
  return (await cids).filter(c => c.code === RAW_CODE)
}
