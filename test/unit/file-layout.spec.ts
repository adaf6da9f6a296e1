/**
 * The layout of a file DAG from anyone: crafted DAGs (repeated links, sizes
 * that lie, deep chains, too many links) are refused with InvalidDagError
 * before their pieces are listed; honest DAGs still resolve.
 */
import assert from 'node:assert/strict'
import type { CID } from 'multiformats/cid'
import { cidKey } from '../../src/content/cid.ts'
import { DAG_LIMITS, readFile, walkDag } from '../../src/content/dag-reader.ts'
import { resolveLayout } from '../../src/exchange/file-layout.ts'
import { fileNode, rawBlock, repeatedLinks, type CraftedBlock } from '../helpers/crafted-dag.ts'

function getterOf (blocks: CraftedBlock[]): { get: (cid: CID) => Promise<Uint8Array>, reads: () => number } {
  const byKey = new Map(blocks.map(b => [cidKey(b.cid), b.bytes]))
  let reads = 0
  return {
    get: async cid => {
      reads++
      const bytes = byKey.get(cidKey(cid))
      if (bytes == null) throw new Error(`no block ${cid}`)
      return bytes
    },
    reads: () => reads
  }
}

async function refused (promise: Promise<unknown>, why: RegExp): Promise<void> {
  await assert.rejects(promise, (err: Error) => {
    assert.equal(err.name, 'InvalidDagError', err.message)
    assert.match(err.message, why)
    return true
  })
}

describe('file layout of crafted DAGs', () => {
  it('refuses repeated links that list more pieces than the file size allows (a 2-node DAG of 10^6 pieces), at once', async () => {
    const bomb = repeatedLinks(1000, 2)
    const { get } = getterOf(bomb.blocks)
    const started = performance.now()
    await refused(resolveLayout(bomb.root, get), /more pieces than a file of 1000000 bytes/)
    assert.ok(performance.now() - started < 1000)
  })

  it('refuses a bomb whose sizes are consistent and large but whose pieces exceed the absolute bound', async () => {
    // 1024^3 leaves of 1 MiB: consistent sizes, far more than maxPieces
    const bomb = repeatedLinks(1024, 3, 1024 * 1024)
    const leaf = bomb.blocks[0]
    // the leaf need not be real for the layout: only nodes are read
    const { get, reads } = getterOf(bomb.blocks)
    await refused(resolveLayout(bomb.root, get), /more pieces than a file/)
    assert.ok(reads() <= 3, `each distinct node read once (${reads()})`)
    assert.ok(leaf != null)
  })

  it('refuses a child whose size disagrees with its parent\'s blockSizes', async () => {
    const leaf = rawBlock(new Uint8Array(100))
    const child = fileNode([{ cid: leaf.cid, size: 100 }, { cid: leaf.cid, size: 100 }])
    // the parent claims the child holds far more than it does
    const root = fileNode([{ cid: child.cid, size: 1 << 30 }])
    await refused(resolveLayout(root.cid, getterOf([leaf, child, root]).get), /holds 200 file bytes, its parent says 1073741824/)
    await refused((async () => { for await (const _ of readFile(root.cid, getterOf([leaf, child, root]).get)) { /* read */ } })(), /its parent says/)
  })

  it('refuses more links in one node than its bytes allow, a raw leaf larger than a block, a Tsize below the size', async () => {
    const leaf = rawBlock(new Uint8Array(1))
    const many = fileNode(Array.from({ length: DAG_LIMITS.linksPerNode + 1 }, () => ({ cid: leaf.cid, size: 1 })))
    await refused(resolveLayout(many.cid, getterOf([leaf, many]).get), /1025 links for 1025 bytes/)
    const huge = fileNode([{ cid: leaf.cid, size: DAG_LIMITS.maxLeafBytes + 1 }])
    await refused(resolveLayout(huge.cid, getterOf([leaf, huge]).get), /more than a block holds/)
    const tsize = fileNode([{ cid: leaf.cid, size: 1000, tsize: 10 }])
    await refused(resolveLayout(tsize.cid, getterOf([leaf, tsize]).get), /1000 file bytes in 10 encoded bytes/)
  })

  it('refuses a chain deeper than maxDepth, in the layout and in a walk', async () => {
    // a leaf claimed to be a full block (it is never read): pieces stay within bounds, only the depth is wrong
    const leaf = rawBlock(new Uint8Array(1))
    const blocks: CraftedBlock[] = []
    let below = leaf.cid
    for (let i = 0; i <= DAG_LIMITS.maxDepth + 1; i++) {
      const node = fileNode([{ cid: below, size: DAG_LIMITS.maxLeafBytes }])
      blocks.push(node)
      below = node.cid
    }
    await refused(resolveLayout(below, getterOf(blocks).get), /levels deep/)
    await refused((async () => { for await (const _ of walkDag(below, getterOf(blocks).get)) { /* walk */ } })(), /levels below its root/)
  })

  it('still resolves an honest file whose leaves repeat (a file of zeros), and walks each block once', async () => {
    const leaf = rawBlock(new Uint8Array(16 * 1024))
    const root = fileNode(Array.from({ length: 64 }, () => ({ cid: leaf.cid, size: leaf.bytes.length })))
    const layout = await resolveLayout(root.cid, getterOf([leaf, root]).get)
    assert.equal(layout.size, 64 * 16 * 1024)
    assert.equal(layout.pieces.length, 64)
    assert.equal(layout.pieces[63].offset, 63 * 16 * 1024)
    const walked: string[] = []
    for await (const cid of walkDag(root.cid, getterOf([leaf, root]).get)) walked.push(cidKey(cid))
    assert.deepEqual(walked, [cidKey(root.cid), cidKey(leaf.cid)])
  })
})
