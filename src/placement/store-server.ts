/**
 * The receiving side of /shoal/store/1.0.0: keeps blocks other peers place
 * here, after checking each one. A block is refused, with a status, when it
 * is over the size limit, not a supported CID, not among this peer's own k
 * closest (with a margin), over its sender's rate of replicas (BUSY: the
 * sender backs off and offers it again), past the quota, or when its bytes
 * do not match its CID (then the stream is also reset: the sender is broken
 * or hostile). A malformed or oversized message resets the stream.
 *
 * One peer's flood cannot starve the others: a peer may have only a few
 * store streams open, the received blocks waiting to be stored share one
 * budget of which each peer gets at most a share (its stream is simply not
 * read while it is at its share), and each peer's replicas are rate-limited.
 *
 * The stream itself (framing, queue, budget, timeouts, teardown) is
 * src/wire/request-stream.ts; this file is the two requests and their answers.
 */
import type { Connection, Logger, Stream } from '@libp2p/interface'
import { CID } from 'multiformats/cid'
import { BlockMismatchError, checkSupported } from '../content/cid.ts'
import { DEFAULT_REPLICAS, MAX_RANKED_REPLICAS } from '../constants.ts'
import type { ContentStore } from '../store/content-store.ts'
import { DiskFullError, QuotaExceededError } from '../store/errors.ts'
import { ByteBudget } from '../wire/byte-budget.ts'
import { WireProtocolError } from '../wire/errors.ts'
import { whichHeld } from '../content/held.ts'
import { lengthPrefixed } from '../wire/length-prefix.ts'
import { MAX_BLOCK_BYTES, MAX_MESSAGE_BYTES, RESERVE_TIMEOUT_MS, SLOW_READ_MIN_BYTES, SLOW_READ_WINDOW_MS } from '../wire/limits.ts'
import { PeerRateLimit, type RateLimit } from '../wire/peer-rate-limit.ts'
import { PeerStreams } from '../wire/peer-streams.ts'
import { RequestStream, type Answer, type Job, type RequestStreamLimits } from '../wire/request-stream.ts'
import {
  decodeStoreRequest, StoreResponseCodec, StoreStatus,
  type HasMessage, type PutMessage, type StoreRequest, type StoreResponse
} from '../wire/store-messages.ts'
import { ReceiveBuffers } from './receive-buffers.ts'
import { PUT_WINDOW } from './store-client.ts'

const MiB = 1024 * 1024
/** Puts whose bytes are in a pooled shared buffer (a worker reads them in place). */
const pooled = new WeakSet<PutMessage>()

/** Store streams one connection may have open at once (libp2p's per-connection cap). */
export const MAX_INBOUND_STORE_STREAMS = 2
/**
 * Store streams one peer may have open at once, over all its connections:
 * as many as one connection allows. Each paused stream may hold what the
 * sender still had window for (up to MUXER_MAX_WINDOW_BYTES), so this
 * bounds a peer's memory here too.
 */
export const MAX_STORE_STREAMS_PER_PEER = MAX_INBOUND_STORE_STREAMS
/** A store stream with nothing owed that sends no request for this long is reset. */
export const STORE_IDLE_TIMEOUT_MS = 30_000
/** Requests read ahead on one store stream; while this many wait, the stream is not read. */
export const MAX_PIPELINED_REQUESTS = 8
/** Received block bytes held in memory before storing, across every store stream. */
export const MAX_BUFFERED_BYTES = 64 * MiB
/** Of MAX_BUFFERED_BYTES, what one peer's streams may hold: an honest sender's whole window of puts. */
export const MAX_BUFFERED_BYTES_PER_PEER = PUT_WINDOW * MAX_MESSAGE_BYTES
/** The most replicas a holding records from a put (a larger claim is clamped). */
export const MAX_REPLICAS = 64
/** Replica bytes one peer may place here: on average per second, and at once. */
export const PEER_REPLICA_BYTES: RateLimit = { perSecond: 64 * MiB, burst: 512 * MiB }
/** Replicas (puts accepted) one peer may place here: on average per second, and at once. */
export const PEER_REPLICA_PUTS: RateLimit = { perSecond: 1024, burst: 8192 }
/** Peers whose replica rates are remembered at once (the least recently active are forgotten). */
export const MAX_RATE_LIMITED_PEERS = 4096

export const STORE_STREAM_LIMITS: RequestStreamLimits = {
  maxMessageBytes: MAX_MESSAGE_BYTES,
  idleTimeoutMs: STORE_IDLE_TIMEOUT_MS,
  maxQueued: MAX_PIPELINED_REQUESTS,
  slowRead: { windowMs: SLOW_READ_WINDOW_MS, minBytes: SLOW_READ_MIN_BYTES },
  reserveTimeoutMs: RESERVE_TIMEOUT_MS
}

export interface StoreServerInit {
  content: ContentStore
  /** This peer's rank (0 = closest) for a key among the peers it knows, itself included. */
  rankOf: (key: Uint8Array) => number
  log: Logger
  /** This peer's replica count (config `replicas`, default 3): the k it ranks itself against. */
  replicas?: number
  /** Per-peer rates of incoming replicas (defaults PEER_REPLICA_BYTES, PEER_REPLICA_PUTS). */
  peerReplicaBytes?: RateLimit
  peerReplicaPuts?: RateLimit
  /** Stream limits (default STORE_STREAM_LIMITS). */
  limits?: Partial<RequestStreamLimits>
  /** Counters for /metrics. */
  onStored?: (bytes: number) => void
  onRefused?: (status: number) => void
}

export class StoreServer {
  private readonly init: StoreServerInit
  private readonly limits: RequestStreamLimits
  /** The k this peer ranks itself against, whatever a sender claims. */
  private readonly replicas: number
  /** Bytes of received blocks waiting to be stored, across all streams, with a share per peer. */
  private readonly received = new ByteBudget(MAX_BUFFERED_BYTES, MAX_BUFFERED_BYTES_PER_PEER)
  private readonly streams = new PeerStreams(MAX_STORE_STREAMS_PER_PEER)
  private readonly replicaBytes: PeerRateLimit
  private readonly replicaPuts: PeerRateLimit
  /** Where received puts are joined. */
  private readonly buffers = new ReceiveBuffers()

  constructor (init: StoreServerInit) {
    this.init = init
    this.limits = { ...STORE_STREAM_LIMITS, ...init.limits }
    this.replicas = Math.min(Math.max(Math.floor(init.replicas ?? DEFAULT_REPLICAS), 1), MAX_REPLICAS)
    this.replicaBytes = new PeerRateLimit(init.peerReplicaBytes ?? PEER_REPLICA_BYTES, MAX_RATE_LIMITED_PEERS)
    this.replicaPuts = new PeerRateLimit(init.peerReplicaPuts ?? PEER_REPLICA_PUTS, MAX_RATE_LIMITED_PEERS)
  }

  /** What the server holds now: open streams, and bytes of received blocks waiting to be stored. */
  get stats (): { streams: number, bufferedBytes: number } {
    return { streams: this.streams.total, bufferedBytes: this.received.inUseBytes }
  }

  /**
   * Accepts a block when this peer ranks among the k closest it knows plus
   * a margin: k is the sender's claim, at least this peer's own `replicas`
   * and at most MAX_RANKED_REPLICAS (or its own k, if larger); the margin
   * is its own k, at least 2 (routing tables differ from peer to peer, and
   * refusing a rightful replica is worse than keeping an extra one that
   * repair later moves).
   */
  isCloseEnough (key: Uint8Array, claimed = 0): boolean {
    const own = this.replicas
    const k = Math.min(Math.max(own, claimed), Math.max(own, MAX_RANKED_REPLICAS))
    return this.init.rankOf(key) < k + Math.max(2, own)
  }

  /** The k a replica holding records for a put: its claim, clamped to 1..MAX_REPLICAS. */
  private replicasFor (claimed: number): number {
    return Math.min(Math.max(claimed, 1), MAX_REPLICAS)
  }

  readonly handle = async (stream: Stream, connection: Connection): Promise<void> => {
    const requests = new RequestStream<StoreRequest>(stream, connection, {
      name: 'store',
      log: this.init.log,
      limits: this.limits,
      streams: this.streams,
      receiveBudget: this.received,
      allocate: size => this.buffers.acquire(size)
    })
    await requests.serve({
      onRequest: (body, queue, hold) => {
        const request = decodeStoreRequest(body)
        const job = queue.push(request, hold)
        // a body joined from the network's pieces lies in a pooled buffer of its own: back to the pool once answered
        if (this.buffers.owns(body)) {
          if (request.put != null) pooled.add(request.put)
          job.hold({ release: () => { this.buffers.release(body) } })
        }
      },
      // every put waiting now, stored together (one folder sync for the lot)
      batchSize: jobs => {
        let n = 0
        while (n < jobs.length && jobs[n].work.put != null) n++
        return n
      },
      answer: async jobs => this.answer(jobs, requests.remote)
    })
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
    const accepted: Array<{ index: number, cid: CID, bytes: Uint8Array, replicas: number, transfer: boolean, size: number }> = []
    let wait = 0
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
        responses[index] = refuse(StoreStatus.NOT_CLOSEST, `this peer is not among the ${Math.min(Math.max(this.replicas, put.replicas), Math.max(this.replicas, MAX_RANKED_REPLICAS))} closest to ${cid}`)
      } else if ((wait = this.replicaWaitMs(remote, put.data.length)) > 0) {
        responses[index] = { ...refuse(StoreStatus.BUSY, `over this sender's rate of replicas; offer again in ${wait} ms`), retry_after_ms: wait }
      } else {
        // hashed and checked against the CID where it is stored, off this
        // thread. In a pooled buffer: a worker reads it in place. Else (a
        // message that came in one piece) the bytes are a view into the
        // chunk the transport decrypted, which other messages share: a copy
        // of its own (Uint8Array's slice: a Buffer's would be another view)
        // is what goes to the worker, handed over
        const inPool = pooled.has(put)
        const bytes = inPool ? put.data : Uint8Array.prototype.slice.call(put.data)
        accepted.push({ index, cid, bytes, replicas: this.replicasFor(put.replicas), transfer: !inPool, size: bytes.byteLength })
      }
    })
    if (accepted.length > 0) {
      let results: Array<boolean | Error>
      try {
        results = await this.init.content.storeReplicas(accepted)
      } catch (err) {
        results = accepted.map(() => err as Error)
      }
      accepted.forEach(({ index, size, cid }, i) => {
        const result = results[i]
        if (result instanceof Error) {
          if (result instanceof BlockMismatchError) {
            responses[index] = refuse(StoreStatus.BAD_BLOCK, `bytes do not match ${cid}`)
          } else if (result instanceof QuotaExceededError || result instanceof DiskFullError) {
            responses[index] = refuse(StoreStatus.OVER_QUOTA, result.message)
          } else {
            this.init.log.error('storing a replica failed - %e', result)
            responses[index] = refuse(StoreStatus.FAILED, 'the receiver could not store the block')
          }
          return
        }
        if (result) this.init.onStored?.(size)
        responses[index] = { statuses: [result ? StoreStatus.STORED : StoreStatus.ALREADY_HELD], message: '' }
      })
    }
    return responses as StoreResponse[]
  }

  /** 0, and the block counted against its sender's rates; or how long until the sender may place it. */
  private replicaWaitMs (remote: string, bytes: number): number {
    const wait = Math.max(this.replicaBytes.waitMs(remote, bytes), this.replicaPuts.waitMs(remote, 1))
    if (wait > 0) return wait
    this.replicaBytes.take(remote, bytes)
    this.replicaPuts.take(remote, 1)
    return 0
  }

  private async has (has: HasMessage): Promise<StoreResponse> {
    const held = await whichHeld(has.cids, async cids => this.init.content.holdsBlocks(cids))
    return { statuses: held.map(h => h ? StoreStatus.HAVE : StoreStatus.DONT_HAVE), message: '' }
  }
}

function encode (response: StoreResponse): Uint8Array {
  return lengthPrefixed(StoreResponseCodec.encode(response))
}
