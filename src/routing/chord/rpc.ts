/**
 * The asking side of /shoal/chord/1.0.0: a request and its answer on a
 * stream, under the query timeout. A stream carries one request at a time
 * and is kept for the next one to the same peer (a few per peer, closed
 * after CLIENT_IDLE_MS unused): a new stream per request costs its opening,
 * protocol negotiation and closing, several times the request itself, and
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
import type { AbortOptions, Logger, Stream } from '@libp2p/interface'
import type { ConnectionManager } from '@libp2p/interface-internal'
import type { AddressBook } from './address-book.ts'
import { CHORD_PROTOCOL, CLIENT_IDLE_MS, MAX_IDLE_STREAMS_PER_PEER, MAX_MESSAGE_BYTES } from './constants.ts'
import { MalformedMessageError } from './errors.ts'
import {
  ChordRequestCodec, ChordResponseCodec, operationOf,
  withPeerId, type ChordRequest, type ChordResponse, type Operation, type PeerMessage
} from './messages.ts'
import { InvalidInputError } from '../../errors.ts'

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

interface KeptStream {
  stream: Stream
  pb: ReturnType<typeof pbStream>
  idle?: ReturnType<typeof setTimeout>
}

export class ChordRpc {
  private readonly init: ChordRpcInit
  private readonly kept = new Map<string, KeptStream[]>()
  /** Requests sent since start (each has one answer, or failed). */
  sent = 0

  constructor (init: ChordRpcInit) {
    this.init = init
  }

  /** Sends one request to `peer` and returns its answer (the field matching the operation is set). */
  async request (peer: string, request: Omit<ChordRequest, 'from'>, options: AbortOptions = {}): Promise<ChordResponse> {
    const operation = operationOf(request)
    const signals = [this.init.lifetime(), AbortSignal.timeout(this.init.queryTimeoutMs)]
    if (options.signal != null) signals.push(options.signal)
    const signal = AbortSignal.any(signals)
    const message = { ...request, from: this.init.self() }
    this.sent++
    const reused = this.take(peer)
    if (reused != null) {
      try {
        return await this.exchange(peer, reused, message, operation, signal)
      } catch (err) {
        // the other side may have closed it while it sat here: one fresh try
        if (signal.aborted || err instanceof MalformedMessageError) throw err
      }
    }
    return this.exchange(peer, await this.open(peer, signal), message, operation, signal)
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

  /** Closes every kept stream (the overlay stops). */
  closeAll (): void {
    for (const streams of this.kept.values()) {
      for (const kept of streams) {
        clearTimeout(kept.idle)
        kept.stream.abort(new Error('the Chord overlay stopped'))
      }
    }
    this.kept.clear()
  }

  private async exchange (peer: string, kept: KeptStream, message: ChordRequest, operation: Operation, signal: AbortSignal): Promise<ChordResponse> {
    try {
      await kept.pb.write(message, ChordRequestCodec, { signal })
      const response = await kept.pb.read(ChordResponseCodec, { signal })
      if (response[ANSWER[operation]] == null) throw new MalformedMessageError(`${peer} answered ${operation} without its result`)
      this.keep(peer, kept)
      return response
    } catch (err) {
      kept.stream.abort(err as Error)
      throw err
    }
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

  /** An idle kept stream to `peer` that is still open. */
  private take (peer: string): KeptStream | undefined {
    const streams = this.kept.get(peer)
    while (streams != null && streams.length > 0) {
      const kept = streams.pop() as KeptStream
      clearTimeout(kept.idle)
      if (kept.stream.status === 'open' && kept.stream.writeStatus === 'writable' && (kept.stream.readStatus === 'readable' || kept.stream.readStatus === 'paused')) {
        if (streams.length === 0) this.kept.delete(peer)
        return kept
      }
      kept.stream.abort(new Error('stale'))
    }
    this.kept.delete(peer)
    return undefined
  }

  private keep (peer: string, kept: KeptStream): void {
    if (this.init.lifetime().aborted) {
      kept.stream.abort(new Error('the Chord overlay stopped'))
      return
    }
    const streams = this.kept.get(peer) ?? []
    if (streams.length >= MAX_IDLE_STREAMS_PER_PEER) {
      void kept.stream.close().catch(() => {})
      return
    }
    kept.idle = setTimeout(() => {
      const list = this.kept.get(peer)
      const at = list?.indexOf(kept) ?? -1
      if (list != null && at >= 0) {
        list.splice(at, 1)
        if (list.length === 0) this.kept.delete(peer)
      }
      void kept.stream.close().catch(() => { kept.stream.abort(new Error('closing an idle stream failed')) })
    }, CLIENT_IDLE_MS)
    kept.idle.unref?.()
    streams.push(kept)
    this.kept.set(peer, streams)
  }
}
