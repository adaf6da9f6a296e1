/** Placement and repair counters, in the peer's own Prometheus registry. */
import { Counter, type Registry } from 'prom-client'

export interface PlacementMetrics {
  /** share pushed a block to a peer that kept it. */
  placed: (bytes: number) => void
  /** a peer placed a block here and it was kept. */
  replicaStored: (bytes: number) => void
  /** a block offered here was refused (reason: the status name). */
  replicaRefused: (reason: string) => void
  /** one repair pass over the replicas held here. */
  repairRun: () => void
  /** repair pushed a block to a closest peer that lacked it. */
  repairPushed: (bytes: number) => void
  /** repair dropped a replica the new closest peers proved they hold. */
  repairDropped: () => void
  /** a peer said it holds a block and did not prove it (one per block and peer). */
  holderUnproven: () => void
}

export function placementMetrics (registry: Registry | undefined): PlacementMetrics {
  if (registry == null) {
    const none = (): void => {}
    return { placed: none, replicaStored: none, replicaRefused: none, repairRun: none, repairPushed: none, repairDropped: none, holderUnproven: none }
  }
  const counter = (name: string, help: string, labelNames: string[] = []): Counter => new Counter({ name, help, labelNames, registers: [registry] })
  const placed = counter('shoal_placement_blocks_pushed_total', 'Blocks this peer placed on other peers (share)')
  const placedBytes = counter('shoal_placement_bytes_pushed_total', 'Bytes of blocks this peer placed on other peers (share)')
  const stored = counter('shoal_replicas_stored_total', 'Blocks other peers placed here and this peer kept')
  const storedBytes = counter('shoal_replica_bytes_stored_total', 'Bytes of blocks other peers placed here')
  const refused = counter('shoal_replicas_refused_total', 'Blocks offered to this peer and refused, by reason', ['reason'])
  const runs = counter('shoal_repair_runs_total', 'Repair passes over the replicas this peer holds')
  const pushed = counter('shoal_repair_blocks_pushed_total', 'Blocks repair pushed to closest peers that lacked them')
  const pushedBytes = counter('shoal_repair_bytes_pushed_total', 'Bytes repair pushed')
  const dropped = counter('shoal_repair_replicas_dropped_total', 'Replicas dropped once the closest peers proved they held them')
  const unproven = counter('shoal_repair_holders_unproven_total', 'Blocks a peer said it held and did not prove, when asked before a drop')
  return {
    placed: bytes => { placed.inc(); placedBytes.inc(bytes) },
    replicaStored: bytes => { stored.inc(); storedBytes.inc(bytes) },
    replicaRefused: reason => { refused.inc({ reason }) },
    repairRun: () => { runs.inc() },
    repairPushed: bytes => { pushed.inc(); pushedBytes.inc(bytes) },
    repairDropped: () => { dropped.inc() },
    holderUnproven: () => { unproven.inc() }
  }
}
