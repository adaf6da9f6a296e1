/**
 * File-backed leaves: a fetched file's raw leaves stay in the output file
 * (not a second copy in the blockstore), and the peer serves them from
 * there, re-hashing every read; a change to the file is caught, `rm`
 * forgets the file without deleting it, and the records survive a restart
 * (also a crash between the rename and its record) but not the file's
 * removal.
 * On Kademlia only: where fetched leaves are kept does not depend on the
 * overlay (fetch.spec.ts fetches through both).
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
import { shareOn } from '../helpers/swarm.ts'

const MiB = 1024 * 1024

describe('leaves kept in fetched files', function () {
  this.timeout(120_000)
  let swarm: TestSwarm
  before(async () => { swarm = await createTestSwarm(4) })
  after(async () => { await swarm?.destroy() })

  it('keeps a fetched file\'s leaves only in the file, serves them from it, and catches a change to the file', async () => {
    const [holder, fetcher, second] = swarm.peers
    const { root, data } = await shareOn([holder], { dir: swarm.dir, size: 6 * MiB + 5, chunkSize: MiB })

    const storedBefore = fetcher.content.usage().bytes
    const target = path.join(swarm.dir, 'fetched.bin')
    await fetcher.fetcher.fetch(root, { output: { path: target }, timeoutMs: 30_000 })
    assert.ok((await fs.readFile(target)).equals(data))
    const leaves = await leafCids(fetcher.content.dagCids(root))
    assert.equal(leaves.length, 7)
    assert.ok(fetcher.content.usage().bytes - storedBefore < 64 * 1024, 'the blockstore got the root node, not the leaves')
    for (const [i, leaf] of leaves.entries()) {
      assert.deepEqual(await fetcher.content.locate(leaf), { blockstore: false, files: [{ path: target, offset: i * MiB }] }, `leaf ${i} kept in the output file only`)
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
    await assert.rejects(fetcher.content.readBlock(leaves[3]), { name: 'BlockNotFoundError', message: `block ${leaves[3]} is not in the store` })
    assert.equal(await fetcher.content.hasBlock(leaves[3]), false, 'a leaf its file no longer holds is forgotten')
    assert.ok(await fetcher.content.hasBlock(leaves[4]))

    // rm forgets the file's leaves; the file is the user's and stays
    await fetcher.content.remove(root)
    assert.deepEqual(fetcher.content.keptFiles(root), [])
    assert.equal(await fetcher.content.hasBlock(leaves[4]), false)
    await fs.access(target)
  })

  /** A new random file shared (k = 0) by the given peers; its root and bytes. */
  const seed = async (holders: typeof swarm.peers, size: number): Promise<{ root: CID, data: Buffer }> =>
    shareOn(holders, { dir: swarm.dir, size, chunkSize: 256 * 1024 })

  it('re-checks kept leaves before trusting them: a deleted output, a deleted .part, a file overwritten by another fetch', async () => {
    const holders = swarm.peers.slice(1, 3)
    const fetcher = swarm.peers[3]
    // the fetched file is deleted: a fetch of it into another file downloads it again
    const first = await seed(holders, 3 * MiB)
    const a = path.join(swarm.dir, `a-${Math.random()}`)
    await fetcher.fetcher.fetch(first.root, { output: { path: a }, timeoutMs: 30_000 })
    await fs.rm(a)
    const b = path.join(swarm.dir, `b-${Math.random()}`)
    const again = await fetcher.fetcher.fetch(first.root, { output: { path: b }, timeoutMs: 30_000 })
    assert.ok((await fs.readFile(b)).equals(first.data))
    assert.equal(again.localBytes, 0, 'nothing was trusted from the deleted file')

    // the same for a one-block file (its root is its one leaf)
    const small = await seed(holders, 1000)
    const d = path.join(swarm.dir, `d-${Math.random()}`)
    await fetcher.fetcher.fetch(small.root, { output: { path: d }, timeoutMs: 30_000 })
    assert.deepEqual((await fetcher.content.locate(small.root)).files, [{ path: d, offset: 0 }])
    await fs.rm(d)
    const e = path.join(swarm.dir, `e-${Math.random()}`)
    await fetcher.fetcher.fetch(small.root, { output: { path: e }, timeoutMs: 30_000 })
    assert.ok((await fs.readFile(e)).equals(small.data))

    // an interrupted fetch whose .part is deleted (the daemon still running): the next fetch writes every byte
    const second = await seed(holders, 4 * MiB)
    for (const h of holders) h.uploadLimiter.setRate(2 * MiB)
    const c = path.join(swarm.dir, `c-${Math.random()}`)
    const part = path.join(swarm.dir, `.${path.basename(c)}.${second.root.toString()}.part`)
    const stop = new AbortController()
    const cancel = new Error('cancelled')
    await assert.rejects(fetcher.fetcher.fetch(second.root, {
      output: { path: c },
      timeoutMs: 30_000,
      signal: stop.signal,
      onProgress: p => { if (p.bytes >= MiB) stop.abort(cancel) }
    }), (err: Error) => err === cancel, 'the fetch ends with the caller\'s reason')
    for (const h of holders) h.uploadLimiter.setRate(0)
    assert.ok(fetcher.content.keptFiles(second.root).some(f => f.path === part && f.leaves > 0), 'the interrupted fetch kept leaves in its .part')
    await fs.rm(part)
    await fetcher.fetcher.fetch(second.root, { output: { path: c }, timeoutMs: 30_000 })
    assert.ok((await fs.readFile(c)).equals(second.data), 'no hole where the deleted .part was')

    // another file fetched over c with --force: c no longer keeps the first one's leaves
    const third = await seed(holders, MiB + 7)
    await fetcher.fetcher.fetch(third.root, { output: { path: c, force: true }, timeoutMs: 30_000 })
    assert.ok((await fs.readFile(c)).equals(third.data))
    const secondLeaves = (await fetcher.content.dagCids(second.root)).filter(cid => cid.code === RAW_CODE)
    assert.equal(secondLeaves.length, 16)
    for (const leaf of secondLeaves) assert.deepEqual((await fetcher.content.locate(leaf)).files, [], 'records of the replaced file are gone')
  })

  it('moves what a cancelled output kept into the store when another fetch of the file goes on', async () => {
    const holders = swarm.peers.slice(1, 3)
    const fetcher = swarm.peers[3]
    const { root, data } = await seed(holders, 4 * MiB)
    for (const h of holders) h.uploadLimiter.setRate(2 * MiB)
    const first = path.join(swarm.dir, `first-${Math.random()}`)
    const second = path.join(swarm.dir, `second-${Math.random()}`)
    // the first fetch keeps the leaves; a second joins it; then the first is cancelled
    const stop = new AbortController()
    const going = Promise.withResolvers<void>()
    const cancelled = fetcher.fetcher.fetch(root, {
      output: { path: first },
      timeoutMs: 30_000,
      signal: stop.signal,
      onProgress: p => { if (p.bytes >= 512 * 1024) going.resolve() }
    })
    cancelled.catch(() => {})
    await going.promise
    // cancelled once the second has joined the download (it reports progress)
    const joined = Promise.withResolvers<void>()
    const kept = fetcher.fetcher.fetch(root, { output: { path: second }, timeoutMs: 30_000, onProgress: () => { joined.resolve() } })
    kept.catch(() => {})
    await joined.promise
    const cancel = new Error('cancelled')
    stop.abort(cancel)
    await assert.rejects(cancelled, (err: Error) => err === cancel, 'the fetch ends with the caller\'s reason')
    for (const h of holders) h.uploadLimiter.setRate(0)
    await kept
    assert.ok((await fs.readFile(second)).equals(data))
    // (the given-up file's records stay, as a second place: a resume into it finds them)
    const firstPart = path.join(swarm.dir, `.${path.basename(first)}.${root.toString()}.part`)
    assert.ok(fetcher.content.keptFiles(root).some(f => f.path === firstPart && f.leaves > 0))
    const leaves = (await fetcher.content.dagCids(root)).filter(cid => cid.code === RAW_CODE)
    assert.equal(leaves.length, 16)
    const inStore = (await Promise.all(leaves.map(async l => (await fetcher.content.locate(l)).blockstore))).filter(Boolean).length
    // (and the rest of the download too: only the first output attached keeps leaves)
    assert.equal(inStore, leaves.length, 'what the given-up file kept went to the store')
    // the given-up .part is the user's to delete: what this peer holds must not depend on it
    for (const f of await fs.readdir(swarm.dir)) if (f.startsWith(`.${path.basename(first)}.`)) await fs.rm(path.join(swarm.dir, f))
    const chunks: Uint8Array[] = []
    for await (const chunk of fetcher.content.read(root)) chunks.push(chunk)
    assert.ok(Buffer.concat(chunks).equals(data), 'the held file reads whole')
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

    // a read between the rename and its record finds the file under its final name, and forgets nothing
    assert.ok(Buffer.from((await first.read(cids[1]))!).equals(blocks[1]))
    assert.equal(first.locate(cids[1])?.path, part)

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
