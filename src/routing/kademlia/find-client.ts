/**
 * The asking side of /shoal/kad/find/1.0.0: one request and its answer on
 * a stream, under FIND_QUERY_TIMEOUT_MS. A stream carries one request at a
 * time and is kept for the next one to the same peer
 * (src/wire/kept-streams.ts). A kept stream that turns out closed by the
 * other side is replaced once by a fresh one.
 *
 * A peer is dialled at the addresses the answer that named it gave (each
 * ending in /p2p/<id>, so an open connection is reused), else by peer ID.
 * A peer that does not speak the protocol (an older Shoal) raises
 * FindUnsupportedError once, and is remembered: the overlay asks it over
 * kad-dht's FIND_NODE instead.
 */
import { pbStream } from '@libp2p/utils'
import type { AbortOptions, Logger, PeerId, PeerInfo } from '@libp2p/interface'
import type { ConnectionManager } from '@libp2p/interface-internal'
import { FIND_QUERY_TIMEOUT_MS, KAD_FIND_PROTOCOL, MAX_LEGACY_PEERS } from './constants.ts'
import { FindUnsupportedError, MalformedFindMessageError } from './errors.ts'
import { decodeResponse, FindRequestCodec, FindResponseCodec } from './find-messages.ts'
import { FIND_STREAM_OPTIONS } from './find-server.ts'
import { KeptStreams, type KeptStream } from '../../wire/kept-streams.ts'

export interface FindClientInit {
  connectionManager: Pick<ConnectionManager, 'openStream'>
  /** Aborted when the overlay stops: every query in flight ends with it. */
  lifetime: () => AbortSignal
  queryTimeoutMs?: number
  log: Logger
}

export class FindClient {
  private readonly init: FindClientInit
  private readonly streams: KeptStreams
  /** Peers that refused the protocol, least recently refused first. */
  private readonly legacy = new Set<string>()
  /** Queries sent since start. */
  sent = 0

  constructor (init: FindClientInit) {
    this.init = init
    this.streams = new KeptStreams({ owner: 'the Kademlia overlay', lifetime: init.lifetime })
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
    return this.streams.use(peer, async () => this.open(to, signal), async kept => this.exchange(peer, kept, kadId, count, signal), {
      signal,
      // an answer out of protocol would come again on a fresh stream
      fatal: err => err instanceof MalformedFindMessageError
    })
  }

  /** Closes every kept stream (the overlay stops). */
  closeAll (): void {
    this.streams.closeAll()
  }

  private async exchange (peer: string, kept: KeptStream, key: Uint8Array, count: number, signal: AbortSignal): Promise<PeerInfo[]> {
    await kept.pb.write({ key, count }, FindRequestCodec, { signal })
    return decodeResponse(await kept.pb.read(FindResponseCodec, { signal }), count, peer)
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
}
