/**
 * A DHT closest-peers lookup that also reports how many hops it took.
 *
 * Hops: a peer we asked straight from our routing table is at depth 1; a peer
 * we first heard of in the reply of a depth-d peer is at depth d+1. The
 * lookup's hop count is the deepest depth among the peers it returned, i.e.
 * the number of sequential round trips needed to reach all of them.
 */
import type { KadDHT } from '@libp2p/kad-dht'
import type { AbortOptions } from '@libp2p/interface'

export interface ClosestPeersResult {
  /** Peer IDs, closest first as the DHT returned them. */
  peers: string[]
  hops: number
  /** Peers sent a query during the lookup. */
  queried: number
  ms: number
}

export async function closestPeers (dht: KadDHT, key: Uint8Array, options: AbortOptions = {}): Promise<ClosestPeersResult> {
  const started = performance.now()
  const depth = new Map<string, number>()
  const found: string[] = []
  let queried = 0
  for await (const event of dht.getClosestPeers(key, { signal: options.signal })) {
    if (event.name === 'SEND_QUERY') {
      queried++
      const id = event.to.toString()
      if (!depth.has(id)) depth.set(id, 1)
    } else if (event.name === 'PEER_RESPONSE') {
      const d = (depth.get(event.from.toString()) ?? 1) + 1
      for (const peer of event.closer) {
        const id = peer.id.toString()
        if (!depth.has(id) || depth.get(id)! > d) depth.set(id, d)
      }
    } else if (event.name === 'FINAL_PEER') {
      found.push(event.peer.id.toString())
    }
  }
  const hops = found.reduce((max, id) => Math.max(max, depth.get(id) ?? 1), 0)
  return { peers: found, hops, queried, ms: performance.now() - started }
}
