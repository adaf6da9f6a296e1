/**
 * What bench/overlay.ts and bench/scale.ts both measure on a swarm of
 * daemons: lookups of random keys through `GET /api/v1/lookup`, spread over
 * the peers (hops, messages, latency, and whether the k answered are the
 * true k, the overlay's order over every ID), and the routing state per peer.
 */
import { randomBytes } from 'node:crypto'
import { peerIdFromString } from '@libp2p/peer-id'
import { CID } from 'multiformats/cid'
import * as raw from 'multiformats/codecs/raw'
import { sha256 } from 'multiformats/hashes/sha2'
import type { ApiClient } from '../src/api/client.ts'
import type { RoutingResponse } from '../src/api/routing-routes.ts'
import { toPosition } from '../src/routing/chord/ring.ts'
import type { OverlayName } from '../src/routing/index.ts'
import { compareDistance } from '../src/routing/kademlia/kad-distance.ts'
import { idOfKey, idOfPeer } from '../src/routing/key-space.ts'
import { median, round } from './stats.ts'

export interface LookupStats {
  lookups: number
  hopsMean: number
  hopsP95: number
  messagesMean: number
  messagesP95: number
  lookupMsP50: number
  lookupMsP95: number
  /** Share of lookups whose k responsible peers were the true k, in order. */
  trueK: number
}

/** `count` random raw CIDs (the same keys can be asked of several swarms). */
export async function randomKeys (count: number): Promise<CID[]> {
  return Promise.all(Array.from({ length: count }, async () => CID.createV1(raw.code, await sha256.digest(randomBytes(32)))))
}

/**
 * The k responsible peers of keys among a set of peers, as the overlay
 * orders them (the truth a lookup must find): every peer's position is
 * computed once, and each key's k come from one pass over the peers.
 */
export class TruthTable {
  private readonly overlay: OverlayName
  private readonly peers: Array<{ id: string, kadId: Uint8Array, position: bigint }>

  constructor (overlay: OverlayName, peers: string[]) {
    this.overlay = overlay
    this.peers = peers.map(id => {
      const kadId = idOfPeer(peerIdFromString(id))
      return { id, kadId, position: toPosition(kadId) }
    })
  }

  /** The k responsible peers of `key`, in the overlay's order. */
  responsible (key: Uint8Array, k: number): string[] {
    const target = idOfKey(key)
    const origin = toPosition(target)
    const size = 1n << 256n
    const before = this.overlay === 'kademlia'
      ? (a: { kadId: Uint8Array }, b: { kadId: Uint8Array }) => compareDistance(target, a.kadId, b.kadId) < 0
      : (a: { position: bigint }, b: { position: bigint }) => (a.position - origin + size) % size < (b.position - origin + size) % size
    const best: Array<(typeof this.peers)[number]> = []
    for (const peer of this.peers) {
      if (best.length === k && !before(peer, best[k - 1])) continue
      let at = best.length
      while (at > 0 && before(peer, best[at - 1])) at--
      best.splice(at, 0, peer)
      if (best.length > k) best.pop()
    }
    return best.map(p => p.id)
  }
}

/** Distinct peers in a peer's routing state. */
export function peersIn (routing: RoutingResponse): number {
  if (routing.overlay === 'kademlia') return new Set(routing.buckets.flatMap(b => b.peers)).size
  return new Set([...(routing.predecessor != null ? [routing.predecessor] : []), ...routing.successors, ...routing.fingers.map(f => f.peerId)]).size
}

/** Looks up every key with k = `k`, key i from peer i mod N, one at a time. */
export async function measureLookups (overlay: OverlayName, clients: ApiClient[], ids: string[], keys: CID[], k: number): Promise<LookupStats> {
  const hops: number[] = []
  const messages: number[] = []
  const ms: number[] = []
  let exact = 0
  const table = new TruthTable(overlay, ids)
  for (let i = 0; i < keys.length; i++) {
    const result = await clients[i % clients.length].lookup(keys[i].toString(), { replicas: k, timeoutMs: 60_000 })
    hops.push(result.hops)
    messages.push(result.messages)
    ms.push(result.ms)
    const want = table.responsible(keys[i].multihash.bytes, k)
    if (want.every((id, j) => result.responsible[j] === id)) exact++
  }
  return {
    lookups: keys.length,
    hopsMean: round(mean(hops), 2),
    hopsP95: quantile(hops, 0.95),
    messagesMean: round(mean(messages), 1),
    messagesP95: quantile(messages, 0.95),
    lookupMsP50: round(median(ms), 0),
    lookupMsP95: round(quantile(ms, 0.95), 0),
    trueK: round(exact / Math.max(1, keys.length), 2)
  }
}

export function mean (values: number[]): number {
  return values.reduce((a, b) => a + b, 0) / Math.max(1, values.length)
}

export function quantile (values: number[], q: number): number {
  const sorted = [...values].sort((a, b) => a - b)
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]
}
