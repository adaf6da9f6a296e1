/**
 * When is a swarm "routable"? When every peer's routing table holds at least
 * min(N-1, k) peers: then a lookup from any peer can start from a full
 * bucket's worth of contacts, and in a swarm of up to k+1 peers every peer
 * knows every other.
 */
export function routableThreshold (peerCount: number, kBucketSize: number): number {
  return Math.max(0, Math.min(peerCount - 1, kBucketSize))
}
