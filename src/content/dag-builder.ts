/**
 * Builds the UnixFS balanced DAG over a file's raw leaves, streaming: a
 * parent node is written as soon as it has its 1024 children, so a file of
 * any size needs memory for at most 1024 links per level.
 *
 * The shape and encoding are exactly those of ipfs-unixfs-importer's
 * `balanced` layout with its file reducer (what Helia's `@helia/unixfs` uses
 * by default), so Shoal and IPFS give a file the same CID:
 *  - leaves are grouped in batches of `maxChildren`, each batch becomes a
 *    dag-pb node of UnixFS type `file` with one `blockSizes` entry per child
 *    and links named '' whose Tsize is the child's cumulative size;
 *  - the resulting nodes are grouped the same way, level by level, until one
 *    is left: the root;
 *  - a file of one chunk is that raw leaf itself (no parent node);
 *  - a trailing batch of one child still gets its own parent node.
 * test/unit/dag-builder.spec.ts proves equality against the reference.
 */
import * as dagPb from '@ipld/dag-pb'
import { UnixFS } from 'ipfs-unixfs'
import type { CID } from 'multiformats/cid'
import { cidOf, DAG_PB_CODE } from './cid.ts'

export const MAX_CHILDREN_PER_NODE = 1024

/** A node of the DAG as its parent sees it. */
export interface DagRef {
  cid: CID
  /** File bytes under this node. */
  fileSize: number
  /** Encoded bytes of this node and everything under it (dag-pb Tsize). */
  tsize: number
}

export interface Block {
  cid: CID
  bytes: Uint8Array
}

export type BlockSink = (block: Block) => Promise<void>

export class BalancedDagBuilder {
  private readonly levels: DagRef[][] = [[]]
  private readonly writeNode: BlockSink
  private readonly maxChildren: number
  private leaves = 0
  private nodes = 0
  private finished = false

  /** `writeNode` stores each parent node the builder makes. */
  constructor (writeNode: BlockSink, maxChildren = MAX_CHILDREN_PER_NODE) {
    this.writeNode = writeNode
    this.maxChildren = maxChildren
  }

  /** Leaves in file order; the caller has stored the leaf block itself. */
  async addLeaf (cid: CID, size: number): Promise<void> {
    if (this.finished) throw new Error('DAG already finished')
    this.leaves++
    await this.push(0, { cid, fileSize: size, tsize: size })
  }

  /** Parent nodes written so far. */
  get nodeCount (): number {
    return this.nodes
  }

  private async push (level: number, ref: DagRef): Promise<void> {
    this.levels[level] ??= []
    const batch = this.levels[level]
    batch.push(ref)
    if (batch.length === this.maxChildren) {
      this.levels[level] = []
      await this.push(level + 1, await this.parentOf(batch))
    }
  }

  /** Closes every partial batch bottom-up and returns the root. */
  async finish (): Promise<DagRef> {
    if (this.finished) throw new Error('DAG already finished')
    this.finished = true
    if (this.leaves === 0) throw new Error('a file has at least one (possibly empty) chunk')
    // A single leaf, never batched: the file is that raw block.
    if (this.leaves === 1) return this.levels[0][0]
    for (let level = 0; ; level++) {
      const batch = this.levels[level]
      const isTop = level === this.levels.length - 1
      if (isTop && batch.length === 1) return batch[0]
      if (batch.length > 0) {
        this.levels[level] = []
        const parent = await this.parentOf(batch)
        if (isTop) return parent
        this.levels[level + 1].push(parent)
      }
    }
  }

  private async parentOf (children: DagRef[]): Promise<DagRef> {
    const unixfs = new UnixFS({ type: 'file' })
    const links: dagPb.PBLink[] = []
    let fileSize = 0
    let tsize = 0
    for (const child of children) {
      // The reference drops empty children; only an empty single-chunk file
      // has one, and that never reaches a parent.
      if (child.fileSize === 0) continue
      unixfs.addBlockSize(BigInt(child.fileSize))
      links.push({ Name: '', Tsize: child.tsize, Hash: child.cid })
      fileSize += child.fileSize
      tsize += child.tsize
    }
    const bytes = dagPb.encode(dagPb.prepare({ Data: unixfs.marshal(), Links: links }))
    const cid = cidOf(DAG_PB_CODE, bytes)
    await this.writeNode({ cid, bytes })
    this.nodes++
    return { cid, fileSize, tsize: tsize + bytes.length }
  }
}
