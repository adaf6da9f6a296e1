/**
 * The holder's side of /shoal/xfer/1.0.0: answers have lists with a bit set
 * and wants with blocks, in the order asked. Requests are read while answers
 * are being sent, and the next few blocks are read from disk while the
 * current one goes out, so a fetcher that keeps a pipeline full gets a
 * steady stream. Limits per stream: MAX_PENDING_WANTS unanswered wants,
 * MAX_PENDING_HAVES have lists of at most MAX_HAVE_CIDS CIDs, READ_AHEAD
 * blocks in memory; a stream that asks for more, sends a malformed or
 * oversized message, or stops reading for SEND_TIMEOUT_MS is reset. The
 * peer's other streams and every other peer carry on.
 *
 * The stream itself (framing, queue, read-ahead, teardown) is
 * src/wire/request-stream.ts; this file is the request and its answers.
 */
import type { Connection, Logger, Stream } from '@libp2p/interface'
import { CID } from 'multiformats/cid'
import { cidBytesKey } from '../content/cid.ts'
import type { ContentStore } from '../store/content-store.ts'
import { WireProtocolError } from '../wire/errors.ts'
import { whichHeld } from '../wire/held.ts'
import { MAX_MESSAGE_BYTES } from '../wire/limits.ts'
import { RequestStream, type Answer, type Job, type StreamContext, type WorkQueue } from '../wire/request-stream.ts'
import { encodeResponse } from '../wire/xfer-frames.ts'
import {
  MAX_HAVE_CIDS, MAX_PENDING_HAVES, MAX_PENDING_WANTS, Presence, XferRequestCodec,
  packBits, type XferResponse
} from '../wire/xfer-messages.ts'
import type { UploadLimiter } from './upload-limiter.ts'

/** xfer streams one connection may have open at once. */
export const MAX_INBOUND_XFER_STREAMS = 4

/** Blocks read from disk ahead of the one being sent, per stream. */
const READ_AHEAD = 4

/** A fetcher that reads nothing for this long has its stream reset. */
const SEND_TIMEOUT_MS = 60_000

/** One answer owed: a block (a want) or a bit set (a have list). */
type Work =
  | { kind: 'want', cid: Uint8Array, key: string, answer?: Promise<XferResponse> }
  | { kind: 'have', cids: Uint8Array[], answer?: Promise<XferResponse> }

export interface XferServerInit {
  content: ContentStore
  log: Logger
  limiter?: UploadLimiter
}

const NONE = new Uint8Array(0)

export class XferServer {
  private readonly init: XferServerInit

  constructor (init: XferServerInit) {
    this.init = init
  }

  readonly handle = async (stream: Stream, connection: Connection): Promise<void> => {
    const requests = new RequestStream<Work>(stream, connection, {
      name: 'xfer',
      log: this.init.log,
      limits: { maxMessageBytes: MAX_MESSAGE_BYTES, readAhead: READ_AHEAD, sendTimeoutMs: SEND_TIMEOUT_MS }
    })
    const owed = { wants: 0, haves: 0 }
    await requests.serve({
      onRequest: (body, queue) => { this.onRequest(body, queue, owed) },
      prepare: job => {
        job.work.answer = this.read(job.work)
        job.work.answer.catch(() => {}) // awaited when its turn comes; a stream reset leaves it unawaited
      },
      answer: async ([job]) => this.answer(job, requests),
      onFinish: ({ work }) => { if (work.kind === 'want') owed.wants--; else owed.haves-- }
    })
  }

  /** A request's cancels first, then its have list, then its wants. */
  private onRequest (body: Uint8Array, queue: WorkQueue<Work>, owed: { wants: number, haves: number }): void {
    const request = XferRequestCodec.decode(body)
    if (request.cancel.length > 0) {
      const cancelled = new Set(request.cancel.map(cidBytesKey))
      queue.drop(work => work.kind === 'want' && cancelled.has(work.key))
    }
    if (request.have.length > 0) {
      if (request.have.length > MAX_HAVE_CIDS) throw new WireProtocolError(`a have list of ${request.have.length} CIDs (most ${MAX_HAVE_CIDS})`)
      if (++owed.haves > MAX_PENDING_HAVES) throw new WireProtocolError(`more than ${MAX_PENDING_HAVES} unanswered have lists`)
      queue.push({ kind: 'have', cids: request.have })
    }
    for (const cid of request.want) queue.push({ kind: 'want', cid, key: cidBytesKey(cid) })
    owed.wants += request.want.length
    if (owed.wants > MAX_PENDING_WANTS) throw new WireProtocolError(`more than ${MAX_PENDING_WANTS} unanswered wants`)
  }

  private async answer (job: Job<Work>, stream: StreamContext): Promise<Answer> {
    const response = await (job.work.answer ?? this.read(job.work))
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
      // Blockstore blocks are not re-hashed here (the fetcher verifies every block it receives); leaves kept in a fetched file are
      // (the user may have changed the file), so this peer never sends bytes it knows to be wrong.
      const data = await this.init.content.readBlock(CID.decode(work.cid), { verify: false })
      return { cid: work.cid, presence: Presence.BLOCK, data, bits: NONE }
    } catch {
      return { cid: work.cid, presence: Presence.DONT_HAVE, data: NONE, bits: NONE }
    }
  }
}
