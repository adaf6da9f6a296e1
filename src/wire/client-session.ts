/**
 * The asking side of a Shoal request protocol, written once: a stream to
 * one peer, opened with dialProtocol, that fails as a whole (every pending
 * request rejects with the first error, the stream is reset), closes
 * gracefully when nothing is owed, and gives each request a deadline that
 * is cleared once it is answered. A protocol's session (StoreSession,
 * XferSession) adds its requests and how answers are matched to them.
 */
import { peerIdFromString } from '@libp2p/peer-id'
import type { Libp2p, Stream } from '@libp2p/interface'
import { anySignal, type ClearableSignal } from '../utils/signals.ts'
import { STREAM_OPEN_TIMEOUT_MS } from './limits.ts'
import { raceSignal } from '../utils/wait.ts'

export abstract class ClientSession {
  readonly peerId: string
  protected readonly stream: Stream
  private failure?: Error

  protected constructor (peerId: string, stream: Stream) {
    this.peerId = peerId
    this.stream = stream
  }

  /** A stream to `peerId` speaking `protocol`, within STREAM_OPEN_TIMEOUT_MS. */
  protected static async dial (node: Pick<Libp2p, 'dialProtocol'>, peerId: string, protocol: string, signal?: AbortSignal): Promise<Stream> {
    const deadline = anySignal([signal], { timeoutMs: STREAM_OPEN_TIMEOUT_MS, message: () => `opening a ${protocol} stream to ${peerId} took over ${STREAM_OPEN_TIMEOUT_MS / 1000} s` })
    try {
      return await node.dialProtocol(peerIdFromString(peerId), protocol, { signal: deadline })
    } finally {
      deadline.clear()
    }
  }

  /** Why the session stopped, once it has. */
  get failed (): Error | undefined {
    return this.failure
  }

  /** Rejects every pending request (the session's own bookkeeping). */
  protected abstract onFailure (err: Error): void

  /** Ends the session with `err`: pending requests reject, the stream is reset. Only the first error counts. */
  protected fail (err: Error): void {
    if (this.failure != null) return
    this.failure = err
    this.onFailure(err)
    this.stream.abort(err)
  }

  /** Ends the session gracefully: no more requests; the stream is closed (reset if that fails). */
  protected async closeStream (reason: Error): Promise<void> {
    if (this.failure != null) return
    this.failure = reason
    await this.stream.close().catch(() => { this.stream.abort(reason) })
  }

  /** Resets the stream; pending requests reject with `err`. */
  abort (err: Error): void {
    this.fail(err)
  }

  /** One message out, waiting while the stream's send buffer is full. */
  protected async send (message: Uint8Array, signal?: AbortSignal): Promise<void> {
    if (!this.stream.send(message)) await this.stream.onDrain({ signal })
  }

  /**
   * One message given as buffers, sent as they are (never copied) and all
   * at once, so that messages sent concurrently never interleave; then
   * waits while the stream's send buffer is full.
   */
  protected async sendParts (parts: Uint8Array[], signal?: AbortSignal): Promise<void> {
    let room = true
    for (const part of parts) room = this.stream.send(part) && room
    if (!room) await this.stream.onDrain({ signal })
  }

  /** The caller's signal joined with a deadline; `clear()` it when done. */
  protected deadline (signal: AbortSignal | undefined, timeoutMs: number, what: string): ClearableSignal {
    return anySignal([signal], { timeoutMs, message: () => `${what}: no answer from ${this.peerId} in ${timeoutMs / 1000} s` })
  }

  /** `answer`, within the caller's signal and a deadline. */
  protected async within<T> (answer: Promise<T>, signal: AbortSignal | undefined, timeoutMs: number, what: string): Promise<T> {
    const deadline = this.deadline(signal, timeoutMs, what)
    try {
      return await raceSignal(answer, deadline)
    } finally {
      deadline.clear()
    }
  }
}
