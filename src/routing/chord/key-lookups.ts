/**
 * The Overlay's lookups of keys, on top of lookup.ts's iterative
 * findSuccessors: `lookup` (one key, with its path) and `planner` (many
 * keys, planner.ts). Every lookup ends with the overlay (its lifetime
 * signal) and, when its caller gives no signal, after the lookup timeout;
 * the responsible peers it finds are published to libp2p's peer store, so
 * the content layers can dial them by peer ID.
 */
import type { AbortOptions } from '@libp2p/interface'
import type { LookupResult, ResponsiblePlanner } from '../index.ts'
import { MAX_PEERS_PER_MESSAGE } from './constants.ts'
import { InvalidReplicasError } from './errors.ts'
import { findSuccessors, type LookupOptions, type LookupOutcome } from './lookup.ts'
import type { PeerDirectory } from './peer-directory.ts'
import { ChordPlanner } from './planner.ts'
import type { Positions } from './positions.ts'
import type { RingState } from './ring-state.ts'
import type { ChordRpc } from './rpc.ts'

export interface KeyLookupsInit {
  state: RingState
  rpc: ChordRpc
  positions: Pick<Positions, 'ofKey'>
  directory: Pick<PeerDirectory, 'learn' | 'publish'>
  /** A query to this peer failed: resolves whether the peer now counts as dead (suspects.ts). */
  failed: (peer: string, err: unknown) => boolean
  /** Peers never to ask nor return (refused for not speaking Chord). */
  skip: (peer: string) => boolean
  /** The overlay's lifetime: aborted when it stops. */
  lifetime: () => AbortSignal
  /** A lookup whose caller gives no signal of its own ends after this long. */
  lookupTimeoutMs: number
}

export class KeyLookups {
  private readonly init: KeyLookupsInit

  constructor (init: KeyLookupsInit) {
    this.init = init
  }

  /** The k peers responsible for `key` (its successor and the next k-1), with the lookup's path. */
  async lookup (key: Uint8Array, k: number, options: AbortOptions = {}): Promise<LookupResult> {
    if (!Number.isInteger(k) || k < 1 || k > MAX_PEERS_PER_MESSAGE) throw new InvalidReplicasError(`k must be 1..${MAX_PEERS_PER_MESSAGE}, got ${k}`)
    const outcome = await this.findSuccessors(this.init.positions.ofKey(key), k, { signal: this.signal(options) })
    const responsible = [...new Set(outcome.window.peers)].slice(0, k)
    for (const peer of responsible) this.init.directory.publish(peer)
    return { responsible, path: outcome.path, hops: outcome.hops, messages: outcome.messages, ms: outcome.ms }
  }

  planner (): ResponsiblePlanner {
    const { state, positions, directory } = this.init
    return new ChordPlanner({
      ownWindow: () => state.ownWindow(),
      findWindow: async (key, count, options) => {
        const outcome = await this.findSuccessors(key, count, { signal: this.signal(options ?? {}) })
        for (const peer of outcome.window.peers) directory.publish(peer)
        return outcome.window
      },
      positionOfKey: key => positions.ofKey(key),
      positionOfPeer: peer => state.positionOf(peer)
    })
  }

  /** The raw lookup (maintenance's joins and fingers use it, under their own signals). */
  async findSuccessors (key: bigint, count: number, options: LookupOptions): Promise<LookupOutcome> {
    const { state, rpc, directory, failed, skip } = this.init
    return findSuccessors({ state, rpc, learn: peer => { directory.learn(peer) }, failed, skip }, key, count, options)
  }

  private signal (options: AbortOptions): AbortSignal {
    return AbortSignal.any([this.init.lifetime(), options.signal ?? AbortSignal.timeout(this.init.lookupTimeoutMs)])
  }
}
