/**
 * A graceful leave, in the order that keeps what this peer holds:
 *
 *   1. the owner's hook (placement hands its replicas on): it may still
 *      plan with the overlay, so lookups go out while it runs (this peer
 *      answers none), under the leave's own deadline;
 *   2. the provider records kept here, handed to the successors;
 *   3. goodbyes to the successor and the predecessor, who take each other.
 *
 * Steps 2 and 3 have a deadline of their own (GOODBYE_TIMEOUT_MS): a hook
 * that used up the leave's deadline must not also cost the neighbours
 * their notice. The overlay's stop ends every step.
 */
import type { AbortOptions, Logger } from '@libp2p/interface'
import { GOODBYE_TIMEOUT_MS } from './constants.ts'
import type { ChordInit } from './index.ts'
import type { Maintenance } from './maintenance.ts'
import type { ProviderRecords } from './provider-records.ts'
import type { RingState } from './ring-state.ts'

export interface LeaveInit {
  state: Pick<RingState, 'successors' | 'predecessor'>
  onLeave: ChordInit['onLeave']
  /** True while the hook runs: the overlay's planners still work. */
  handingOver: (running: boolean) => void
  records: Pick<ProviderRecords, 'handOff'>
  maintenance: Pick<Maintenance, 'goodbye'>
  /** The overlay's lifetime: aborted when it stops. */
  lifetime: AbortSignal
  log: Logger
}

export async function leaveRing (init: LeaveInit, options: AbortOptions): Promise<void> {
  const signal = AbortSignal.any([init.lifetime, ...(options.signal != null ? [options.signal] : [])])
  const successors = [...init.state.successors]
  const predecessor = init.state.predecessor
  init.handingOver(true)
  try {
    await init.onLeave?.({ successors, predecessor }, { signal })
  } catch (err) {
    init.log.error('the leave hook failed - %e', err)
  } finally {
    init.handingOver(false)
  }
  const farewell = AbortSignal.any([init.lifetime, AbortSignal.timeout(GOODBYE_TIMEOUT_MS)])
  await init.records.handOff(successors, { signal: farewell })
  await init.maintenance.goodbye(successors, predecessor, { signal: farewell })
  init.log('left the ring (successor %s, predecessor %s)', successors[0], predecessor)
}
