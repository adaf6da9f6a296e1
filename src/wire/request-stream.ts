/**
 * The answering side of a Shoal request protocol, written once: the one
 * owner of an inbound stream's framing, limits, queue of work, read-ahead,
 * idle timeout, stats and teardown. A protocol (store, xfer) says how a
 * message becomes queued work and how work is answered; nothing else.
 *
 *   stream ─► read a message ─► protocol.onRequest ─► queue ─► protocol.answer ─► send ─► stream
 *             (length limit,     (decode, check,        │       (a batch from       (waits for the
 *              idle timeout)      queue or withdraw)     │        the head)           reader to drain)
 *                                                        └─► protocol.prepare: the next few answers
 *                                                            started while earlier ones go out
 *
 * Requests are read while earlier ones are answered, so a sender that
 * pipelines keeps both directions busy. Whatever goes wrong (a protocol
 * violation, a limit, a failed write) resets the stream and gives back
 * everything its work held; the peer's other streams carry on. A clean end
 * of the request side closes the stream once every answer is out.
 */
import { lpStream } from '@libp2p/utils'
import type { Connection, Logger, Stream } from '@libp2p/interface'
import { anySignal } from '../utils/signals.ts'
import type { Reservation } from './byte-budget.ts'
import { isEndOfStream } from './streams.ts'

export interface RequestStreamLimits {
  /** Largest message body (length prefix excluded). */
  maxMessageBytes: number
  /** A stream that sends no request for this long is reset (default: never). */
  idleTimeoutMs?: number
  /** Jobs at the head of the queue whose answers are started ahead of their turn (default 0). */
  readAhead?: number
  /** A reader that takes none of an answer for this long has its stream reset (default: never). */
  sendTimeoutMs?: number
}

/** One unit of queued work: answered by one message, or withdrawn. */
export class Job<W> {
  readonly work: W
  /** Withdrawn before it was answered (a cancel): nothing is sent for it. */
  dropped = false
  /** Its answer was started ahead of its turn. */
  started = false
  private readonly holds: Reservation[] = []
  private finished = false

  constructor (work: W) {
    this.work = work
  }

  /** Ties budget to this job: given back once its answer is out, or the job is dropped, or the stream ends. */
  hold (reservation: Reservation): void {
    if (this.finished) reservation.release()
    else this.holds.push(reservation)
  }

  /** @internal by RequestStream */
  finish (): boolean {
    if (this.finished) return false
    this.finished = true
    for (const r of this.holds.splice(0)) r.release()
    return true
  }
}

/** The queue a protocol fills: work in the order it is to be answered. */
export class WorkQueue<W> {
  /** @internal */
  readonly jobs: Array<Job<W>> = []
  private readonly onFinish: (job: Job<W>) => void
  private readonly onChange: () => void

  constructor (onFinish: (job: Job<W>) => void, onChange: () => void) {
    this.onFinish = onFinish
    this.onChange = onChange
  }

  get length (): number {
    return this.jobs.length
  }

  /** Queues work; `hold` (budget its request took) is given back once it is answered. */
  push (work: W, hold?: Reservation): Job<W> {
    const job = new Job(work)
    if (hold != null) job.hold(hold)
    this.jobs.push(job)
    this.onChange()
    return job
  }

  /** Withdraws the queued work `match` picks: it is not answered, and what it held is given back. */
  drop (match: (work: W) => boolean): void {
    for (let i = this.jobs.length - 1; i >= 0; i--) {
      const job = this.jobs[i]
      if (!match(job.work)) continue
      job.dropped = true
      this.jobs.splice(i, 1)
      this.onFinish(job)
    }
  }
}

/** What a protocol supplies; one object per stream (it may keep per-stream counts). */
export interface RequestProtocol<W> {
  /**
   * Decodes and checks one request, and queues the work it asks for (or
   * withdraws queued work). Throws to reset the stream. The next message is
   * read once it returns (or its promise settles).
   */
  onRequest: (body: Uint8Array, queue: WorkQueue<W>) => void | Promise<void>
  /** How many jobs from the head to answer together (default 1). */
  batchSize?: (jobs: ReadonlyArray<Job<W>>) => number
  /** Starts a job's answer ahead of its turn (`readAhead` jobs from the head). */
  prepare?: (job: Job<W>) => void
  /** Answers jobs from the head of the queue. */
  answer: (jobs: Array<Job<W>>) => Promise<Answer>
  /** A job left the queue: answered, dropped, or the stream ended. Once per job. */
  onFinish?: (job: Job<W>) => void
}

export interface Answer {
  /**
   * The messages to send, in order, each as buffers sent as they are (never
   * copied). A job dropped meanwhile gets none.
   */
  messages: Uint8Array[][]
  /** Reset the stream with this error once the messages are out (a peer that sent a bad block is told, then cut off). */
  resetAfter?: Error
}

export interface RequestStreamInit {
  /** The protocol's name, for logs ("store", "xfer"). */
  name: string
  log: Logger
  limits: RequestStreamLimits
}

/** What a protocol's handlers may use of the stream they serve. */
export interface StreamContext {
  /** The remote peer's ID. */
  readonly remote: string
  /** Aborts when the stream ends, however it ends: pass it to whatever waits on the stream's behalf. */
  readonly signal: AbortSignal
}

export class RequestStream<W> implements StreamContext {
  readonly remote: string
  private readonly stream: Stream
  private readonly init: RequestStreamInit
  private readonly ended = new AbortController()
  private protocol?: RequestProtocol<W>
  private readonly queue: WorkQueue<W>
  private readerDone = false
  private failure?: Error
  private wake?: () => void
  /** For the log line at the end. */
  private readonly stats = { requests: 0, answers: 0, bytesIn: 0, bytesOut: 0 }

  constructor (stream: Stream, connection: Connection, init: RequestStreamInit) {
    this.stream = stream
    this.remote = connection.remotePeer.toString()
    this.init = init
    this.queue = new WorkQueue<W>(job => { this.finish(job) }, () => { this.wake?.() })
    // whatever waits on the stream's behalf (a rate limit, a budget) stops when it closes
    stream.addEventListener('close', () => { this.ended.abort(new Error(`${init.name} stream closed`)) }, { once: true })
  }

  get signal (): AbortSignal {
    return this.ended.signal
  }

  /** Serves the stream until it ends; never throws (a failure resets the stream). */
  async serve (protocol: RequestProtocol<W>): Promise<void> {
    this.protocol = protocol
    const reader = this.readRequests()
    try {
      await this.answerRequests()
      await reader
      await this.stream.close()
      this.init.log.trace('%s stream from %s done: %o', this.init.name, this.remote, this.stats)
    } catch (err) {
      this.init.log('%s stream from %s reset: %s', this.init.name, this.remote, (err as Error).message)
      this.stream.abort(err as Error)
    } finally {
      this.ended.abort(new Error(`${this.init.name} stream ended`))
      for (const job of this.queue.jobs.splice(0)) this.finish(job)
    }
  }

  private async readRequests (): Promise<void> {
    const { limits } = this.init
    const lp = lpStream(this.stream, { maxDataLength: limits.maxMessageBytes, maxBufferSize: limits.maxMessageBytes + 16 })
    try {
      while (true) {
        let body: Uint8Array
        const idle = limits.idleTimeoutMs == null ? undefined : anySignal([], { timeoutMs: limits.idleTimeoutMs, message: () => `no request for ${limits.idleTimeoutMs} ms` })
        try {
          body = (await lp.read({ signal: idle })).subarray()
        } catch (err) {
          if (isEndOfStream(err)) return
          throw err
        } finally {
          idle?.clear()
        }
        if (this.ended.signal.aborted) return
        this.stats.requests++
        this.stats.bytesIn += body.byteLength
        await this.protocol!.onRequest(body, this.queue)
        this.prepareAhead()
      }
    } catch (err) {
      this.failure ??= err as Error
    } finally {
      this.readerDone = true
      this.wake?.()
    }
  }

  private async answerRequests (): Promise<void> {
    const jobs = this.queue.jobs
    while (true) {
      if (this.failure != null) throw this.failure
      if (jobs.length === 0) {
        if (this.readerDone) return
        await new Promise<void>(resolve => { this.wake = resolve })
        this.wake = undefined
        continue
      }
      this.prepareAhead()
      const batch = jobs.slice(0, Math.max(1, this.protocol!.batchSize?.(jobs) ?? 1))
      const { messages, resetAfter } = await this.protocol!.answer(batch)
      // out of the queue before sending, so the jobs behind can be started ahead
      for (const job of batch) {
        const i = jobs.indexOf(job)
        if (i >= 0) jobs.splice(i, 1)
      }
      this.prepareAhead()
      try {
        for (const parts of messages) await this.send(parts)
      } finally {
        for (const job of batch) this.finish(job)
      }
      if (resetAfter != null) throw resetAfter
    }
  }

  /** Starts the answers of the first `readAhead` jobs. */
  private prepareAhead (): void {
    const prepare = this.protocol?.prepare
    if (prepare == null) return
    const jobs = this.queue.jobs
    const n = Math.min(this.init.limits.readAhead ?? 0, jobs.length)
    for (let i = 0; i < n; i++) {
      const job = jobs[i]
      if (job.started) continue
      job.started = true
      prepare(job)
    }
  }

  private async send (parts: Uint8Array[]): Promise<void> {
    const timeoutMs = this.init.limits.sendTimeoutMs
    const signal = anySignal([this.ended.signal], { timeoutMs, message: () => `the reader took nothing for ${timeoutMs} ms` })
    try {
      for (const part of parts) {
        this.stats.bytesOut += part.byteLength
        if (!this.stream.send(part)) await this.stream.onDrain({ signal })
      }
      this.stats.answers++
    } finally {
      signal.clear()
    }
  }

  private finish (job: Job<W>): void {
    if (job.finish()) this.protocol?.onFinish?.(job)
  }
}
