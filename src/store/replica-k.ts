import { MAX_RANKED_REPLICAS } from '../constants.ts'

/**
 * The k a replica is kept for here, when another peer places it: what the
 * sender asks, never below this peer's own `replicas` nor what was recorded
 * before (one peer re-putting a block with k = 1 must not make every holder
 * drop it), and never above the largest k a put is ranked against
 * (MAX_RANKED_REPLICAS, or this peer's own k if larger; store-server.ts):
 * peers refuse copies ranked beyond it, so a larger k would only make every
 * repair pass plan, ask and push for copies that cannot be placed (a put
 * with k = 64 would have each holder push to 63 peers every pass).
 */
export function replicaKCap (own: number): number {
  return Math.max(own, MAX_RANKED_REPLICAS)
}

/** The k to record for a replica: `asked` by its sender, `recorded` before (if held), this peer's `own`. */
export function acceptedReplicaK (own: number, asked: number, recorded?: number): number {
  return Math.max(own, Math.min(Math.max(asked, recorded ?? 0), replicaKCap(own)))
}
