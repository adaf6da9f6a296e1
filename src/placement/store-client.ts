/**
 * The offering side of /shoal/store/1.0.0: one stream to one peer; each
 * request gets one response, in order, and putMany keeps several puts in
 * flight (the receiver reads ahead and stores them together).
 */
import { lpStream } from '@libp2p/utils'
import type { Libp2p, Stream } from '@libp2p/interface'
import type { CID } from 'multiformats/cid'
import { raceSignal } from '../utils/wait.ts'
import { ClientSession } from '../wire/client-session.ts'
import { WireProtocolError } from '../wire/errors.ts'
import { lengthPrefixed } from '../wire/length-prefix.ts'
import { MAX_CIDS_PER_QUERY, STREAM_LIMITS } from '../wire/limits.ts'
import { isEndOfStream } from '../wire/streams.ts'
import {
  STORE_PROTOCOL, StoreRequestCodec, StoreResponseCodec, StoreStatus,
  type StoreRequest, type StoreResponse
} from '../wire/store-messages.ts'

/** Unanswered puts a sender keeps on one stream (the receiver's limit is MAX_PIPELINED_REQUESTS). */
export const PUT_WINDOW = 4
/** How long one request may wait for its answer. */
export const STORE_REQUEST_TIMEOUT_MS = 30_000

interface Waiter {
  resolve: (response: StoreResponse) => void
  reject: (err: Error) => void
}

export class StoreSession extends ClientSession {
  /** Requests sent and not yet answered, in the order sent (answers come in that order). */
  private readonly waiting: Waiter[] = []

  private constructor (peerId: string, stream: Stream) {
    super(peerId, stream)
    void this.readAnswers()
  }

  static async open (node: Pick<Libp2p, 'dialProtocol'>, peerId: string, signal?: AbortSignal): Promise<StoreSession> {
    return new StoreSession(peerId, await ClientSession.dial(node, peerId, STORE_PROTOCOL, signal))
  }

  /** Offers one block; resolves the receiver's status. */
  async put (cid: CID, data: Uint8Array, replicas: number, signal?: AbortSignal): Promise<{ status: number, message: string }> {
    const response = await this.request({ put: { cid: cid.bytes, data, replicas } }, signal)
    return { status: response.statuses[0] ?? StoreStatus.UNKNOWN, message: response.message }
  }

  /**
   * Offers many blocks, keeping up to `window` requests unanswered so the
   * receiver can store them together (one folder sync for the lot) and no
   * round trip sits idle. `onResult` gets each answer, in order.
   */
  async putMany (
    items: Array<{ cid: CID, load: () => Promise<Uint8Array> }>,
    replicas: number,
    onResult: (index: number, status: number, message: string, bytes: number) => void,
    signal?: AbortSignal,
    window = PUT_WINDOW
  ): Promise<void> {
    const unanswered: Array<Promise<void>> = []
    for (let i = 0; i < items.length; i++) {
      if (unanswered.length >= window) await unanswered.shift()
      const data = await items[i].load()
      const answered = this.request({ put: { cid: items[i].cid.bytes, data, replicas } }, signal)
        .then(r => { onResult(i, r.statuses[0] ?? StoreStatus.UNKNOWN, r.message, data.length) })
      // awaited in turn below; if an earlier one throws first, the rest fail with the same session
      answered.catch(() => {})
      unanswered.push(answered)
    }
    for (const answered of unanswered) await answered
  }

  /** Which of these blocks the peer holds. */
  async has (cids: CID[], signal?: AbortSignal): Promise<boolean[]> {
    const out: boolean[] = []
    for (let i = 0; i < cids.length; i += MAX_CIDS_PER_QUERY) {
      const batch = cids.slice(i, i + MAX_CIDS_PER_QUERY)
      const response = await this.request({ has: { cids: batch.map(c => c.bytes) } }, signal)
      if (response.statuses.length !== batch.length) throw new WireProtocolError(`peer ${this.peerId} answered ${response.statuses.length} statuses for ${batch.length} CIDs`)
      out.push(...response.statuses.map(s => s === StoreStatus.HAVE))
    }
    return out
  }

  async close (): Promise<void> {
    await this.closeStream(new Error('session closed'))
  }

  /** Sends one request; its answer is the next one not yet claimed. */
  private async request (request: StoreRequest, signal?: AbortSignal): Promise<StoreResponse> {
    if (this.failed != null) throw this.failed
    const answer = new Promise<StoreResponse>((resolve, reject) => { this.waiting.push({ resolve, reject }) })
    // raced below; when the deadline wins, the answer still arrives (or the session fails) unobserved
    answer.catch(() => {})
    const deadline = this.deadline(signal, STORE_REQUEST_TIMEOUT_MS, 'store request')
    try {
      await this.send(lengthPrefixed(StoreRequestCodec.encode(request)), deadline)
      return await raceSignal(answer, deadline)
    } finally {
      deadline.clear()
    }
  }

  private async readAnswers (): Promise<void> {
    const lp = lpStream(this.stream, STREAM_LIMITS)
    try {
      while (true) {
        let response: StoreResponse
        try {
          response = StoreResponseCodec.decode(await lp.read())
        } catch (err) {
          if (isEndOfStream(err) && this.waiting.length === 0) throw new WireProtocolError(`peer ${this.peerId} closed the store stream`)
          throw err
        }
        const waiter = this.waiting.shift()
        if (waiter == null) throw new WireProtocolError(`peer ${this.peerId} answered a store request nobody made`)
        waiter.resolve(response)
      }
    } catch (err) {
      this.fail(err as Error)
    }
  }

  protected onFailure (err: Error): void {
    for (const w of this.waiting.splice(0)) w.reject(err)
  }
}

/** True for the statuses that mean "the peer now holds the block". */
export function isHeld (status: number): boolean {
  return status === StoreStatus.STORED || status === StoreStatus.ALREADY_HELD
}
