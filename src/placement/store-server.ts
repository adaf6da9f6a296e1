/**
 * The receiving side of /shoal/store/1.0.0: keeps blocks other peers place
 * here, after checking each one. A block is refused, with a status, when it
 * is over the size limit, not a supported CID, not among this peer's k
 * closest (with a margin), past the quota, or when its bytes do not match
 * its CID (then the stream is also reset: the sender is broken or hostile).
 * A malformed or oversized message resets the stream. Each connection may
 * hold only a couple of store streams, each handling one message at a time,
 * so one peer's flood cannot starve the others.
 */
import { pbStream } from '@libp2p/utils'
import type { Connection, Logger, Stream } from '@libp2p/interface'
import { CID } from 'multiformats/cid'
import { checkSupported, matchesCid } from '../content/cid.ts'
import type { ContentStore } from '../store/content-store.ts'
import { MAX_BLOCK_BYTES, MAX_CIDS_PER_QUERY, STREAM_LIMITS } from '../wire/limits.ts'
import { isEndOfStream } from '../wire/streams.ts'
import {
  StoreRequestCodec, StoreResponseCodec, StoreStatus,
  type HasMessage, type PutMessage, type StoreResponse
} from '../wire/store-messages.ts'

/** Store streams one connection may have open at once. */
export const MAX_INBOUND_STORE_STREAMS = 2
/** A store stream idle this long is closed. */
export const STORE_IDLE_TIMEOUT_MS = 30_000
/** The most replicas a sender may ask this peer to count itself in for. */
export const MAX_REPLICAS = 64

export interface StoreServerInit {
  content: ContentStore
  /** This peer's rank (0 = closest) for a key among the peers it knows, itself included. */
  rankOf: (key: Uint8Array) => number
  log: Logger
  /** Counters for /metrics. */
  onStored?: (bytes: number) => void
  onRefused?: (status: number) => void
}

export class StoreServer {
  private readonly init: StoreServerInit

  constructor (init: StoreServerInit) {
    this.init = init
  }

  /**
   * Accepts a block when this peer ranks among the `replicas` closest it
   * knows plus a margin of as many again (at least 2): routing tables differ
   * from peer to peer, and refusing a rightful replica is worse than keeping
   * an extra one that repair later moves.
   */
  isCloseEnough (key: Uint8Array, replicas: number): boolean {
    const k = Math.min(Math.max(replicas, 1), MAX_REPLICAS)
    return this.init.rankOf(key) < k + Math.max(2, k)
  }

  readonly handle = async (stream: Stream, connection: Connection): Promise<void> => {
    const remote = connection.remotePeer.toString()
    const pb = pbStream(stream, STREAM_LIMITS)
    try {
      while (true) {
        let request
        try {
          request = await pb.read(StoreRequestCodec, { signal: AbortSignal.timeout(STORE_IDLE_TIMEOUT_MS) })
        } catch (err) {
          if (isEndOfStream(err)) break
          throw err
        }
        let response: StoreResponse
        let reset = false
        if (request.put != null && request.has == null) {
          response = await this.put(request.put, remote)
          reset = response.statuses[0] === StoreStatus.BAD_BLOCK
        } else if (request.has != null && request.put == null) {
          response = await this.has(request.has)
        } else {
          throw new Error('a store request must carry exactly one of put / has')
        }
        await pb.write(response, StoreResponseCodec)
        if (reset) {
          stream.abort(new Error(`peer ${remote} sent a block whose bytes do not match its CID`))
          return
        }
      }
      await stream.close()
    } catch (err) {
      this.init.log('store stream from %s reset: %s', remote, (err as Error).message)
      stream.abort(err as Error)
    }
  }

  private async put (put: PutMessage, remote: string): Promise<StoreResponse> {
    const refuse = (status: number, message: string): StoreResponse => {
      this.init.onRefused?.(status)
      this.init.log('refused a block from %s: %s', remote, message)
      return { statuses: [status], message }
    }
    let cid: CID
    try {
      cid = CID.decode(put.cid)
      checkSupported(cid)
    } catch (err) {
      return refuse(StoreStatus.UNSUPPORTED, `unsupported CID: ${(err as Error).message}`)
    }
    if (put.data.length > MAX_BLOCK_BYTES) {
      return refuse(StoreStatus.TOO_LARGE, `block of ${put.data.length} bytes is over the ${MAX_BLOCK_BYTES}-byte limit`)
    }
    if (!this.isCloseEnough(cid.multihash.bytes, put.replicas)) {
      return refuse(StoreStatus.NOT_CLOSEST, `this peer is not among the ${put.replicas} closest to ${cid}`)
    }
    if (!matchesCid(cid, put.data)) {
      return refuse(StoreStatus.BAD_BLOCK, `bytes do not match ${cid}`)
    }
    try {
      const added = await this.init.content.storeReplica(cid, put.data, Math.min(Math.max(put.replicas, 1), MAX_REPLICAS))
      if (added) this.init.onStored?.(put.data.length)
      return { statuses: [added ? StoreStatus.STORED : StoreStatus.ALREADY_HELD], message: '' }
    } catch (err) {
      const name = (err as Error).name
      if (name === 'QuotaExceededError' || name === 'DiskFullError') return refuse(StoreStatus.OVER_QUOTA, (err as Error).message)
      this.init.log.error('storing replica %s failed - %e', cid, err)
      return refuse(StoreStatus.FAILED, 'the receiver could not store the block')
    }
  }

  private async has (has: HasMessage): Promise<StoreResponse> {
    if (has.cids.length > MAX_CIDS_PER_QUERY) throw new Error(`a has query of ${has.cids.length} CIDs is over the limit of ${MAX_CIDS_PER_QUERY}`)
    const statuses: number[] = []
    for (const bytes of has.cids) {
      let held = false
      try {
        held = await this.init.content.hasBlock(CID.decode(bytes))
      } catch {}
      statuses.push(held ? StoreStatus.HAVE : StoreStatus.DONT_HAVE)
    }
    return { statuses, message: '' }
  }
}
