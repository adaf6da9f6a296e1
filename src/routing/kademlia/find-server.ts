/**
 * The answering side of /shoal/kad/find/1.0.0: reads requests one after
 * another on a stream and answers each with the routing-table peers
 * closest to its key (kad-dht keeps the table; this only reads it) and
 * their addresses from the KadAddressBook. The stream closes when the
 * asker closes it or after SERVED_STREAM_IDLE_MS of silence. A malformed or
 * oversized request resets the stream; the peer goes on serving others.
 */
import { pbStream } from '@libp2p/utils'
import type { AbortOptions, Connection, Logger, PeerId, Stream } from '@libp2p/interface'
import type { Multiaddr } from '@multiformats/multiaddr'
import { SERVED_STREAM_IDLE_MS } from '../../wire/limits.ts'
import { isEndOfStream } from '../../wire/streams.ts'
import type { KadAddressBook } from './address-book.ts'
import { FIND_INBOUND_TIMEOUT_MS, MAX_FIND_MESSAGE_BYTES } from './constants.ts'
import { checkRequest, encodePeer, FindRequestCodec, FindResponseCodec, type FindRequest, type FindResponse } from './find-messages.ts'

export const FIND_STREAM_OPTIONS = { maxDataLength: MAX_FIND_MESSAGE_BYTES, maxBufferSize: MAX_FIND_MESSAGE_BYTES + 16 }

export interface FindServerInit {
  /** Routing-table peers closest to `kadId`, closest first, at most `count`, neither `asker` nor this peer. */
  closestPeers: (kadId: Uint8Array, count: number, asker: PeerId) => PeerId[]
  addresses: KadAddressBook
  /** The addresses of a peer as they may be passed on (private ones left out where they are not used). */
  shareable: (addrs: Multiaddr[]) => Multiaddr[]
  log: Logger
}

export class FindServer {
  private readonly init: FindServerInit
  /** Requests answered since start. */
  answered = 0

  constructor (init: FindServerInit) {
    this.init = init
  }

  readonly handle = async (stream: Stream, connection: Connection): Promise<void> => {
    const remote = connection.remotePeer
    const pb = pbStream(stream, FIND_STREAM_OPTIONS)
    try {
      // one request after another, until the asker closes or goes silent
      while (true) {
        let request: FindRequest
        try {
          request = await pb.read(FindRequestCodec, { signal: AbortSignal.timeout(SERVED_STREAM_IDLE_MS) })
        } catch (err) {
          if (isEndOfStream(err)) break
          throw err
        }
        const signal = AbortSignal.timeout(FIND_INBOUND_TIMEOUT_MS)
        const response = await this.answer(checkRequest(request), remote, { signal })
        await pb.write(response, FindResponseCodec, { signal })
        this.answered++
      }
      await stream.close({ signal: AbortSignal.timeout(FIND_INBOUND_TIMEOUT_MS) })
    } catch (err) {
      this.init.log('find stream from %p reset: %s', remote, (err as Error).message)
      stream.abort(err as Error)
    }
  }

  private async answer (request: FindRequest, asker: PeerId, options: AbortOptions): Promise<FindResponse> {
    const { addresses, shareable } = this.init
    const closer = this.init.closestPeers(request.key, request.count, asker)
    const peers = await Promise.all(closer.map(async id => {
      const known = addresses.get(id.toString())
      const addrs = known.length > 0 ? known : await addresses.resolve(id, options)
      return encodePeer({ id, multiaddrs: shareable(addrs) })
    }))
    return { closer: peers }
  }
}
