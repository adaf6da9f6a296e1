/**
 * The asking side of /shoal/chord/1.0.0: a request and its answer on a
 * stream, under the query timeout. A stream carries one request at a time
 * and is kept for the next one to the same peer (src/wire/kept-streams.ts):
 * stabilize asks the same neighbours every round. A kept stream that turns
 * out closed by the other side is replaced once by a fresh one.
 *
 * Peers are dialled at the addresses the address book holds for them
 * (ending in /p2p/<id>, so an open connection is reused), else by peer ID
 * through the peer store. A peer that does not speak the protocol is
 * reported to `onRefused`.
 */
import { peerIdFromString } from '@libp2p/peer-id'
import { multiaddr } from '@multiformats/multiaddr'
import { pbStream } from '@libp2p/utils'
import type { AbortOptions, Logger } from '@libp2p/interface'
import type { ConnectionManager } from '@libp2p/interface-internal'
import type { AddressBook } from './address-book.ts'
import { CHORD_PROTOCOL, MAX_MESSAGE_BYTES } from './constants.ts'
import { MalformedMessageError } from './errors.ts'
import { Suspects } from './suspects.ts'
import {
  ChordRequestCodec, ChordResponseCodec, operationOf,
  withPeerId, type ChordRequest, type ChordResponse, type Operation, type PeerMessage
} from './messages.ts'
import { InvalidInputError } from '../../errors.ts'
import { KeptStreams, type KeptStream } from '../../wire/kept-streams.ts'

/** Which response field answers which request operation. */
const ANSWER: Record<Operation, keyof ChordResponse> = {
  find_successor: 'find_successor',
  get_state: 'state',
  leave: 'ack',
  ping: 'ack',
  add_providers: 'add_providers',
  get_providers: 'get_providers'
}

export const STREAM_OPTIONS = { maxDataLength: MAX_MESSAGE_BYTES, maxBufferSize: MAX_MESSAGE_BYTES + 16 }

export interface ChordRpcInit {
  connectionManager: Pick<ConnectionManager, 'openStream' | 'openConnection'>
  addresses: AddressBook
  /** This peer as it introduces itself in every request. */
  self: () => PeerMessage
  queryTimeoutMs: number
  /** Aborted when the overlay stops: every request in flight ends with it. */
  lifetime: () => AbortSignal
  /** A peer turned out not to speak Chord. */
  onRefused: (peer: string, reason: string) => void
  log: Logger
}

export class ChordRpc {
  private readonly init: ChordRpcInit
  private readonly streams: KeptStreams
  /** Requests sent since start (each has one answer, or failed). */
  sent = 0
  /** Peers whose requests failed, not yet dead; an answer clears one. */
  readonly suspects = new Suspects()

  constructor (init: ChordRpcInit) {
    this.init = init
    this.streams = new KeptStreams({ owner: 'the Chord overlay', lifetime: init.lifetime })
  }

  /** Sends one request to `peer` and returns its answer (the field matching the operation is set). */
  async request (peer: string, request: Omit<ChordRequest, 'from'>, options: AbortOptions = {}): Promise<ChordResponse> {
    const operation = operationOf(request)
    const signals = [this.init.lifetime(), AbortSignal.timeout(this.init.queryTimeoutMs)]
    if (options.signal != null) signals.push(options.signal)
    const signal = AbortSignal.any(signals)
    const message = { ...request, from: this.init.self() }
    this.sent++
    const response = await this.streams.use(peer, async () => this.open(peer, signal), async kept => this.exchange(peer, kept, message, operation, signal), {
      signal,
      // an answer out of protocol would come again on a fresh stream
      fatal: err => err instanceof MalformedMessageError
    })
    this.suspects.answered(peer)
    return response
  }

  /**
   * Dials an address (`/p2p/<id>`) and pings the peer there: resolves its
   * peer ID once it has answered (its address kept), throws when the dial
   * or the ping fails or the address is this peer's own.
   */
  async reach (address: string, self: string, options: AbortOptions = {}): Promise<string> {
    const addr = multiaddr(address)
    const signals = [this.init.lifetime(), AbortSignal.timeout(this.init.queryTimeoutMs)]
    if (options.signal != null) signals.push(options.signal)
    const connection = await this.init.connectionManager.openConnection(addr, { signal: AbortSignal.any(signals) })
    const peer = connection.remotePeer.toString()
    if (peer === self) throw new InvalidInputError(`${address} is this peer's own address`)
    this.init.addresses.add(peer, [withPeerId(addr, peer)])
    await this.request(peer, { ping: {} }, options)
    return peer
  }

  /** Closes every kept stream and forgets the suspects (the overlay stops). */
  closeAll (): void {
    this.streams.closeAll()
    this.suspects.clear()
  }

  private async exchange (peer: string, kept: KeptStream, message: ChordRequest, operation: Operation, signal: AbortSignal): Promise<ChordResponse> {
    await kept.pb.write(message, ChordRequestCodec, { signal })
    const response = await kept.pb.read(ChordResponseCodec, { signal })
    if (response[ANSWER[operation]] == null) throw new MalformedMessageError(`${peer} answered ${operation} without its result`)
    return response
  }

  private async open (peer: string, signal: AbortSignal): Promise<KeptStream> {
    const addrs = this.init.addresses.get(peer)
    try {
      const stream = await this.init.connectionManager.openStream(addrs.length > 0 ? addrs : peerIdFromString(peer), CHORD_PROTOCOL, { signal })
      return { stream, pb: pbStream(stream, STREAM_OPTIONS) }
    } catch (err) {
      if ((err as Error).name === 'UnsupportedProtocolError') this.init.onRefused(peer, `it does not speak ${CHORD_PROTOCOL}`)
      throw err
    }
  }
}
