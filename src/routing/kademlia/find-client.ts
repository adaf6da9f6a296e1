/**
 * The asking side of /shoal/kad/find/1.0.0: one request and its answer on
 * a stream, under FIND_QUERY_TIMEOUT_MS. A stream carries one request at a
 * time and is kept for the next one to the same peer (a few per peer,
 * closed after FIND_CLIENT_IDLE_MS unused): a new stream per query costs
 * its opening, protocol negotiation and closing, several times the query
 * itself. A kept stream that turns out closed by the other side is
 * replaced once by a fresh one.
 *
 * A peer is dialled at the addresses the answer that named it gave (each
 * ending in /p2p/<id>, so an open connection is reused), else by peer ID.
 * A peer that does not speak the protocol (an older Shoal) raises
 * FindUnsupportedError once, and is remembered: the overlay asks it over
 * kad-dht's FIND_NODE instead.
 */
import { pbStream } from '@libp2p/utils'
import type { AbortOptions, Logger, PeerId, PeerInfo, Stream } from '@libp2p/interface'
import type { ConnectionManager } from '@libp2p/interface-internal'
import {
  FIND_CLIENT_IDLE_MS, FIND_QUERY_TIMEOUT_MS, KAD_FIND_PROTOCOL, MAX_IDLE_FIND_STREAMS_PER_PEER, MAX_LEGACY_PEERS
} from './constants.ts'
import { FindUnsupportedError, MalformedFindMessageError } from './errors.ts'
import { decodeResponse, FindRequestCodec, FindResponseCodec } from './find-messages.ts'
import { FIND_STREAM_OPTIONS } from './find-server.ts'

export interface FindClientInit {
  connectionManager: Pick<ConnectionManager, 'openStream'>
  /** Aborted when the overlay stops: every query in flight ends with it. */
  lifetime: () => AbortSignal
  queryTimeoutMs?: number
  log: Logger
}

interface KeptStream {
  stream: Stream
  pb: ReturnType<typeof pbStream>
  idle?: ReturnType<typeof setTimeout>
}

export class FindClient {
  private readonly init: FindClientInit
  private readonly kept = new Map<string, KeptStream[]>()
  /** Peers that refused the protocol, least recently refused first. */
  private readonly legacy = new Set<string>()
  /** Queries sent since start. */
  sent = 0

  constructor (init: FindClientInit) {
    this.init = init
  }

  /** Whether `peer` was found not to speak the protocol. */
  isLegacy (peer: string): boolean {
    return this.legacy.has(peer)
  }

  /**
   * The peers `to` knows closest to `kadId` (at most `count`, checked);
   * throws when it does not answer, answers out of protocol
   * (MalformedFindMessageError) or does not speak it (FindUnsupportedError).
   */
  async find (to: PeerInfo, kadId: Uint8Array, count: number, options: AbortOptions = {}): Promise<PeerInfo[]> {
    const peer = to.id.toString()
    const signals = [this.init.lifetime(), AbortSignal.timeout(this.init.queryTimeoutMs ?? FIND_QUERY_TIMEOUT_MS)]
    if (options.signal != null) signals.push(options.signal)
    const signal = AbortSignal.any(signals)
    this.sent++
    const reused = this.take(peer)
    if (reused != null) {
      try {
        return await this.exchange(peer, reused, kadId, count, signal)
      } catch (err) {
        // the other side may have closed it while it sat here: one fresh try
        if (signal.aborted || err instanceof MalformedFindMessageError) throw err
      }
    }
    return this.exchange(peer, await this.open(to, signal), kadId, count, signal)
  }

  /** Closes every kept stream (the overlay stops). */
  closeAll (): void {
    for (const streams of this.kept.values()) {
      for (const kept of streams) {
        clearTimeout(kept.idle)
        kept.stream.abort(new Error('the Kademlia overlay stopped'))
      }
    }
    this.kept.clear()
  }

  private async exchange (peer: string, kept: KeptStream, key: Uint8Array, count: number, signal: AbortSignal): Promise<PeerInfo[]> {
    try {
      await kept.pb.write({ key, count }, FindRequestCodec, { signal })
      const closer = decodeResponse(await kept.pb.read(FindResponseCodec, { signal }), count, peer)
      this.keep(peer, kept)
      return closer
    } catch (err) {
      kept.stream.abort(err as Error)
      throw err
    }
  }

  private async open (to: PeerInfo, signal: AbortSignal): Promise<KeptStream> {
    const target: PeerId | PeerInfo['multiaddrs'] = to.multiaddrs.length > 0 ? to.multiaddrs : to.id
    try {
      const stream = await this.init.connectionManager.openStream(target, KAD_FIND_PROTOCOL, { signal })
      return { stream, pb: pbStream(stream, FIND_STREAM_OPTIONS) }
    } catch (err) {
      if ((err as Error).name === 'UnsupportedProtocolError') {
        const peer = to.id.toString()
        this.legacy.delete(peer)
        this.legacy.add(peer)
        for (const oldest of this.legacy) {
          if (this.legacy.size <= MAX_LEGACY_PEERS) break
          this.legacy.delete(oldest)
        }
        this.init.log('%s does not speak %s', peer, KAD_FIND_PROTOCOL)
        throw new FindUnsupportedError(`${peer} does not speak ${KAD_FIND_PROTOCOL}`)
      }
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
      kept.stream.abort(new Error('the Kademlia overlay stopped'))
      return
    }
    const streams = this.kept.get(peer) ?? []
    if (streams.length >= MAX_IDLE_FIND_STREAMS_PER_PEER) {
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
    }, FIND_CLIENT_IDLE_MS)
    kept.idle.unref?.()
    streams.push(kept)
    this.kept.set(peer, streams)
  }
}
