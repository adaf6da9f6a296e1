/**
 * Bit-flips on disk: in a leaf and a DAG node of a fetched file, in a
 * replica, in a leaf a new share of the same file finds. No wrong byte
 * reaches an output, a reader or another peer; the bad block is removed
 * and a good copy fetched (or imported) in its place.
 */
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import fs from 'node:fs/promises'
import path from 'node:path'
import type { CID } from 'multiformats/cid'
import { cidKey, cidOf, matchesCid, RAW_CODE } from '../../src/content/cid.ts'
import { XferSession } from '../../src/exchange/xfer-client.ts'
import type { ShoalPeer } from '../../src/peer/peer.ts'
import { createTestSwarm, type TestSwarm } from '../../src/swarm/test-swarm.ts'

const KiB = 1024

describe('hostile: local corruption', function () {
  this.timeout(120_000)
  let swarm: TestSwarm
  let sharer: ShoalPeer
  let fetcher: ShoalPeer
  let keeper: ShoalPeer
  before(async () => {
    swarm = await createTestSwarm(3)
    ;[sharer, fetcher, keeper] = swarm.peers
  })
  after(async () => { await swarm?.destroy() })

  /** The block file of `cid` in peer `index`'s repo (flatfs sharding, as FsBlockstore). */
  const blockFile = (index: number, cid: CID): string => {
    const key = cidKey(cid)
    return path.join(swarm.dir, `peer-${index}`, 'blocks', key.slice(-3, -1), key)
  }
  async function flipBit (file: string, at = 100): Promise<void> {
    const bytes = await fs.readFile(file)
    bytes[at % bytes.length] ^= 0x10
    await fs.writeFile(file, bytes)
  }
  const isGood = async (file: string, cid: CID): Promise<boolean> => matchesCid(cid, await fs.readFile(file))

  async function shared (size: number): Promise<{ root: CID, data: Buffer, file: string, leaves: CID[] }> {
    const data = randomBytes(size)
    const file = path.join(swarm.dir, `src-${Math.random()}`)
    await fs.writeFile(file, data)
    const { cid } = await sharer.content.shareFile(file, { chunkSize: 64 * KiB })
    await sharer.placement.place(cid, [], 0)
    const leaves = (await sharer.content.dagCids(cid)).filter(c => c.code === RAW_CODE)
    return { root: cid, data, file, leaves }
  }

  it('a flipped leaf and DAG node of a fetched file: a reader gets no wrong byte, the leaf is removed, a new fetch refetches both and writes the exact file', async () => {
    const { root, data, leaves } = await shared(10 * 64 * KiB + 5)
    await fetcher.fetcher.fetch(root, { timeoutMs: 30_000 }) // into the fetcher's blockstore
    const leaf = leaves[3]
    await flipBit(blockFile(1, leaf))
    // a reader of the held file: an error, never the flipped byte
    await assert.rejects((async () => { for await (const _ of fetcher.content.read(root)) { /* read */ } })(), (err: Error) => err.name === 'BlockMismatchError')
    await assert.rejects(fs.access(blockFile(1, leaf)), 'the read removed the rotten block')
    await flipBit(blockFile(1, root), 20)

    const target = path.join(swarm.dir, `out-${Math.random()}`)
    const result = await fetcher.fetcher.fetch(root, { output: { path: target }, timeoutMs: 30_000 })
    assert.ok((await fs.readFile(target)).equals(data), 'the exact file')
    assert.equal(result.peers[sharer.peerId.toString()], 64 * KiB, 'the rotten leaf, and only it, came from the network')
    assert.ok(await isGood(blockFile(1, root), root), 'the rotten DAG node was replaced by a fetched good one')
  })

  it('a flipped leaf is not copied into an output nor counted: it is removed and refetched', async () => {
    const { root, data, leaves } = await shared(6 * 64 * KiB)
    await fetcher.fetcher.fetch(root, { timeoutMs: 30_000 })
    await flipBit(blockFile(1, leaves[0]))
    await flipBit(blockFile(1, leaves[5]), 7)
    const target = path.join(swarm.dir, `out-${Math.random()}`)
    const result = await fetcher.fetcher.fetch(root, { output: { path: target }, timeoutMs: 30_000 })
    assert.ok((await fs.readFile(target)).equals(data))
    assert.equal(result.local, 1 + 4, 'the root and the 4 good leaves were here')
    assert.equal(result.peers[sharer.peerId.toString()], 2 * 64 * KiB)
  })

  it('a flipped replica is never sent: the holder answers it does not have it, drops it, and takes a good copy again', async () => {
    const bytes = randomBytes(200 * KiB)
    const cid = cidOf(RAW_CODE, bytes)
    assert.deepEqual(await keeper.content.storeReplicas([{ cid, bytes, replicas: 3 }]), [true])
    await flipBit(blockFile(2, cid))
    const session = await XferSession.open(fetcher.libp2p, keeper.peerId.toString())
    try {
      assert.equal(await session.want(cid), undefined, 'no bytes sent')
    } finally {
      await session.close()
    }
    await assert.rejects(fs.access(blockFile(2, cid)), 'the bad file is gone')
    assert.deepEqual(await keeper.content.list(cid), [], 'and its replica holding: repair puts a good copy back')
    assert.deepEqual(await keeper.content.storeReplicas([{ cid, bytes, replicas: 3 }]), [true])
    assert.ok(await isGood(blockFile(2, cid), cid))
  })

  it('sharing a file again replaces a rotten leaf of it with the good bytes', async () => {
    const { root, file, leaves } = await shared(4 * 64 * KiB)
    await flipBit(blockFile(0, leaves[2]))
    const again = await sharer.content.shareFile(file, { chunkSize: 64 * KiB })
    assert.ok(again.cid.equals(root))
    assert.ok(await isGood(blockFile(0, leaves[2]), leaves[2]))
  })
})
