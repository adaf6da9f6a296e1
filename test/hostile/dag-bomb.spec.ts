/**
 * A DAG bomb served by a real peer: a few KB of crafted dag-pb nodes that
 * describe millions of pieces, or sizes that lie. The fetching daemon
 * refuses it with InvalidDagError within a second, its memory barely moves,
 * and it goes on fetching and serving honest files.
 */
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import fs from 'node:fs/promises'
import path from 'node:path'
import type { CID } from 'multiformats/cid'
import type { ShoalPeer } from '../../src/peer/peer.ts'
import { createTestSwarm, type TestSwarm } from '../../src/swarm/test-swarm.ts'
import { fileNode, rawBlock, repeatedLinks, type CraftedBlock } from '../helpers/crafted-dag.ts'

const MiB = 1024 * 1024

describe('hostile: a DAG bomb served by a peer', function () {
  this.timeout(120_000)
  let swarm: TestSwarm
  let server: ShoalPeer
  let fetcher: ShoalPeer
  before(async () => {
    swarm = await createTestSwarm(3)
    ;[server, fetcher] = swarm.peers
  })
  after(async () => { await swarm?.destroy() })

  /** The bomb's blocks held by the serving peer (as replicas: it serves whatever it holds). */
  async function serve (blocks: CraftedBlock[]): Promise<void> {
    const stored = await server.content.storeReplicas(blocks.map(b => ({ ...b, replicas: 1 })))
    for (const s of stored) assert.ok(!(s instanceof Error), String(s))
  }

  async function fetchRefused (root: CID, why: RegExp): Promise<void> {
    const target = path.join(swarm.dir, `bomb-${Math.random()}.out`)
    global.gc?.()
    const heapBefore = process.memoryUsage().heapUsed
    const started = performance.now()
    await assert.rejects(fetcher.fetcher.fetch(root, { output: { path: target }, timeoutMs: 10_000 }), (err: Error) => {
      assert.equal(err.name, 'InvalidDagError', err.message)
      assert.match(err.message, why)
      return true
    })
    const took = performance.now() - started
    assert.ok(took < 1000, `refused in ${Math.round(took)} ms`)
    const grown = (process.memoryUsage().heapUsed - heapBefore) / MiB
    assert.ok(grown < 64, `heap grew by ${grown.toFixed(1)} MiB`)
    assert.deepEqual(await fetcher.content.list(root), [], 'nothing held for it')
    await assert.rejects(fs.access(target))
  }

  it('refuses 10^6 pieces of repeated links (2 nodes, under 100 KB) within 1 s', async () => {
    const bomb = repeatedLinks(1000, 2)
    assert.ok(bomb.blocks.reduce((n, b) => n + b.bytes.length, 0) < 100_000)
    await serve(bomb.blocks)
    await fetchRefused(bomb.root, /more pieces than a file of 1000000 bytes/)
  })

  it('refuses a node whose size disagrees with its parent\'s, and a leaf larger than its parent says', async () => {
    const leaf = rawBlock(randomBytes(64 * 1024))
    const child = fileNode([{ cid: leaf.cid, size: leaf.bytes.length }])
    const lying = fileNode([{ cid: child.cid, size: 1 << 30, tsize: 2 ** 31 }])
    await serve([leaf, child, lying])
    await fetchRefused(lying.cid, /its parent says 1073741824/)
    // the leaf is the CID's, but the DAG gives it 16 KiB: no byte of it lands in the output
    const short = fileNode([{ cid: leaf.cid, size: 16 * 1024 }, { cid: leaf.cid, size: 16 * 1024 }])
    await serve([short])
    await fetchRefused(short.cid, /holds 65536 bytes, the DAG says 16384/)
  })

  it('the fetching daemon lives on: it fetches an honest file and serves it to another peer', async () => {
    const data = randomBytes(3 * MiB + 17)
    const file = path.join(swarm.dir, 'honest')
    await fs.writeFile(file, data)
    const { cid } = await server.content.shareFile(file, { chunkSize: 256 * 1024 })
    const mine = path.join(swarm.dir, 'honest-fetched')
    await fetcher.fetcher.fetch(cid, { output: { path: mine }, timeoutMs: 30_000 })
    assert.ok((await fs.readFile(mine)).equals(data))
    // the server forgets it: the third peer can only get it from the fetcher
    await server.content.remove(cid)
    const theirs = path.join(swarm.dir, 'honest-from-fetcher')
    const result = await swarm.peers[2].fetcher.fetch(cid, { output: { path: theirs }, timeoutMs: 30_000 })
    assert.ok((await fs.readFile(theirs)).equals(data))
    assert.deepEqual(Object.keys(result.peers), [fetcher.peerId.toString()])
  })
})
