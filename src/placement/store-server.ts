/**
 * The receiving side of /shoal/store/1.0.0: keeps blocks other peers place
 * here, after checking each one. A block is refused, with a status, when it
 * is over the size limit, not a supported CID, not among this peer's k
 * closest (with a margin), past the quota, or when its bytes do not match
 * its CID (then the stream is also reset: the sender is broken or hostile).
 * A malformed or oversized message resets the stream. Each connection may
 * hold only a couple of store streams, and received blocks waiting to be
 * stored share one budget, so one peer's flood cannot starve the others.
 *
 * The stream itself (framing, queue, limits, teardown) is src/wire/request-stream.ts;
 * this file is the two requests and their answers.
 */
import type { Connection, Logger, Stream } from '@libp2p/interface'
import { CID } from 'multiformats/cid'
import { checkSupported, matchesCid } from '../content/cid.ts'
import type { ContentStore } from '../store/content-store.ts'
import { ByteBudget } from '../wire/byte-budget.ts'
import { WireProtocolError } from '../wire/errors.ts'
import { whichHeld } from '../wire/held.ts'
import { lengthPrefixed } from '../wire/length-prefix.ts'
import { MAX_BLOCK_BYTES, MAX_CIDS_PER_QUERY, MAX_MESSAGE_BYTES } from '../wire/limits.ts'
import { RequestStream, type Answer, type Job, type StreamContext, type WorkQueue } from '../wire/request-stream.ts'
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
  /** Bytes of received blocks waiting to be stored, across all streams. */
  private readonly received = new ByteBudget(MAX_BUFFERED_BYTES)

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
    const requests = new RequestStream<StoreRequest>(stream, connection, {
      name: 'store',
      log: this.init.log,
      limits: { maxMessageBytes: MAX_MESSAGE_BYTES, idleTimeoutMs: STORE_IDLE_TIMEOUT_MS }
    })
    await requests.serve({
      onRequest: async (body, queue) => { await this.onRequest(body, queue, requests) },
      // every put waiting now, stored together (one folder sync for the lot)
      batchSize: jobs => {
        let n = 0
        while (n < jobs.length && jobs[n].work.put != null) n++
        return n
      },
      answer: async jobs => this.answer(jobs, requests.remote)
    })
  }

  private async onRequest (body: Uint8Array, queue: WorkQueue<StoreRequest>, stream: StreamContext): Promise<void> {
    const request = StoreRequestCodec.decode(body)
    if ((request.put == null) === (request.has == null)) throw new WireProtocolError('a store request must carry exactly one of put / has')
    if (request.has != null && request.has.cids.length > MAX_CIDS_PER_QUERY) {
      throw new WireProtocolError(`a has query of ${request.has.cids.length} CIDs is over the limit of ${MAX_CIDS_PER_QUERY}`)
    }
    if (queue.length >= MAX_PIPELINED_REQUESTS) throw new WireProtocolError(`more than ${MAX_PIPELINED_REQUESTS} unanswered store requests`)
    // the next request is not read until the block has room
    const hold = await this.received.reserve(stream.remote, request.put?.data.length ?? 0, stream.signal)
    queue.push(request, hold)
  }

  private async answer (jobs: Array<Job<StoreRequest>>, remote: string): Promise<Answer> {
    const has = jobs[0].work.has
    if (has != null) return { messages: [[encode(await this.has(has))]] }
    const responses = await this.putBatch(jobs.map(j => j.work.put!), remote)
    const bad = responses.findIndex(r => r.statuses[0] === StoreStatus.BAD_BLOCK)
    if (bad < 0) return { messages: responses.map(r => [encode(r)]) }
    return {
      messages: responses.slice(0, bad + 1).map(r => [encode(r)]),
      resetAfter: new WireProtocolError(`peer ${remote} sent a block whose bytes do not match its CID`)
    }
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
    const held = await whichHeld(has.cids, async cids => this.init.content.holdsBlocks(cids))
    return { statuses: held.map(h => h ? StoreStatus.HAVE : StoreStatus.DONT_HAVE), message: '' }
  }
}

function encode (response: StoreResponse): Uint8Array {
  return lengthPrefixed(StoreResponseCodec.encode(response))
}
