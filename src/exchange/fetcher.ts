/**
 * Fetch, the simple way (until the parallel scheduler of issue 5): finds the
 * holders of a file (the root's provider records and, for every block, its
 * closest peers), then gets each block from the first holder that has it,
 * one at a time, verifying every block against its CID before it is stored.
 * A peer that sends wrong bytes is dropped for the rest of the fetch. The
 * fetched DAG is then held as "fetched" and this peer announces itself as a
 * provider, so it serves others.
 */
import type { Logger } from '@libp2p/interface'
import type { CID } from 'multiformats/cid'
import { cidKey, matchesCid } from '../content/cid.ts'
import { decodeFileNode } from '../content/dag-reader.ts'
import { TimeoutError } from '../errors.ts'
import type { ShoalNode } from '../peer/libp2p.ts'
import type { Placement } from '../placement/placement.ts'
import { ContentNotFoundError } from '../store/errors.ts'
import type { ContentStore } from '../store/content-store.ts'
import { XferSession } from './xfer-client.ts'

export interface FetchInit {
  node: ShoalNode
  content: ContentStore
  placement: Placement
  replicas: number
  log: Logger
}

export interface FetchOptions {
  signal?: AbortSignal
  /** Give up finding a holder of a block after this long (ms). */
  timeoutMs?: number
  onProgress?: (progress: { blocks: number, bytes: number }) => void
}

export interface FetchResult {
  cid: string
  size: number
  blocks: number
  /** Bytes received from each peer. */
  peers: Record<string, number>
  seconds: number
  /** Blocks that were already here. */
  local: number
}

/** How many provider records to look for. */
const MAX_PROVIDERS = 20

export class Fetcher {
  private readonly init: FetchInit

  constructor (init: FetchInit) {
    this.init = init
  }

  async fetch (root: CID, options: FetchOptions = {}): Promise<FetchResult> {
    const started = performance.now()
    const timeout = AbortSignal.timeout(options.timeoutMs ?? 60_000)
    const signal = options.signal != null ? AbortSignal.any([options.signal, timeout]) : timeout
    const selfId = this.init.node.peerId.toString()
    const sessions = new Map<string, XferSession>()
    const banned = new Set<string>()
    const received: Record<string, number> = {}
    const k = this.init.replicas
    let blocks = 0
    let local = 0
    let bytes = 0
    const planner = this.init.placement.planner()
    const providers = await this.findProviders(root, signal)
    const download = this.init.content.openFetch()

    const session = async (peer: string): Promise<XferSession> => {
      let s = sessions.get(peer)
      if (s == null) {
        s = await XferSession.open(this.init.node, peer, signal)
        sessions.set(peer, s)
      }
      return s
    }

    const getBlock = async (cid: CID, candidates: string[]): Promise<Uint8Array> => {
      download.keep(cid)
      if (await this.init.content.hasBlock(cid)) {
        local++
        return this.init.content.blockstore.get(cid)
      }
      for (const peer of [...new Set([...candidates, ...providers])]) {
        if (peer === selfId || banned.has(peer)) continue
        let data: Uint8Array | undefined
        try {
          data = await (await session(peer)).get(cid, signal)
        } catch (err) {
          if (timeout.aborted) break
          signal.throwIfAborted()
          sessions.get(peer)?.abort(err as Error)
          sessions.delete(peer)
          this.init.log('getting %s from %s failed: %s', cid, peer, (err as Error).message)
          continue
        }
        if (data == null) continue
        if (!matchesCid(cid, data)) {
          // wrong bytes: never stored, and this peer is done for this fetch
          banned.add(peer)
          sessions.get(peer)?.abort(new Error('sent a block that does not match its CID'))
          sessions.delete(peer)
          this.init.log('peer %s sent wrong bytes for %s: dropped', peer, cid)
          continue
        }
        received[peer] = (received[peer] ?? 0) + data.length
        await download.storeBlock(cid, data)
        return data
      }
      if (timeout.aborted) throw new TimeoutError(`no holder of ${cid} answered within ${Math.round((options.timeoutMs ?? 60_000) / 1000)} s`)
      throw new ContentNotFoundError(`no holder of ${cidKey(cid)} found${cid.equals(root) ? '' : ` (a block of ${cidKey(root)})`}`)
    }

    try {
      const rootPlan = await planner.plan([root.multihash.bytes], 2 * k, signal)
      const walk = async (cid: CID, candidates: string[]): Promise<void> => {
        const data = await getBlock(cid, candidates)
        blocks++
        const node = decodeFileNode(cid, data)
        if (node.children.length === 0) {
          bytes += node.data.length
          options.onProgress?.({ blocks, bytes })
          return
        }
        bytes += node.data.length
        const plan = await planner.plan(node.children.map(c => c.cid.multihash.bytes), 2 * k, signal)
        for (let i = 0; i < node.children.length; i++) await walk(node.children[i].cid, plan.closest[i])
      }
      await walk(root, rootPlan.closest[0])
      const size = await this.init.content.size(root)
      await download.commit(root, { size, blocks })
      await this.announce(root, signal)
      return { cid: cidKey(root), size, blocks, peers: received, seconds: (performance.now() - started) / 1000, local }
    } finally {
      download.close()
      for (const s of sessions.values()) await s.close()
    }
  }

  private async findProviders (root: CID, signal: AbortSignal): Promise<string[]> {
    if (this.init.node.getPeers().length === 0) return []
    const found: string[] = []
    const lookup = AbortSignal.any([signal, AbortSignal.timeout(10_000)])
    try {
      for await (const event of this.init.node.services.dht.findProviders(root, { signal: lookup })) {
        if (event.name !== 'PROVIDER') continue
        for (const p of event.providers) {
          if (!found.includes(p.id.toString())) found.push(p.id.toString())
        }
        if (found.length >= MAX_PROVIDERS) break
      }
    } catch (err) {
      signal.throwIfAborted()
      this.init.log('finding providers of %s: %s', root, (err as Error).message)
    }
    return found
  }

  private async announce (root: CID, signal: AbortSignal): Promise<void> {
    if (this.init.node.getPeers().length === 0) return
    try {
      for await (const _ of this.init.node.services.dht.provide(root, { signal: AbortSignal.any([signal, AbortSignal.timeout(30_000)]) })) {}
    } catch (err) {
      this.init.log('announcing %s failed: %s', root, (err as Error).message)
    }
  }
}
