/**
 * The answering side of a Shoal request protocol, written once: the one
 * owner of an inbound stream's framing, limits, queue of work, read-ahead,
 * timeouts, stats and teardown. A protocol (store, xfer) says how a message
 * becomes queued work and how work is answered; nothing else.
 *
 *   stream ─► FrameReader ─────► protocol.onRequest ─► queue ─► protocol.answer ─► Sender ─► stream
 *             length limit,       decode (limits         │       a batch from       one answer at a time,
 *             receive budget,     checked first),        │       the head            slow-read floor
 *             paused while the    queue or withdraw      │
 *             queue is full                              └─► protocol.prepare: the next few answers
 *                                                            started while earlier ones go out
 *
 * Requests are read while earlier ones are answered, so a sender that
 * pipelines keeps both directions busy; a sender that runs ahead of the
 * queue is held up by flow control (the stream is paused), never reset.
 * Limits that reset a stream: a message over the protocol's size, a
 * malformed or over-limit request, no request for `idleTimeoutMs` while
 * nothing is owed, a reader below the slow-read floor, a wait for budget
 * over `reserveTimeoutMs`, more streams from one peer than it may have.
 * Whatever ends a stream gives back everything its work held; the peer's
 * other streams and every other peer carry on.
 */
import type { Connection, Logger, Stream } from '@libp2p/interface'
import { anySignal } from '../utils/signals.ts'
import type { ByteBudget, Reservation } from './byte-budget.ts'
import { StreamLimitError, WireProtocolError } from './errors.ts'
import { FrameReader } from './frame-reader.ts'
import { MUXER_MAX_WINDOW_BYTES, UNREAD_HIGH_WATER_BYTES } from './limits.ts'
import type { PeerStreams } from './peer-streams.ts'
import { Sender, type SlowReadLimit } from './sender.ts'

export interface RequestStreamLimits {
  /** Largest message body (length prefix excluded), checked at the prefix. */
  maxMessageBytes: number
  /** A stream with nothing owed that sends no request for this long is reset. */
  idleTimeoutMs: number
  /** Jobs that may wait; while this many do, the stream is not read (default: no limit). */
  maxQueued?: number
  /** Jobs at the head of the queue whose answers are started ahead of their turn (default 0). */
  readAhead?: number
  /** The reader's floor rate (see Sender). */
  slowRead: SlowReadLimit
  /** A wait for room in a budget longer than this resets the stream. */
  reserveTimeoutMs: number
}

/** Something a job holds until it is answered: budget, a pooled buffer. */
export interface Releasable {
  release: () => void
}

/** One unit of queued work: answered by one message, or withdrawn. */
export class Job<W> {
  readonly work: W
  /** Withdrawn before it was answered (a cancel): nothing is sent for it. */
  dropped = false
  /** Its answer was started ahead of its turn. */
  started = false
  private readonly holds: Releasable[] = []
  private finished = false

  constructor (work: W) {
    this.work = work
  }

  /** Ties budget to this job: given back once its answer is out, or the job is dropped, or the stream ends. */
  hold (reservation: Releasable): void {
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
    this.onChange()
  }
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

/** What a protocol supplies; one object per stream (it may keep per-stream counts). */
export interface RequestProtocol<W> {
  /**
   * Decodes and checks one request, and queues the work it asks for (or
   * withdraws queued work). `hold` is the room the message took in the
   * receive budget, if the stream has one: pass it to the work it becomes.
   * Throws to reset the stream.
   */
  onRequest: (body: Uint8Array, queue: WorkQueue<W>, hold?: Reservation) => void
  /** How many jobs from the head to answer together (default 1). */
  batchSize?: (jobs: ReadonlyArray<Job<W>>) => number
  /** Starts a job's answer ahead of its turn (`readAhead` jobs from the head). */
  prepare?: (job: Job<W>) => void
  /** Answers jobs from the head of the queue. */
  answer: (jobs: Array<Job<W>>) => Promise<Answer>
  /** A job left the queue: answered, dropped, or the stream ended. Once per job. */
  onFinish?: (job: Job<W>) => void
}

export interface RequestStreamInit {
  /** The protocol's name, for logs ("store", "xfer"). */
  name: string
  log: Logger
  limits: RequestStreamLimits
  /** Streams open per remote peer for this protocol (one per server), with its cap. */
  streams: PeerStreams
  /** Room each message takes before its body is read (the store's received blocks). */
  receiveBudget?: ByteBudget
  /**
   * Where a message that arrived in pieces is joined (default: a fresh
   * buffer): a buffer of at least that many bytes, from a pool the
   * protocol gives back once the message's work is done.
   */
  allocate?: (size: number) => Uint8Array
}

/** What a protocol's handlers may use of the stream they serve. */
export interface StreamContext {
  /** The remote peer's ID. */
  readonly remote: string
  /** Aborts when the stream ends, however it ends: pass it to whatever waits on the stream's behalf. */
  readonly signal: AbortSignal
  /** Reserves room in `budget` for this stream's peer; a wait over the limit resets the stream. */
  reserve: (budget: ByteBudget, bytes: number) => Promise<Reservation>
}

export class RequestStream<W> implements StreamContext {
  readonly remote: string
  private readonly stream: Stream
  private readonly init: RequestStreamInit
  private readonly ended = new AbortController()
  private protocol?: RequestProtocol<W>
  private readonly queue: WorkQueue<W>
  private readonly reader: FrameReader
  private readonly sender: Sender
  private readerDone = false
  private answering = false
  private failure?: Error
  private wake?: () => void
  private lastActivityAt = performance.now()
  private idleTimer?: ReturnType<typeof setTimeout>
  /** Whether this stream holds one of its peer's places in `streams` (given back once, when it closes or its work ends). */
  private counted = false
  /** For the log line at the end. */
  private readonly stats = { requests: 0, answers: 0 }

  constructor (stream: Stream, connection: Connection, init: RequestStreamInit) {
    this.stream = stream
    this.remote = connection.remotePeer.toString()
    this.init = init
    this.queue = new WorkQueue<W>(job => { this.finish(job) }, () => { this.wake?.() })
    this.reader = new FrameReader(stream, { highWaterBytes: UNREAD_HIGH_WATER_BYTES })
    this.sender = new Sender(stream, init.limits.slowRead)
    // a paused stream keeps what the sender still had window for: up to yamux's largest window
    stream.maxReadBufferLength = Math.max(stream.maxReadBufferLength, MUXER_MAX_WINDOW_BYTES)
    // whatever waits on the stream's behalf (a rate limit, a budget) stops when it closes
    stream.addEventListener('close', () => {
      // a closed stream is no longer one of its peer's open streams, even while its handler still winds down (a block being read)
      this.uncount()
      this.stop(new StreamLimitError(`${init.name} stream closed`))
    }, { once: true })
  }

  get signal (): AbortSignal {
    return this.ended.signal
  }

  async reserve (budget: ByteBudget, bytes: number): Promise<Reservation> {
    const timeoutMs = this.init.limits.reserveTimeoutMs
    const signal = anySignal([this.ended.signal], {
      timeoutMs,
      message: () => `waited ${timeoutMs / 1000} s for ${bytes} bytes of room (this peer holds ${budget.heldBy(this.remote)}, all peers ${budget.inUseBytes})`
    })
    try {
      return await budget.reserve(this.remote, bytes, signal)
    } finally {
      signal.clear()
    }
  }

  /** Serves the stream until it ends; never throws (a failure resets the stream). */
  async serve (protocol: RequestProtocol<W>): Promise<void> {
    const { name, log, streams } = this.init
    if (!streams.add(this.remote)) {
      log('%s stream from %s refused: it has %d open', name, this.remote, streams.maxPerPeer)
      this.stream.abort(new StreamLimitError(`more than ${streams.maxPerPeer} ${name} streams from one peer`))
      return
    }
    this.counted = true
    this.protocol = protocol
    this.armIdleTimer()
    const reading = this.readRequests()
    try {
      await this.answerRequests()
      await reading
      const closing = anySignal([], { timeoutMs: this.init.limits.slowRead.windowMs })
      try {
        await this.stream.close({ signal: closing })
      } finally {
        closing.clear()
      }
      log.trace('%s stream from %s done: %d requests, %d answers, %d bytes in, %d out', name, this.remote,
        this.stats.requests, this.stats.answers, this.reader.bytesIn, this.sender.bytesOut)
    } catch (err) {
      log('%s stream from %s reset: %s', name, this.remote, (err as Error).message)
      this.stream.abort(err as Error)
    } finally {
      this.uncount()
      clearTimeout(this.idleTimer)
      this.stop(new StreamLimitError(`${name} stream ended`))
      for (const job of this.queue.jobs.splice(0)) this.finish(job)
    }
  }

  private async readRequests (): Promise<void> {
    const { limits, receiveBudget } = this.init
    let hold: Reservation | undefined
    try {
      while (true) {
        // backpressure: while the queue is full nothing is read, and the reader pauses the stream
        while (this.queue.length >= (limits.maxQueued ?? Infinity)) await this.changed()
        const length = await this.reader.readLength(this.ended.signal)
        if (length === undefined) return
        if (length > limits.maxMessageBytes) throw new WireProtocolError(`a message of ${length} bytes (most ${limits.maxMessageBytes})`)
        if (receiveBudget != null) hold = await this.reserve(receiveBudget, length)
        const body = await this.reader.readBody(length, this.ended.signal, this.init.allocate)
        this.stats.requests++
        this.lastActivityAt = performance.now()
        const taken = hold
        hold = undefined
        try {
          this.protocol!.onRequest(body, this.queue, taken)
        } catch (err) {
          taken?.release() // unless it was queued (releasing twice is harmless)
          throw err
        }
        this.prepareAhead()
      }
    } catch (err) {
      this.failure ??= err as Error
    } finally {
      hold?.release()
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
        await this.changed()
        continue
      }
      this.prepareAhead()
      this.answering = true
      const batch = jobs.slice(0, Math.max(1, this.protocol!.batchSize?.(jobs) ?? 1))
      try {
        const { messages, resetAfter } = await this.protocol!.answer(batch)
        // out of the queue before sending, so the jobs behind are started ahead and the reader may go on
        for (const job of batch) {
          const i = jobs.indexOf(job)
          if (i >= 0) jobs.splice(i, 1)
        }
        this.prepareAhead()
        this.wake?.()
        for (const parts of messages) {
          await this.sender.send(parts, this.ended.signal)
          this.stats.answers++
        }
        if (resetAfter != null) throw resetAfter
      } finally {
        for (const job of batch) this.finish(job)
        this.answering = false
        this.lastActivityAt = performance.now()
      }
    }
  }

  /** Resolves at the next change of the queue or of the reader (either side may be waiting). */
  private async changed (): Promise<void> {
    if (this.failure != null) throw this.failure
    const previous = this.wake
    await new Promise<void>(resolve => {
      this.wake = () => {
        this.wake = undefined
        previous?.()
        resolve()
      }
    })
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

  /**
   * One timer per stream, rearmed only when it fires: a stream is idle when
   * nothing is owed (no job queued or being answered) and no request has
   * come for the whole timeout. A stream that owes answers is the
   * Sender's to judge.
   */
  private armIdleTimer (delayMs = this.init.limits.idleTimeoutMs): void {
    this.idleTimer = setTimeout(() => {
      const timeoutMs = this.init.limits.idleTimeoutMs
      const quietMs = performance.now() - this.lastActivityAt
      if (this.queue.length > 0 || this.answering) this.armIdleTimer()
      else if (quietMs < timeoutMs) this.armIdleTimer(timeoutMs - quietMs)
      else this.stop(new StreamLimitError(`no request for ${timeoutMs / 1000} s`))
    }, delayMs)
    this.idleTimer.unref?.()
  }

  /** Ends the stream's work with `err` (the first reason counts): waits stop, the loops see it. */
  private stop (err: Error): void {
    this.failure ??= err
    this.ended.abort(err)
    this.wake?.()
  }

  private uncount (): void {
    if (!this.counted) return
    this.counted = false
    this.init.streams.remove(this.remote)
  }

  private finish (job: Job<W>): void {
    if (job.finish()) this.protocol?.onFinish?.(job)
  }
}
