/**
 * Writes a served stream's answers, one at a time, and holds its reader to
 * a floor rate. An answer is handed to the stream whole (its buffers as
 * they are, never copied) and the next one waits until the stream has
 * passed it all to the muxer, so a stream holds at most one answer in its
 * write buffer; yamux passes bytes on only as the reader's window allows.
 *
 * The floor: over every `windowMs` of time spent waiting for the reader
 * (added up across answers, so a trickle of window updates cannot restart
 * it), the reader must take at least `minBytes` while it is waited for, or
 * the stream is reset.
 * Time the answer spends elsewhere (read from disk, an upload rate limit)
 * does not count against the reader.
 */
import type { Stream } from '@libp2p/interface'
import { StreamLimitError } from './errors.ts'

export interface SlowReadLimit {
  windowMs: number
  minBytes: number
}

export class Sender {
  private readonly stream: Stream
  private readonly limit: SlowReadLimit
  /** Bytes handed to the stream so far. */
  private queued = 0
  /** Time waited for the reader in the current window, and what it took while it was waited for. */
  private waitedMs = 0
  private takenWhileWaited = 0

  constructor (stream: Stream, limit: SlowReadLimit) {
    this.stream = stream
    this.limit = limit
  }

  /** Bytes the reader has taken (handed on to the muxer). */
  get bytesOut (): number {
    return this.queued - this.stream.writeBufferLength
  }

  /** Sends one answer; resolves once all of it has left the stream's write buffer. */
  async send (parts: Uint8Array[], signal: AbortSignal): Promise<void> {
    for (const part of parts) {
      this.queued += part.byteLength
      this.stream.send(part)
    }
    while (this.stream.writeBufferLength > 0) {
      signal.throwIfAborted()
      const started = performance.now()
      const before = this.bytesOut
      await this.nextProgress(this.limit.windowMs - this.waitedMs, signal)
      this.waitedMs += performance.now() - started
      this.takenWhileWaited += this.bytesOut - before
      if (this.waitedMs < this.limit.windowMs) continue
      const taken = this.takenWhileWaited
      if (taken < this.limit.minBytes) {
        throw new StreamLimitError(`the reader took ${taken} bytes in ${this.limit.windowMs / 1000} s of waiting for it (the floor is ${this.limit.minBytes})`)
      }
      this.waitedMs = 0
      this.takenWhileWaited = 0
    }
  }

  /** Until the stream sends on ('drain') or empties its buffer ('idle'), or `ms` pass. */
  private async nextProgress (ms: number, signal: AbortSignal): Promise<void> {
    const stream = this.stream
    await new Promise<void>((resolve, reject) => {
      const done = (err?: Error): void => {
        clearTimeout(timer)
        stream.removeEventListener('drain', onProgress)
        stream.removeEventListener('idle', onProgress)
        stream.removeEventListener('close', onClose)
        signal.removeEventListener('abort', onAbort)
        if (err == null) resolve()
        else reject(err)
      }
      const onProgress = (): void => { done() }
      const onClose = (evt: Event): void => { done((evt as Event & { error?: Error }).error ?? new StreamLimitError('the stream closed before its answer was out')) }
      const onAbort = (): void => { done(signal.reason as Error) }
      const timer = setTimeout(onProgress, Math.max(0, ms))
      stream.addEventListener('drain', onProgress)
      stream.addEventListener('idle', onProgress)
      stream.addEventListener('close', onClose)
      signal.addEventListener('abort', onAbort)
    })
  }
}
