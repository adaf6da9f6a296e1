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
  encodePut, STORE_PROTOCOL, StoreRequestCodec, StoreResponseCodec, StoreStatus,
  type StoreResponse
} from '../wire/store-messages.ts'

/** Unanswered puts a sender starts with on one stream, before it has measured the receiver. */
export const PUT_WINDOW = 4
/** The fewest and most unanswered puts it keeps (the receiver reads MAX_PIPELINED_REQUESTS ahead). */
export const MIN_PUT_WINDOW = 2
export const MAX_PUT_WINDOW = 8
/**
 * The window holds this long of the receiver's measured rate, plus the
 * round trip (the bandwidth-delay product): enough that the receiver never
 * waits for the next block while it stores the last (WebTorrent keeps
 * 0.5-1 s of data in flight per peer).
 */
export const PUT_WINDOW_SECONDS = 0.5
/** How long one request may wait for its answer. */
export const STORE_REQUEST_TIMEOUT_MS = 30_000
/** Times one block is offered again after BUSY answers before its last answer is taken as final. */
export const BUSY_RETRIES = 8
/** The longest a BUSY answer makes the sender wait, whatever the receiver asks. */
export const MAX_BUSY_WAIT_MS = 10_000

/** One block to offer: its CID, and its bytes when it is its turn (or the bytes already at hand). */
export interface PutItem {
  cid: CID
  load: () => Promise<Uint8Array> | Uint8Array
}

/** Where putAll takes its blocks from: the next one, or undefined once there are no more. */
export interface PutSource {
  next: () => Promise<PutItem | undefined> | PutItem | undefined
}

interface Waiter {
  resolve: (response: StoreResponse) => void
  reject: (err: Error) => void
}

export class StoreSession extends ClientSession {
  /** Requests sent and not yet answered, in the order sent (answers come in that order). */
  private readonly waiting: Waiter[] = []
  /** The receiver's measured rate, which sizes the window of puts. */
  private readonly rate = new PutRate()

  private constructor (peerId: string, stream: Stream) {
    super(peerId, stream)
    void this.readAnswers()
  }

  static async open (node: Pick<Libp2p, 'dialProtocol'>, peerId: string, signal?: AbortSignal): Promise<StoreSession> {
    return new StoreSession(peerId, await ClientSession.dial(node, peerId, STORE_PROTOCOL, signal))
  }

  /** Offers one block; resolves the receiver's status. */
  async put (cid: CID, data: Uint8Array, replicas: number, signal?: AbortSignal): Promise<{ status: number, message: string }> {
    const response = await this.request(encodePut(cid.bytes, data, replicas), signal)
    return { status: response.statuses[0] ?? StoreStatus.UNKNOWN, message: response.message }
  }

  /**
   * Offers many blocks, keeping several requests unanswered so the
   * receiver can store them together (one folder sync for the lot) and no
   * round trip sits idle. `onResult` gets each block's final answer, in
   * order except for blocks offered again after a BUSY answer (sent again
   * after the wait the receiver asked for, up to BUSY_RETRIES times).
   * `window`: a fixed number of unanswered puts instead of one sized by
   * the receiver's measured rate.
   */
  async putMany (
    items: PutItem[],
    replicas: number,
    onResult: (index: number, status: number, message: string, bytes: number) => void,
    signal?: AbortSignal,
    window?: number
  ): Promise<void> {
    let next = 0
    await this.putAll({ next: () => items[next++] }, replicas, (item, status, message, bytes) => { onResult(items.indexOf(item), status, message, bytes) }, signal, window)
  }

  /**
   * putMany over a source that may make the caller wait for its next block
   * (placement streamed during an import): ends once the source has no
   * more and every block has its final answer. Items are reported by
   * identity.
   */
  async putAll (
    source: PutSource,
    replicas: number,
    onResult: (item: PutItem, status: number, message: string, bytes: number) => void,
    signal?: AbortSignal,
    fixedWindow?: number
  ): Promise<void> {
    const retry: PutItem[] = []
    const busyAnswers = new Map<PutItem, number>()
    const unanswered: Array<Promise<void>> = []
    let ended = false
    let resumeAt = 0
    // after a BUSY answer, one put at a time until one is taken: a block sent into a BUSY receiver crosses the network for nothing
    let busy = false
    while (true) {
      const window = fixedWindow ?? this.rate.window()
      if (unanswered.length >= (busy ? 1 : window) || (ended && retry.length === 0 && unanswered.length > 0)) {
        await unanswered.shift()
        continue
      }
      const item = retry.shift() ?? (ended ? undefined : await source.next())
      if (item == null) {
        ended = true
        if (unanswered.length === 0 && retry.length === 0) return
        continue
      }
      const wait = resumeAt - performance.now()
      if (wait > 0) await sleep(wait, signal)
      let data: Uint8Array
      try {
        data = await item.load()
      } catch (err) {
        signal?.throwIfAborted()
        // a block this peer cannot read (a rotten copy: the store drops it) is not offered; the others still are
        onResult(item, StoreStatus.FAILED, `the block cannot be read here: ${(err as Error).message}`, 0)
        continue
      }
      const sentAt = performance.now()
      const answered = this.request(encodePut(item.cid.bytes, data, replicas), signal).then(r => {
        const status = r.statuses[0] ?? StoreStatus.UNKNOWN
        const tries = busyAnswers.get(item) ?? 0
        busy = status === StoreStatus.BUSY
        if (busy && tries < BUSY_RETRIES) {
          busyAnswers.set(item, tries + 1)
          resumeAt = Math.max(resumeAt, performance.now() + Math.min(Math.max(r.retry_after_ms ?? 0, 1), MAX_BUSY_WAIT_MS))
          // offered again before anything new: the puts behind it were sent before the receiver said so and come back too
          retry.push(item)
          return
        }
        this.rate.answered(data.length, sentAt)
        onResult(item, status, r.message, data.length)
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
      const response = await this.request([lengthPrefixed(StoreRequestCodec.encode({ has: { cids: batch.map(c => c.bytes) } }))], signal)
      if (response.statuses.length !== batch.length) throw new WireProtocolError(`peer ${this.peerId} answered ${response.statuses.length} statuses for ${batch.length} CIDs`)
      out.push(...response.statuses.map(s => s === StoreStatus.HAVE))
    }
    return out
  }

  async close (): Promise<void> {
    await this.closeStream(new Error('session closed'))
  }

  /** Sends one request (its buffers in order, not copied); its answer is the next one not yet claimed. */
  private async request (parts: Uint8Array[], signal?: AbortSignal): Promise<StoreResponse> {
    if (this.failed != null) throw this.failed
    const answer = new Promise<StoreResponse>((resolve, reject) => { this.waiting.push({ resolve, reject }) })
    // raced below; when the deadline wins, the answer still arrives (or the session fails) unobserved
    answer.catch(() => {})
    const deadline = this.deadline(signal, STORE_REQUEST_TIMEOUT_MS, 'store request')
    try {
      await this.sendParts(parts, deadline)
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

/**
 * The rate a receiver takes puts at, and the window it calls for: bytes
 * answered over time (a moving average), and the time from a put's send to
 * its answer. The window holds PUT_WINDOW_SECONDS of that rate plus a round
 * trip's worth, in blocks of the average size seen, within
 * MIN_PUT_WINDOW..MAX_PUT_WINDOW.
 */
export class PutRate {
  private bytesPerMs = 0
  private avgBytes = 0
  private roundTripMs = 0
  /** The current sample: bytes answered since `sampleAt`. */
  private sampleAt = 0
  private sampleBytes = 0

  /** A put of `bytes` sent at `sentAt` was answered now. */
  answered (bytes: number, sentAt: number): void {
    const now = performance.now()
    this.avgBytes = this.avgBytes === 0 ? bytes : 0.8 * this.avgBytes + 0.2 * bytes
    this.roundTripMs = this.roundTripMs === 0 ? now - sentAt : 0.8 * this.roundTripMs + 0.2 * (now - sentAt)
    if (this.sampleAt === 0) this.sampleAt = sentAt
    this.sampleBytes += bytes
    // answers come in bursts (a receiver answers a batch at once): rates over samples of at least RATE_SAMPLE_MS
    const elapsed = now - this.sampleAt
    if (elapsed < RATE_SAMPLE_MS) return
    const rate = this.sampleBytes / elapsed
    this.bytesPerMs = this.bytesPerMs === 0 ? rate : 0.7 * this.bytesPerMs + 0.3 * rate
    this.sampleAt = now
    this.sampleBytes = 0
  }

  window (): number {
    if (this.bytesPerMs === 0 || this.avgBytes === 0) return PUT_WINDOW
    const inFlight = this.bytesPerMs * (PUT_WINDOW_SECONDS * 1000 + this.roundTripMs)
    return Math.min(MAX_PUT_WINDOW, Math.max(MIN_PUT_WINDOW, Math.ceil(inFlight / this.avgBytes)))
  }
}

/** The shortest span a rate sample covers. */
const RATE_SAMPLE_MS = 100
