/**
 * The holder's side of /shoal/xfer/1.0.0: answers have lists with a bit set
 * and wants with blocks, in the order asked. Requests are read while answers
 * are being sent, and the next few blocks are read from disk while the
 * current one goes out, so a fetcher that keeps a pipeline full gets a
 * steady stream.
 *
 * Memory is bounded whoever asks: the blocks read ahead and being sent, over
 * all streams, share READ_AHEAD_BUDGET_BYTES, of which one peer's streams
 * hold at most READ_AHEAD_BYTES_PER_PEER (a stream whose block has no room
 * waits its turn). Limits per stream: MAX_PENDING_WANTS unanswered wants,
 * MAX_PENDING_HAVES have lists of at most MAX_HAVE_CIDS CIDs, requests of
 * at most MAX_LIST_MESSAGE_BYTES; a stream that asks for more, sends a
 * malformed message, reads below the slow-read floor or sends nothing for
 * XFER_IDLE_TIMEOUT_MS is reset, as is a peer's stream beyond
 * MAX_XFER_STREAMS_PER_PEER. The peer's other streams and every other peer
 * carry on.
 *
 * The stream itself (framing, queue, read-ahead, timeouts, teardown) is
 * src/wire/request-stream.ts; this file is the request and its answers.
 */
import type { Connection, Logger, Stream } from '@libp2p/interface'
import { CID } from 'multiformats/cid'
import { cidBytesKey } from '../content/cid.ts'
import type { ContentStore } from '../store/content-store.ts'
import { ByteBudget } from '../wire/byte-budget.ts'
import { WireProtocolError } from '../wire/errors.ts'
import { whichHeld } from '../content/held.ts'
import { MAX_BLOCK_BYTES, MAX_LIST_MESSAGE_BYTES, RESERVE_TIMEOUT_MS, SLOW_READ_MIN_BYTES, SLOW_READ_WINDOW_MS } from '../wire/limits.ts'
import { PeerStreams } from '../wire/peer-streams.ts'
import { RequestStream, type Answer, type Job, type RequestStreamLimits, type StreamContext, type WorkQueue } from '../wire/request-stream.ts'
import { encodeResponse } from '../wire/xfer-frames.ts'
import {
  decodeXferRequest, MAX_PENDING_HAVES, MAX_PENDING_WANTS, Presence,
  packBits, type XferResponse
} from '../wire/xfer-messages.ts'
import type { UploadLimiter } from './upload-limiter.ts'

const MiB = 1024 * 1024

/** xfer streams one connection may have open at once (libp2p's per-connection cap). */
export const MAX_INBOUND_XFER_STREAMS = 4
/** xfer streams one peer may have open at once, over all its connections. */
export const MAX_XFER_STREAMS_PER_PEER = 8
/** Blocks read from disk ahead of the one being sent, per stream. */
export const READ_AHEAD_BLOCKS = 4
/** Bytes of blocks read ahead or being sent, over all xfer streams. */
export const READ_AHEAD_BUDGET_BYTES = 64 * MiB
/** Of READ_AHEAD_BUDGET_BYTES, what one peer's streams may hold: one stream's full read-ahead of the largest blocks. */
export const READ_AHEAD_BYTES_PER_PEER = (READ_AHEAD_BLOCKS + 1) * MAX_BLOCK_BYTES
/** A stream with nothing owed that sends no request for this long is reset. */
export const XFER_IDLE_TIMEOUT_MS = 120_000

export const XFER_STREAM_LIMITS: RequestStreamLimits = {
  maxMessageBytes: MAX_LIST_MESSAGE_BYTES,
  idleTimeoutMs: XFER_IDLE_TIMEOUT_MS,
  readAhead: READ_AHEAD_BLOCKS,
  slowRead: { windowMs: SLOW_READ_WINDOW_MS, minBytes: SLOW_READ_MIN_BYTES },
  reserveTimeoutMs: RESERVE_TIMEOUT_MS
}

/** One answer owed: a block (a want) or a bit set (a have list). */
type Work =
  | { kind: 'want', cid: Uint8Array, key: string, answer?: Promise<XferResponse> }
  | { kind: 'have', cids: Uint8Array[], answer?: Promise<XferResponse> }

export interface XferServerInit {
  content: ContentStore
  log: Logger
  limiter?: UploadLimiter
  /** Stream limits (default XFER_STREAM_LIMITS). */
  limits?: Partial<RequestStreamLimits>
}

const NONE = new Uint8Array(0)

export class XferServer {
  private readonly init: XferServerInit
  private readonly limits: RequestStreamLimits
  /** Blocks read ahead or being sent, over all streams, with a share per peer. */
  private readonly readAhead = new ByteBudget(READ_AHEAD_BUDGET_BYTES, READ_AHEAD_BYTES_PER_PEER)
  private readonly streams = new PeerStreams(MAX_XFER_STREAMS_PER_PEER)

  constructor (init: XferServerInit) {
    this.init = init
    this.limits = { ...XFER_STREAM_LIMITS, ...init.limits }
  }

  /** What the server holds now: open streams, and bytes of blocks read ahead or being sent. */
  get stats (): { streams: number, readAheadBytes: number } {
    return { streams: this.streams.total, readAheadBytes: this.readAhead.inUseBytes }
  }

  readonly handle = async (stream: Stream, connection: Connection): Promise<void> => {
    const requests = new RequestStream<Work>(stream, connection, {
      name: 'xfer',
      log: this.init.log,
      limits: this.limits,
      streams: this.streams
    })
    const owed = { wants: 0, haves: 0 }
    await requests.serve({
      onRequest: (body, queue) => { this.onRequest(body, queue, owed) },
      prepare: job => {
        job.work.answer = this.prepare(job, requests)
        job.work.answer.catch(() => {}) // awaited when its turn comes; a cancel or a reset leaves it unawaited
      },
      answer: async ([job]) => this.answer(job, requests),
      onFinish: ({ work }) => { if (work.kind === 'want') owed.wants--; else owed.haves-- }
    })
  }

  /** A request's cancels first, then its have list, then its wants. */
  private onRequest (body: Uint8Array, queue: WorkQueue<Work>, owed: { wants: number, haves: number }): void {
    const request = decodeXferRequest(body)
    if (request.cancel.length > 0) {
      const cancelled = new Set(request.cancel.map(cidBytesKey))
      queue.drop(work => work.kind === 'want' && cancelled.has(work.key))
    }
    if (request.have.length > 0) {
      if (++owed.haves > MAX_PENDING_HAVES) throw new WireProtocolError(`more than ${MAX_PENDING_HAVES} unanswered have lists`)
      queue.push({ kind: 'have', cids: request.have })
    }
    for (const cid of request.want) queue.push({ kind: 'want', cid, key: cidBytesKey(cid) })
    owed.wants += request.want.length
    if (owed.wants > MAX_PENDING_WANTS) throw new WireProtocolError(`more than ${MAX_PENDING_WANTS} unanswered wants`)
  }

  /** A block's room in the read-ahead budget (as much as the largest block, until it is read), then the block. */
  private async prepare (job: Job<Work>, stream: StreamContext): Promise<XferResponse> {
    if (job.work.kind === 'have') return this.read(job.work)
    const room = await stream.reserve(this.readAhead, MAX_BLOCK_BYTES)
    job.hold(room)
    // cancelled while it waited for room: never read
    if (job.dropped) return dontHave(job.work.cid)
    const response = await this.read(job.work)
    room.shrink(response.data.length)
    return response
  }

  private async answer (job: Job<Work>, stream: StreamContext): Promise<Answer> {
    const response = await (job.work.answer ?? this.prepare(job, stream))
    // cancelled while it was being read
    if (job.dropped) return { messages: [] }
    // a rate-limited send may wait long; only the stream's end cuts it short
    if (response.presence === Presence.BLOCK) await this.init.limiter?.take(response.data.length, stream.signal)
    // the block goes out as it was read: no copy into an encoder
    return { messages: [encodeResponse(response)] }
  }

  private async read (work: Work): Promise<XferResponse> {
    if (work.kind === 'have') {
      const held = await whichHeld(work.cids, async cids => this.init.content.hasBlocks(cids))
      return { cid: NONE, presence: Presence.HAVE_SET, data: NONE, bits: packBits(held) }
    }
    try {
      // the store re-hashes every block it reads (and drops a rotten one), so this peer never sends bytes it knows to be wrong
      const data = await this.init.content.readBlock(CID.decode(work.cid))
      return { cid: work.cid, presence: Presence.BLOCK, data, bits: NONE }
    } catch {
      return dontHave(work.cid)
    }
  }
}

function dontHave (cid: Uint8Array): XferResponse {
  return { cid, presence: Presence.DONT_HAVE, data: NONE, bits: NONE }
}
