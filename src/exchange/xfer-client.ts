/**
 * The fetcher's side of /shoal/xfer/1.0.0: one stream to one holder, with
 * any number of wants in flight. Wants made in the same tick go out as one
 * Request; answers are matched to wants by CID. Blocks are decoded as their
 * bytes arrive, straight into buffers from `allocate` (ResponseDecoder). An
 * answer nobody asked for, or a malformed one, is a protocol error: the
 * stream is reset and every pending want fails.
 */
import type { Libp2p, Stream } from '@libp2p/interface'
import type { CID } from 'multiformats/cid'
import { cidBytesKey } from '../content/cid.ts'
import { ClientSession } from '../wire/client-session.ts'
import { WireProtocolError } from '../wire/errors.ts'
import { lengthPrefixed } from '../wire/length-prefix.ts'
import { MAX_MESSAGE_BYTES } from '../wire/limits.ts'
import { ResponseDecoder, type ResponseFrame } from '../wire/xfer-frames.ts'
import {
  MAX_CANCEL_CIDS, MAX_HAVE_CIDS, MAX_PENDING_WANTS, Presence, XFER_PROTOCOL, XferRequestCodec, unpackBits, type XferRequest
} from '../wire/xfer-messages.ts'

/** Bytes of blocks a fetcher may have asked one holder for and not yet received. */
export const MAX_INFLIGHT_BYTES_PER_PEER = 8 * 1024 * 1024

/** A have list unanswered this long fails. */
const HAVE_TIMEOUT_MS = 30_000

interface Waiter<T> {
  resolve: (value: T) => void
  reject: (err: Error) => void
}

export interface XferSessionOptions {
  signal?: AbortSignal
  /** Buffers for blocks (default: fresh ones). */
  allocate?: (size: number) => Uint8Array
  /** A buffer from `allocate` that will not be handed out (a late answer, a failed stream). */
  release?: (buf: Uint8Array) => void
}

/** The holder answered what nobody asked, or closed the stream while answers were owed. */
export class XferProtocolError extends WireProtocolError {
  static name = 'XferProtocolError'
}

export class XferSession extends ClientSession {
  private readonly decoder: ResponseDecoder
  private readonly release: (buf: Uint8Array) => void
  private readonly wants = new Map<string, Array<Waiter<Uint8Array | undefined>>>()
  private readonly cancelled = new Map<string, number>()
  private readonly haves: Array<{ count: number, waiter: Waiter<boolean[]> }> = []
  private batch?: { want: Uint8Array[], cancel: Uint8Array[] }
  /** When the holder last sent anything (performance.now()): alive even mid-way through a large block. */
  lastByteAt = performance.now()

  private constructor (peerId: string, stream: Stream, options: XferSessionOptions) {
    super(peerId, stream)
    this.release = options.release ?? (() => {})
    this.decoder = new ResponseDecoder({
      maxMessageBytes: MAX_MESSAGE_BYTES,
      allocate: options.allocate ?? (size => Buffer.allocUnsafe(size)),
      onFrame: frame => { this.onFrame(frame) }
    })
    stream.addEventListener('message', evt => {
      if (this.failed != null) return
      this.lastByteAt = performance.now()
      try {
        if (evt.data instanceof Uint8Array) this.decoder.push(evt.data)
        else for (const chunk of evt.data) this.decoder.push(chunk)
      } catch (err) {
        this.fail(err as Error)
      }
    })
    stream.addEventListener('remoteCloseWrite', () => { this.fail(new XferProtocolError(`peer ${peerId} closed the stream`)) })
    stream.addEventListener('close', evt => { this.fail(evt.error ?? new XferProtocolError(`stream to ${peerId} closed`)) })
  }

  static async open (node: Pick<Libp2p, 'dialProtocol'>, peerId: string, options: XferSessionOptions = {}): Promise<XferSession> {
    return new XferSession(peerId, await ClientSession.dial(node, peerId, XFER_PROTOCOL, options.signal), options)
  }

  /**
   * The block's bytes (not verified here), in a buffer from `allocate`, or
   * undefined when the peer does not hold it or it was cancelled.
   */
  async want (cid: CID): Promise<Uint8Array | undefined> {
    if (this.failed != null) throw this.failed
    const key = cidBytesKey(cid.bytes)
    return new Promise((resolve, reject) => {
      let list = this.wants.get(key)
      if (list == null) this.wants.set(key, list = [])
      list.push({ resolve, reject })
      this.queue('want', cid.bytes)
    })
  }

  /** Withdraws a want: its promise resolves undefined now, and the peer skips it if it has not sent it yet. */
  cancel (cid: CID): void {
    const key = cidBytesKey(cid.bytes)
    const list = this.wants.get(key)
    if (list == null || this.failed != null) return
    this.wants.delete(key)
    for (const waiter of list) waiter.resolve(undefined)
    this.cancelled.set(key, (this.cancelled.get(key) ?? 0) + list.length)
    this.queue('cancel', cid.bytes)
  }

  /** Which of `cids` the peer holds. */
  async have (cids: CID[], signal?: AbortSignal): Promise<boolean[]> {
    const out: boolean[] = []
    for (let i = 0; i < cids.length; i += MAX_HAVE_CIDS) {
      const part = cids.slice(i, i + MAX_HAVE_CIDS)
      if (this.failed != null) throw this.failed
      const answer = new Promise<boolean[]>((resolve, reject) => { this.haves.push({ count: part.length, waiter: { resolve, reject } }) })
      await this.write({ want: [], have: part.map(c => c.bytes), cancel: [] }, signal)
      out.push(...await this.within(answer, signal, HAVE_TIMEOUT_MS, 'have list'))
    }
    return out
  }

  private queue (kind: 'want' | 'cancel', cid: Uint8Array): void {
    if (this.batch == null) {
      this.batch = { want: [], cancel: [] }
      queueMicrotask(() => { this.flush() })
    }
    this.batch[kind].push(cid)
  }

  /**
   * The tick's cancels, then its wants: one Request, or as many as the
   * holder's per-message limits need (cancels all go before the wants).
   */
  private flush (): void {
    const batch = this.batch
    this.batch = undefined
    if (batch == null || this.failed != null) return
    const requests: XferRequest[] = []
    if (batch.cancel.length <= MAX_CANCEL_CIDS && batch.want.length <= MAX_PENDING_WANTS) {
      requests.push({ want: batch.want, have: [], cancel: batch.cancel })
    } else {
      for (let i = 0; i < batch.cancel.length; i += MAX_CANCEL_CIDS) requests.push({ want: [], have: [], cancel: batch.cancel.slice(i, i + MAX_CANCEL_CIDS) })
      for (let i = 0; i < batch.want.length; i += MAX_PENDING_WANTS) requests.push({ want: batch.want.slice(i, i + MAX_PENDING_WANTS), have: [], cancel: [] })
    }
    for (const request of requests) this.write(request).catch(err => { this.fail(err as Error) })
  }

  /** One length-prefixed Request. */
  private async write (request: XferRequest, signal?: AbortSignal): Promise<void> {
    await this.send(lengthPrefixed(XferRequestCodec.encode(request)), signal)
  }

  private onFrame (frame: ResponseFrame): void {
    if (frame.presence === Presence.HAVE_SET) {
      const pending = this.haves.shift()
      if (pending == null) throw new XferProtocolError(`peer ${this.peerId} answered a have list nobody asked`)
      pending.waiter.resolve(unpackBits(frame.bits, pending.count))
      return
    }
    if (frame.presence !== Presence.BLOCK && frame.presence !== Presence.DONT_HAVE) {
      this.release(frame.data)
      throw new XferProtocolError(`peer ${this.peerId} answered presence ${frame.presence} to a want`)
    }
    const key = cidBytesKey(frame.cid)
    const list = this.wants.get(key)
    const waiter = list?.shift()
    if (waiter == null) {
      this.release(frame.data)
      // an answer already on its way when we cancelled is fine; any other is not
      const c = this.cancelled.get(key) ?? 0
      if (c === 0) throw new XferProtocolError(`peer ${this.peerId} sent a block nobody asked for`)
      if (c === 1) this.cancelled.delete(key)
      else this.cancelled.set(key, c - 1)
      return
    }
    if (list?.length === 0) this.wants.delete(key)
    if (frame.presence === Presence.BLOCK) {
      waiter.resolve(frame.data)
    } else {
      this.release(frame.data)
      waiter.resolve(undefined)
    }
  }

  protected onFailure (err: Error): void {
    const partial = this.decoder.partial
    if (partial != null) this.release(partial)
    for (const list of this.wants.values()) for (const w of list) w.reject(err)
    this.wants.clear()
    for (const h of this.haves.splice(0)) h.waiter.reject(err)
  }

  /** Ends the session: gracefully when nothing is owed, else with a reset (no point receiving blocks nobody wants). */
  async close (): Promise<void> {
    if (this.failed != null) return
    const owed = this.wants.size > 0 || this.haves.length > 0
    const closing = new XferProtocolError('session closed')
    for (const list of this.wants.values()) for (const w of list) w.resolve(undefined)
    this.wants.clear()
    for (const h of this.haves.splice(0)) h.waiter.reject(closing)
    if (owed) this.fail(closing)
    else await this.closeStream(closing)
  }
}
