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
import type { PeerMessage } from './messages.ts'
import type { ProviderRecords } from './provider-records.ts'
import type { RingState } from './ring-state.ts'
import type { ChordRpc } from './rpc.ts'

export interface LeaveInit {
  state: Pick<RingState, 'self' | 'successors' | 'predecessor' | 'wrapped'>
  onLeave: ChordInit['onLeave']
  /** True while the hook runs: the overlay's planners still work. */
  handingOver: (running: boolean) => void
  records: Pick<ProviderRecords, 'handOff'>
  rpc: Pick<ChordRpc, 'request'>
  /** A peer as it goes on the wire. */
  peerMessage: (peer: string) => PeerMessage
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
  await goodbye(init, successors, predecessor, { signal: farewell })
  init.log('left the ring (successor %s, predecessor %s)', successors[0], predecessor)
}

/** The predecessor and the first successor are told who closes the gap. */
async function goodbye (init: LeaveInit, successors: string[], predecessor: string | undefined, options: AbortOptions): Promise<void> {
  const { state } = init
  const leave = {
    predecessor: predecessor != null ? init.peerMessage(predecessor) : null,
    successors: [...successors, ...(state.wrapped ? [state.self] : [])].map(p => init.peerMessage(p))
  }
  const neighbours = [...new Set([predecessor, successors[0]].filter((p): p is string => p != null))]
  await Promise.all(neighbours.map(async peer => {
    try {
      await init.rpc.request(peer, { leave }, options)
    } catch (err) {
      init.log('%s did not take our leave: %s', peer, (err as Error).message)
    }
  }))
}
