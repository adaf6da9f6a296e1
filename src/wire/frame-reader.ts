/**
 * Length-prefixed messages read off a libp2p stream, with backpressure.
 *
 * Bytes arrive as the stream's 'message' events. The reader keeps them only
 * as far as its owner asks: once more than `highWaterBytes` sit unasked
 * for, it pauses the stream (yamux then stops granting the sender window,
 * so the sender stops), and it resumes when the owner reads again. An owner
 * that stops reading (its queue is full, its budget has no room) thus holds
 * up the sender instead of buffering without bound or resetting an honest
 * pipeline.
 *
 * A message is read in two steps, so that its length can be checked (and
 * room reserved for it) before any of its body is kept:
 *
 *   const length = await reader.readLength(signal)    // undefined: the sender closed cleanly
 *   ...check the length, reserve room...
 *   const body = await reader.readBody(length, signal)
 */
import type { Stream } from '@libp2p/interface'
import { WireProtocolError } from './errors.ts'

/** The most bytes a message's length prefix takes (a varint below 2^53). */
const MAX_PREFIX_BYTES = 8

export interface FrameReaderInit {
  /** Bytes kept beyond what was asked for before the stream is paused. */
  highWaterBytes: number
}

export class FrameReader {
  private readonly stream: Stream
  private readonly highWaterBytes: number
  private readonly chunks: Uint8Array[] = []
  /** Offset into chunks[0] of the first unread byte. */
  private offset = 0
  private buffered = 0
  private remoteEnded = false
  private failure?: Error
  /** Bytes the pending read needs (0: nobody is reading). */
  private need = 0
  private wake?: () => void
  private paused = false
  /** Bytes received, for stats. */
  bytesIn = 0

  constructor (stream: Stream, init: FrameReaderInit) {
    this.stream = stream
    this.highWaterBytes = init.highWaterBytes
    stream.addEventListener('message', evt => {
      if (evt.data instanceof Uint8Array) this.append(evt.data)
      else for (const chunk of evt.data) this.append(chunk)
      if (this.need > 0) {
        if (this.buffered >= this.need) this.wake?.()
      } else if (this.buffered > this.highWaterBytes) {
        this.pause()
      }
    })
    stream.addEventListener('remoteCloseWrite', () => {
      this.remoteEnded = true
      this.wake?.()
    })
    stream.addEventListener('close', evt => {
      this.remoteEnded = true
      if (evt.error != null) this.failure ??= evt.error
      this.wake?.()
    })
  }

  /**
   * The next message's length, or undefined when the sender closed its side
   * between two messages. Throws when the stream was reset, or ended in the
   * middle of a prefix.
   */
  async readLength (signal?: AbortSignal): Promise<number | undefined> {
    let value = 0
    let scale = 1
    for (let i = 0; i < MAX_PREFIX_BYTES; i++) {
      if (!await this.fill(1, signal)) {
        if (i === 0) return undefined
        throw new WireProtocolError('the stream ended inside a message length')
      }
      const byte = this.takeByte()
      value += (byte & 0x7f) * scale
      if (byte < 0x80) {
        this.settle()
        return value
      }
      scale *= 128
    }
    throw new WireProtocolError('a message length longer than 8 bytes')
  }

  /**
   * The next `length` bytes as one buffer (a copy only when they arrived in
   * pieces, into `allocate`'s buffer when given: at least `length` bytes).
   */
  async readBody (length: number, signal?: AbortSignal, allocate?: (size: number) => Uint8Array): Promise<Uint8Array> {
    if (length === 0) return new Uint8Array(0)
    if (!await this.fill(length, signal)) throw new WireProtocolError(`the stream ended inside a message of ${length} bytes`)
    const first = this.chunks[0]
    if (first.length - this.offset >= length) {
      const body = first.subarray(this.offset, this.offset + length)
      this.consume(length)
      this.settle()
      return body
    }
    const body = allocate != null ? allocate(length).subarray(0, length) : new Uint8Array(length)
    let at = 0
    while (at < length) {
      const chunk = this.chunks[0]
      const n = Math.min(length - at, chunk.length - this.offset)
      body.set(chunk.subarray(this.offset, this.offset + n), at)
      at += n
      this.consume(n)
    }
    this.settle()
    return body
  }

  /** Waits until `bytes` are buffered; false if the stream ended first. */
  private async fill (bytes: number, signal?: AbortSignal): Promise<boolean> {
    while (this.buffered < bytes) {
      if (this.failure != null) throw this.failure
      // ended: whatever the stream still held has been dispatched to us
      if (this.remoteEnded && this.stream.readBufferLength === 0) return false
      signal?.throwIfAborted()
      this.need = bytes
      // a paused stream hands over what it holds as it resumes
      this.resume()
      if (this.buffered >= bytes) break
      let onAbort: (() => void) | undefined
      try {
        await new Promise<void>((resolve, reject) => {
          this.wake = resolve
          if (signal == null) return
          onAbort = () => { reject(signal.reason as Error) }
          signal.addEventListener('abort', onAbort, { once: true })
        })
      } finally {
        if (onAbort != null) signal?.removeEventListener('abort', onAbort)
        this.wake = undefined
      }
    }
    this.need = 0
    return true
  }

  /** After a read: holds the sender up if more than the high-water mark is left over. */
  private settle (): void {
    if (this.buffered > this.highWaterBytes) this.pause()
  }

  private append (chunk: Uint8Array): void {
    if (chunk.length === 0) return
    this.chunks.push(chunk)
    this.buffered += chunk.length
    this.bytesIn += chunk.length
  }

  private takeByte (): number {
    const byte = this.chunks[0][this.offset]
    this.consume(1)
    return byte
  }

  private consume (n: number): void {
    this.offset += n
    this.buffered -= n
    while (this.chunks.length > 0 && this.offset >= this.chunks[0].length) {
      this.offset -= this.chunks[0].length
      this.chunks.shift()
    }
  }

  private pause (): void {
    if (this.paused || this.stream.readStatus !== 'readable') return
    this.paused = true
    this.stream.pause()
  }

  private resume (): void {
    if (!this.paused) return
    this.paused = false
    if (this.stream.readStatus === 'paused') this.stream.resume()
  }
}
