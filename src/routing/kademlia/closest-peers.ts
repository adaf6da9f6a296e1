/**
 * A kad-dht closest-peers lookup, with the path it took: every query sent,
 * its depth, and when it was answered.
 *
 * Depth: a peer we asked straight from our routing table is at depth 1; a
 * peer we first heard of in the reply of a depth-d peer is at depth d+1. The
 * lookup's hop count is the deepest depth among the peers that decided the
 * answer, i.e. the number of sequential round trips needed to reach them.
 */
import type { KadDHT } from '@libp2p/kad-dht'
import type { AbortOptions } from '@libp2p/interface'
import type { LookupHop } from '../index.ts'

export interface KadLookup {
  /** Peer IDs closest first, as kad-dht returned them (at most its k; never this peer). */
  peers: string[]
  /** Every query sent, in the order they were answered; those never answered last. */
  path: LookupHop[]
  /** Queries sent. */
  messages: number
  ms: number
  /** The depth of a peer seen in this lookup (1 when it was never named by another). */
  depthOf: (peerId: string) => number
}

export async function kadLookup (dht: Pick<KadDHT, 'getClosestPeers'>, key: Uint8Array, options: AbortOptions = {}): Promise<KadLookup> {
  const started = performance.now()
  const depth = new Map<string, number>()
  const unanswered = new Map<string, LookupHop[]>()
  const path: LookupHop[] = []
  const peers: string[] = []
  let messages = 0
  const answered = (id: string, ok: boolean): void => {
    const hop = unanswered.get(id)?.shift()
    if (hop == null) return
    hop.ms = performance.now() - started
    hop.ok = ok
    path.push(hop)
  }
  for await (const event of dht.getClosestPeers(key, { signal: options.signal })) {
    if (event.name === 'SEND_QUERY') {
      messages++
      const id = event.to.toString()
      if (!depth.has(id)) depth.set(id, 1)
      let queue = unanswered.get(id)
      if (queue == null) unanswered.set(id, queue = [])
      queue.push({ peerId: id, hop: depth.get(id)!, ms: 0, ok: false })
    } else if (event.name === 'PEER_RESPONSE') {
      const from = event.from.toString()
      answered(from, true)
      const d = (depth.get(from) ?? 1) + 1
      for (const peer of event.closer) {
        const id = peer.id.toString()
        if (!depth.has(id) || depth.get(id)! > d) depth.set(id, d)
      }
    } else if (event.name === 'QUERY_ERROR') {
      answered(event.from.toString(), false)
    } else if (event.name === 'FINAL_PEER') {
      peers.push(event.peer.id.toString())
    }
  }
  const ms = performance.now() - started
  // queries still out when the lookup had its answer: they count as sent, not as answered
  for (const queue of unanswered.values()) for (const hop of queue) path.push({ ...hop, ms })
  return { peers, path, messages, ms, depthOf: id => depth.get(id) ?? 1 }
}
