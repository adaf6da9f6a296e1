/**
 * The answering side of /shoal/chord/1.0.0: reads requests one after
 * another on a stream and answers each from the ring state; the stream
 * closes when the asker closes it or after SERVED_STREAM_IDLE_MS of silence.
 * Answers are computed at once (no waiting), and writing one has its own
 * deadline. A malformed or oversized request, or one whose `from` is not
 * the peer at the other end of the connection, resets the stream; the peer
 * goes on serving others.
 */
import { pbStream } from '@libp2p/utils'
import type { Connection, Logger, Stream } from '@libp2p/interface'
import { CLOSER_PEERS_PER_ANSWER, INBOUND_TIMEOUT_MS, MAX_PROVIDERS_PER_KEY } from './constants.ts'
import { SERVED_STREAM_IDLE_MS } from '../../wire/limits.ts'
import { isEndOfStream } from '../../wire/streams.ts'
import { MalformedMessageError } from './errors.ts'
import type { Maintenance } from './maintenance.ts'
import {
  ChordRequestCodec, ChordResponseCodec, checkProviderKey, checkRecords, checkRingKey, decodePeer, decodePeers, operationOf,
  type ChordRequest, type ChordResponse, type PeerInfo, type PeerMessage
} from './messages.ts'
import type { ProviderStore } from './provider-store.ts'
import { inHalfOpen, inOpen, toPosition } from './ring.ts'
import type { RingState } from './ring-state.ts'
import { STREAM_OPTIONS } from './rpc.ts'

export interface ChordServerInit {
  state: RingState
  maintenance: Maintenance
  providers: ProviderStore
  /** A peer as it goes on the wire (its ID and the addresses known for it). */
  peerMessage: (peer: string) => PeerMessage
  learn: (peer: PeerInfo) => void
  /** Whether this peer keeps records for `key` placed on `replicas` peers. */
  acceptsRecord: (key: Uint8Array, replicas: number) => boolean
  /** True once this peer has left the ring: every request is then refused (reset), as from a dead peer. */
  closed: () => boolean
  log: Logger
  /** Counted for metrics and the benchmarks. */
  onRequest?: (operation: string, from: string) => void
}

export class ChordServer {
  private readonly init: ChordServerInit

  constructor (init: ChordServerInit) {
    this.init = init
  }

  readonly handle = async (stream: Stream, connection: Connection): Promise<void> => {
    const remote = connection.remotePeer.toString()
    const pb = pbStream(stream, STREAM_OPTIONS)
    try {
      // one request after another, until the asker closes or goes silent
      while (true) {
        let request: ChordRequest
        try {
          request = await pb.read(ChordRequestCodec, { signal: AbortSignal.timeout(SERVED_STREAM_IDLE_MS) })
        } catch (err) {
          if (isEndOfStream(err)) break
          throw err
        }
        if (this.init.closed()) throw new Error('this peer has left the ring')
        const from = decodePeer(request.from)
        if (from.id !== remote) throw new MalformedMessageError(`a request from ${remote} claims to come from ${from.id}`)
        this.init.learn(from)
        const response = this.answer(request, from.id)
        await pb.write(response, ChordResponseCodec, { signal: AbortSignal.timeout(INBOUND_TIMEOUT_MS) })
      }
      await stream.close({ signal: AbortSignal.timeout(INBOUND_TIMEOUT_MS) })
    } catch (err) {
      this.init.log('chord stream from %s reset: %s', remote, (err as Error).message)
      stream.abort(err as Error)
    }
  }

  private answer (request: ChordRequest, from: string): ChordResponse {
    const operation = operationOf(request)
    this.init.onRequest?.(operation, from)
    switch (operation) {
      case 'find_successor': return { find_successor: this.findSuccessor(checkRingKey(request.find_successor!.key)) }
      case 'get_state': return { state: this.getState(from, request.get_state!.notify) }
      case 'leave': {
        const leave = request.leave!
        this.init.maintenance.left(from, leave.predecessor != null ? decodePeer(leave.predecessor) : undefined, decodePeers(leave.successors))
        return { ack: {} }
      }
      case 'ping': return { ack: {} }
      case 'add_providers': return { add_providers: { accepted: this.addProviders(from, request.add_providers!) } }
      case 'get_providers': {
        const providers = this.init.providers.get(checkProviderKey(request.get_providers!.key)).slice(-MAX_PROVIDERS_PER_KEY)
        return { get_providers: { providers: providers.map(p => this.init.peerMessage(p.id)) } }
      }
    }
  }

  private findSuccessor (keyBytes: Uint8Array): NonNullable<ChordResponse['find_successor']> {
    const { state } = this.init
    const key = toPosition(keyBytes)
    if (state.precedesKey(key)) {
      if (state.confirmed) return { done: true, successors: this.successorList(), complete: state.wrapped, closer: [], confirmed: true }
      // not on the ring for sure yet: the answer may skip a peer, which the
      // successor's own predecessor may be; a join asks that one too
      const between = state.successorsPredecessor
      const closer = between != null && inOpen(state.selfPosition, state.positionOf(between), key) ? [between] : []
      return { done: true, successors: this.successorList(), complete: state.wrapped, closer: closer.map(this.init.peerMessage), confirmed: false }
    }
    const closer = state.closestPreceding(key, CLOSER_PEERS_PER_ANSWER)
    // a list that reaches past the key names the key's successor: sent along,
    // the asker goes to it at once, or past it when it is dead
    const last = state.successors[state.successors.length - 1]
    const spans = state.confirmed && last != null && inHalfOpen(state.selfPosition, key, state.positionOf(last))
    return { done: false, successors: spans ? this.successorList() : [], complete: spans && state.wrapped, closer: closer.map(this.init.peerMessage), confirmed: false }
  }

  private getState (from: string, notify: boolean): NonNullable<ChordResponse['state']> {
    const { state } = this.init
    if (notify) this.init.maintenance.notified(from)
    return {
      predecessor: state.predecessor != null ? this.init.peerMessage(state.predecessor) : null,
      successors: this.successorList(),
      complete: state.wrapped
    }
  }

  /** The successor list as sent: a list that closes the ring ends with this peer. */
  private successorList (): PeerMessage[] {
    const { state } = this.init
    const list = [...state.successors, ...(state.wrapped ? [state.self] : [])]
    return list.map(this.init.peerMessage)
  }

  private addProviders (from: string, message: NonNullable<ChordRequest['add_providers']>): number {
    // the whole message is checked before any of it is kept
    const records = checkRecords(message.records).map(record => ({ key: checkProviderKey(record.key), providers: decodePeers(record.providers) }))
    let accepted = 0
    for (const { key, providers } of records) {
      if (!this.init.acceptsRecord(key, message.replicas)) continue
      let kept = false
      for (const provider of providers) {
        this.init.learn(provider)
        if (this.init.providers.add(key, provider)) kept = true
      }
      if (kept) accepted++
    }
    if (accepted > 0) this.init.log.trace('kept %d provider records from %s', accepted, from)
    return accepted
  }
}
