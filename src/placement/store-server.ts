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
  type HasMessage, type PutMessage, type StoreRequest, type StoreResponse
} from '../wire/store-messages.ts'

/** Store streams one connection may have open at once. */
export const MAX_INBOUND_STORE_STREAMS = 2
/** A store stream idle this long is closed. */
export const STORE_IDLE_TIMEOUT_MS = 30_000
/** Unanswered requests a sender may have on one store stream. */
export const MAX_PIPELINED_REQUESTS = 8
/** Received block bytes held in memory before storing, across every store stream. */
export const MAX_BUFFERED_BYTES = 64 * 1024 * 1024
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

  /** Bytes of received blocks waiting to be stored, across all streams. */
  private buffered = 0
  private readonly bufferWaiters: Array<() => void> = []

  readonly handle = async (stream: Stream, connection: Connection): Promise<void> => {
    const remote = connection.remotePeer.toString()
    const pb = pbStream(stream, STREAM_LIMITS)
    const queue: Array<{ request: StoreRequest, bytes: number }> = []
    let readerDone = false
    let closed = false
    let failure: Error | undefined
    let wake: (() => void) | undefined
    // Requests are read ahead while earlier ones are stored, so a sender that
    // pipelines its puts gets them written together.
    const reader = (async () => {
      try {
        while (true) {
          let request: StoreRequest
          try {
            request = await pb.read(StoreRequestCodec, { signal: AbortSignal.timeout(STORE_IDLE_TIMEOUT_MS) })
          } catch (err) {
            if (isEndOfStream(err)) return
            throw err
          }
          if ((request.put == null) === (request.has == null)) throw new Error('a store request must carry exactly one of put / has')
          if (queue.length >= MAX_PIPELINED_REQUESTS) throw new Error(`more than ${MAX_PIPELINED_REQUESTS} unanswered store requests`)
          const bytes = request.put?.data.length ?? 0
          await this.reserve(bytes)
          // the writer gave up meanwhile: nobody will release this
          if (closed) { this.release(bytes); return }
          queue.push({ request, bytes })
          wake?.()
        }
      } catch (err) {
        failure = err as Error
      } finally {
        readerDone = true
        wake?.()
      }
    })()
    try {
      while (true) {
        if (failure != null) throw failure
        if (queue.length === 0) {
          if (readerDone) break
          await new Promise<void>(resolve => { wake = resolve })
          wake = undefined
          continue
        }
        const first = queue[0]
        if (first.request.has != null) {
          queue.shift()
          await pb.write(await this.has(first.request.has), StoreResponseCodec)
          continue
        }
        // every put waiting now, stored together
        let n = 0
        while (n < queue.length && queue[n].request.put != null) n++
        const batch = queue.splice(0, n)
        let responses: StoreResponse[]
        try {
          responses = await this.putBatch(batch.map(b => b.request.put!), remote)
        } finally {
          for (const b of batch) this.release(b.bytes)
        }
        for (const response of responses) {
          await pb.write(response, StoreResponseCodec)
          if (response.statuses[0] === StoreStatus.BAD_BLOCK) {
            throw new Error(`peer ${remote} sent a block whose bytes do not match its CID`)
          }
        }
      }
      await reader
      await stream.close()
    } catch (err) {
      this.init.log('store stream from %s reset: %s', remote, (err as Error).message)
      closed = true
      stream.abort(err as Error)
      for (const b of queue.splice(0)) this.release(b.bytes)
    }
  }

  private async reserve (bytes: number): Promise<void> {
    while (this.buffered > 0 && this.buffered + bytes > MAX_BUFFERED_BYTES) {
      await new Promise<void>(resolve => { this.bufferWaiters.push(resolve) })
    }
    this.buffered += bytes
  }

  private release (bytes: number): void {
    this.buffered -= bytes
    this.bufferWaiters.shift()?.()
  }

  private async putBatch (puts: PutMessage[], remote: string): Promise<StoreResponse[]> {
    const refuse = (status: number, message: string): StoreResponse => {
      this.init.onRefused?.(status)
      this.init.log('refused a block from %s: %s', remote, message)
      return { statuses: [status], message }
    }
    const responses: Array<StoreResponse | undefined> = []
    const accepted: Array<{ index: number, cid: CID, bytes: Uint8Array, replicas: number }> = []
    puts.forEach((put, index) => {
      let cid: CID
      try {
        cid = CID.decode(put.cid)
        checkSupported(cid)
      } catch (err) {
        responses[index] = refuse(StoreStatus.UNSUPPORTED, `unsupported CID: ${(err as Error).message}`)
        return
      }
      if (put.data.length > MAX_BLOCK_BYTES) {
        responses[index] = refuse(StoreStatus.TOO_LARGE, `block of ${put.data.length} bytes is over the ${MAX_BLOCK_BYTES}-byte limit`)
      } else if (!this.isCloseEnough(cid.multihash.bytes, put.replicas)) {
        responses[index] = refuse(StoreStatus.NOT_CLOSEST, `this peer is not among the ${put.replicas} closest to ${cid}`)
      } else if (!matchesCid(cid, put.data)) {
        responses[index] = refuse(StoreStatus.BAD_BLOCK, `bytes do not match ${cid}`)
      } else {
        accepted.push({ index, cid, bytes: put.data, replicas: Math.min(Math.max(put.replicas, 1), MAX_REPLICAS) })
      }
    })
    if (accepted.length > 0) {
      let results: Array<boolean | Error>
      try {
        results = await this.init.content.storeReplicas(accepted)
      } catch (err) {
        results = accepted.map(() => err as Error)
      }
      accepted.forEach(({ index, bytes }, i) => {
        const result = results[i]
        if (result instanceof Error) {
          if (result.name === 'QuotaExceededError' || result.name === 'DiskFullError') {
            responses[index] = refuse(StoreStatus.OVER_QUOTA, result.message)
          } else {
            this.init.log.error('storing a replica failed - %e', result)
            responses[index] = refuse(StoreStatus.FAILED, 'the receiver could not store the block')
          }
          return
        }
        if (result) this.init.onStored?.(bytes.length)
        responses[index] = { statuses: [result ? StoreStatus.STORED : StoreStatus.ALREADY_HELD], message: '' }
      })
    }
    return responses as StoreResponse[]
  }

  private async has (has: HasMessage): Promise<StoreResponse> {
    if (has.cids.length > MAX_CIDS_PER_QUERY) throw new Error(`a has query of ${has.cids.length} CIDs is over the limit of ${MAX_CIDS_PER_QUERY}`)
    const cids = has.cids.map(bytes => { try { return CID.decode(bytes) } catch { return undefined } })
    const valid = cids.filter(c => c != null)
    const held = await this.init.content.holdsBlocks(valid)
    const heldKeys = new Set(valid.filter((_, i) => held[i]).map(c => c.toString()))
    const statuses = cids.map(c => c != null && heldKeys.has(c.toString()) ? StoreStatus.HAVE : StoreStatus.DONT_HAVE)
    return { statuses, message: '' }
  }
}
