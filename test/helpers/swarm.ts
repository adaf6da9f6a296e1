/**
 * What the swarm tests share: files shared through a peer (`peer.share`,
 * import -> DAG -> place), who holds a block, and who should (on either
 * overlay: `trueResponsible`).
 */
import { randomBytes } from 'node:crypto'
import fs from 'node:fs/promises'
import path from 'node:path'
import { peerIdFromString } from '@libp2p/peer-id'
import type { CID } from 'multiformats/cid'
import type { ShoalPeer } from '../../src/peer/peer.ts'
import type { PeerShareResult } from '../../src/peer/share.ts'
import { clockwiseFrom, toPosition } from '../../src/routing/chord/ring.ts'
import type { OverlayName } from '../../src/routing/index.ts'
import { closestByXor } from '../../src/routing/kademlia/kad-distance.ts'
import { idOfKey, idOfPeer } from '../../src/routing/key-space.ts'

export interface SharedFile {
  root: CID
  /** Every block of its DAG: root, inner nodes, leaves. */
  cids: CID[]
  data: Buffer
  result: PeerShareResult
}

export interface ShareRandomOptions {
  /** Folder the file is written to before it is shared. */
  dir: string
  size: number
  chunkSize?: number
  /** Copies of each block to place (default: the peer's config, 3). */
  replicas?: number
}

/** A new file of random bytes, written to `options.dir` and shared by `peer`. */
export async function shareRandom (peer: ShoalPeer, options: ShareRandomOptions): Promise<SharedFile> {
  const data = randomBytes(options.size)
  const file = await writeRandomFile(options.dir, data)
  const result = await peer.share({ path: file }, { chunkSize: options.chunkSize, replicas: options.replicas })
  return { root: result.cid, cids: await peer.content.dagCids(result.cid), data, result }
}

/**
 * One new file of random bytes shared by each of `holders` with no replicas
 * placed: each keeps every block and announces the root.
 */
export async function shareOn (holders: ShoalPeer[], options: Omit<ShareRandomOptions, 'replicas'>): Promise<{ root: CID, data: Buffer }> {
  const data = randomBytes(options.size)
  const file = await writeRandomFile(options.dir, data)
  let root: CID | undefined
  for (const peer of holders) {
    const { cid } = await peer.share({ path: file }, { chunkSize: options.chunkSize, replicas: 0 })
    if (root != null && !root.equals(cid)) throw new Error(`${peer.peerId} made ${cid} of the bytes another holder made ${root} of`)
    root = cid
  }
  if (root == null) throw new Error('shareOn needs at least one holder')
  return { root, data }
}

/** IDs of the peers among `peers` whose store holds `cid`, sorted. */
export async function holdersOf (peers: ShoalPeer[], cid: CID): Promise<string[]> {
  const out: string[] = []
  for (const peer of peers) if (await peer.content.hasBlock(cid)) out.push(peer.peerId.toString())
  return out.sort()
}

/**
 * The `k` of `peers` responsible for `cid` as their overlay defines it
 * (`Overlay.order`: on Kademlia the k closest by XOR, on Chord the key's
 * successor and the k-1 after it on the ring), in responsibility order.
 */
export function trueResponsible (peers: ShoalPeer[], cid: CID, k: number): string[] {
  if (peers.length === 0) return []
  return peers[0].overlay.order(cid.multihash.bytes, peers.map(p => p.peerId.toString())).slice(0, k)
}

/**
 * The same truth for peers known only by ID (daemons in other processes),
 * worked out from the identifier space itself, not through an overlay.
 */
export function trueResponsibleOf (overlay: OverlayName, key: Uint8Array, peerIds: string[], k: number): string[] {
  if (overlay === 'kademlia') return closestByXor(key, peerIds.map(p => peerIdFromString(p)), k).map(String)
  return clockwiseFrom(toPosition(idOfKey(key)), peerIds, p => toPosition(idOfPeer(peerIdFromString(p)))).slice(0, k)
}

/** The `k` of `peers` closest to `cid` by XOR, as kad-dht measures it, closest first. */
export function trueClosest (peers: ShoalPeer[], cid: CID, k: number): string[] {
  return closestByXor(cid.multihash.bytes, peers.map(p => p.peerId), k).map(p => p.toString())
}

async function writeRandomFile (dir: string, data: Buffer): Promise<string> {
  const file = path.join(dir, `file-${Date.now()}-${Math.random()}`)
  await fs.writeFile(file, data)
  return file
}
