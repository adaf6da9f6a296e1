/**
 * The offering side of /shoal/store/1.0.0: one stream to one peer; each
 * request gets one response, in order, and putMany keeps several puts in
 * flight (the receiver reads ahead and stores them together). A receiver
 * that answers BUSY (this peer is over its rate of replicas there) is left
 * alone for the time it asks, and the block offered again.
 */
import type { Libp2p, Stream } from '@libp2p/interface'
import type { CID } from 'multiformats/cid'
import { raceSignal, sleep } from '../utils/wait.ts'
import { ClientSession } from '../wire/client-session.ts'
import { WireProtocolError } from '../wire/errors.ts'
import { FrameReader } from '../wire/frame-reader.ts'
import { lengthPrefixed } from '../wire/length-prefix.ts'
import { MAX_CIDS_PER_QUERY, MAX_LIST_MESSAGE_BYTES, UNREAD_HIGH_WATER_BYTES } from '../wire/limits.ts'
import {
  STORE_PROTOCOL, StoreRequestCodec, StoreResponseCodec, StoreStatus,
  type StoreRequest, type StoreResponse
} from '../wire/store-messages.ts'

/** Unanswered puts a sender keeps on one stream (the receiver's limit is MAX_PIPELINED_REQUESTS). */
export const PUT_WINDOW = 4
/** How long one request may wait for its answer. */
export const STORE_REQUEST_TIMEOUT_MS = 30_000
/** Times one block is offered again after BUSY answers before its last answer is taken as final. */
export const BUSY_RETRIES = 8
/** The longest a BUSY answer makes the sender wait, whatever the receiver asks. */
export const MAX_BUSY_WAIT_MS = 10_000

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
   * round trip sits idle. `onResult` gets each block's final answer, in
   * order except for blocks offered again after a BUSY answer (sent again
   * after the wait the receiver asked for, up to BUSY_RETRIES times).
   */
  async putMany (
    items: Array<{ cid: CID, load: () => Promise<Uint8Array> }>,
    replicas: number,
    onResult: (index: number, status: number, message: string, bytes: number) => void,
    signal?: AbortSignal,
    window = PUT_WINDOW
  ): Promise<void> {
    const todo = items.map((_, i) => i)
    const busyAnswers = new Map<number, number>()
    const unanswered: Array<Promise<void>> = []
    let resumeAt = 0
    // after a BUSY answer, one put at a time until one is taken: a block sent into a BUSY receiver crosses the network for nothing
    let busy = false
    while (todo.length > 0 || unanswered.length > 0) {
      if (todo.length === 0 || unanswered.length >= (busy ? 1 : window)) {
        await unanswered.shift()
        continue
      }
      const wait = resumeAt - performance.now()
      if (wait > 0) await sleep(wait, signal)
      const i = todo.shift()!
      let data: Uint8Array
      try {
        data = await items[i].load()
      } catch (err) {
        signal?.throwIfAborted()
        // a block this peer cannot read (a rotten copy: the store drops it) is not offered; the others still are
        onResult(i, StoreStatus.FAILED, `the block cannot be read here: ${(err as Error).message}`, 0)
        continue
      }
      const answered = this.request({ put: { cid: items[i].cid.bytes, data, replicas } }, signal).then(r => {
        const status = r.statuses[0] ?? StoreStatus.UNKNOWN
        const tries = busyAnswers.get(i) ?? 0
        busy = status === StoreStatus.BUSY
        if (busy && tries < BUSY_RETRIES) {
          busyAnswers.set(i, tries + 1)
          resumeAt = Math.max(resumeAt, performance.now() + Math.min(Math.max(r.retry_after_ms ?? 0, 1), MAX_BUSY_WAIT_MS))
          // back in its place: the puts behind it were sent before the receiver said so and come back too
          const at = todo.findIndex(j => j > i)
          todo.splice(at < 0 ? todo.length : at, 0, i)
          return
        }
        onResult(i, status, r.message, data.length)
      })
      // awaited in turn; if an earlier one throws first, the rest fail with the same session
      answered.catch(() => {})
      unanswered.push(answered)
    }
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
    const reader = new FrameReader(this.stream, { highWaterBytes: UNREAD_HIGH_WATER_BYTES })
    try {
      while (true) {
        const length = await reader.readLength()
        if (length === undefined) throw new WireProtocolError(`peer ${this.peerId} closed the store stream`)
        if (length > MAX_LIST_MESSAGE_BYTES) throw new WireProtocolError(`peer ${this.peerId} sent a store response of ${length} bytes (most ${MAX_LIST_MESSAGE_BYTES})`)
        const response = StoreResponseCodec.decode(await reader.readBody(length))
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
