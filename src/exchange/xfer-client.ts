/**
 * The fetcher's side of /shoal/xfer/1.0.0: one stream to one holder, with
 * any number of wants in flight. Wants made in the same tick go out as one
 * Request; answers are matched to wants by CID. An answer nobody asked for,
 * or more bytes than were asked for, is a protocol error: the stream is
 * reset and every pending want fails.
 */
import { peerIdFromString } from '@libp2p/peer-id'
import { lpStream } from '@libp2p/utils'
import type { Libp2p, Stream } from '@libp2p/interface'
import type { CID } from 'multiformats/cid'
import { MAX_MESSAGE_BYTES } from '../wire/limits.ts'
import { isEndOfStream } from '../wire/streams.ts'
import { decodeResponse, type ByteList } from '../wire/xfer-frames.ts'
import {
  MAX_HAVE_CIDS, Presence, XFER_PROTOCOL, XferRequestCodec, unpackBits, type XferRequest
} from '../wire/xfer-messages.ts'

/** Bytes of blocks a fetcher may have asked one holder for and not yet received. */
export const MAX_INFLIGHT_BYTES_PER_PEER = 16 * 1024 * 1024

/** A have list unanswered this long fails. */
const HAVE_TIMEOUT_MS = 30_000

interface Waiter<T> {
  resolve: (value: T) => void
  reject: (err: Error) => void
}

export class XferProtocolError extends Error {
  static name = 'XferProtocolError'
  constructor (message: string) {
    super(message)
    this.name = 'XferProtocolError'
  }
}

export class XferSession {
  readonly peerId: string
  private readonly stream: Stream
  private readonly lp: ReturnType<typeof lpStream>
  private readonly wants = new Map<string, Array<Waiter<ByteList | undefined>>>()
  private readonly cancelled = new Map<string, number>()
  private readonly haves: Array<{ count: number, waiter: Waiter<boolean[]> }> = []
  private batch?: { want: Uint8Array[], cancel: Uint8Array[] }
  private failure?: Error
  private readonly reading: Promise<void>

  private constructor (peerId: string, stream: Stream) {
    this.peerId = peerId
    this.stream = stream
    // Blocks arrive as fast as the holder sends what was asked: room for
    // everything a fetcher may have in flight with this peer, and no more.
    this.lp = lpStream(stream, { maxDataLength: MAX_MESSAGE_BYTES, maxBufferSize: MAX_INFLIGHT_BYTES_PER_PEER + MAX_MESSAGE_BYTES })
    this.reading = this.readLoop()
  }

  static async open (node: Pick<Libp2p, 'dialProtocol'>, peerId: string, signal?: AbortSignal): Promise<XferSession> {
    return new XferSession(peerId, await node.dialProtocol(peerIdFromString(peerId), XFER_PROTOCOL, { signal }))
  }

  get failed (): Error | undefined {
    return this.failure
  }

  /**
   * The block's bytes, as the chunks they arrived in (not verified here), or
   * undefined when the peer does not hold it or it was cancelled.
   */
  async want (cid: CID): Promise<ByteList | undefined> {
    if (this.failure != null) throw this.failure
    const key = keyOf(cid.bytes)
    return new Promise((resolve, reject) => {
      let list = this.wants.get(key)
      if (list == null) this.wants.set(key, list = [])
      list.push({ resolve, reject })
      this.queue('want', cid.bytes)
    })
  }

  /** Withdraws a want: its promise resolves undefined now, and the peer skips it if it has not sent it yet. */
  cancel (cid: CID): void {
    const key = keyOf(cid.bytes)
    const list = this.wants.get(key)
    if (list == null || this.failure != null) return
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
      if (this.failure != null) throw this.failure
      const answer = new Promise<boolean[]>((resolve, reject) => { this.haves.push({ count: part.length, waiter: { resolve, reject } }) })
      await this.write({ want: [], have: part.map(c => c.bytes), cancel: [] }, signal)
      const timeout = AbortSignal.timeout(HAVE_TIMEOUT_MS)
      const deadline = signal != null ? AbortSignal.any([signal, timeout]) : timeout
      out.push(...await raceAbort(answer, deadline))
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

  private flush (): void {
    const batch = this.batch
    this.batch = undefined
    if (batch == null || this.failure != null) return
    this.write({ want: batch.want, have: [], cancel: batch.cancel }).catch(err => { this.fail(err as Error) })
  }

  private async write (request: XferRequest, signal?: AbortSignal): Promise<void> {
    await this.lp.write(XferRequestCodec.encode(request), { signal })
  }

  private async readLoop (): Promise<void> {
    try {
      while (true) {
        let response
        try {
          response = decodeResponse(await this.lp.read())
        } catch (err) {
          if (isEndOfStream(err)) throw new XferProtocolError(`peer ${this.peerId} closed the stream`)
          throw err
        }
        if (response.presence === Presence.HAVE_SET) {
          const pending = this.haves.shift()
          if (pending == null) throw new XferProtocolError(`peer ${this.peerId} answered a have list nobody asked`)
          pending.waiter.resolve(unpackBits(response.bits, pending.count))
          continue
        }
        if (response.presence !== Presence.BLOCK && response.presence !== Presence.DONT_HAVE) {
          throw new XferProtocolError(`peer ${this.peerId} answered presence ${response.presence} to a want`)
        }
        const key = keyOf(response.cid)
        const list = this.wants.get(key)
        const waiter = list?.shift()
        if (waiter == null) {
          // an answer already on its way when we cancelled is fine; any other is not
          const c = this.cancelled.get(key) ?? 0
          if (c === 0) throw new XferProtocolError(`peer ${this.peerId} sent a block nobody asked for`)
          if (c === 1) this.cancelled.delete(key)
          else this.cancelled.set(key, c - 1)
          continue
        }
        if (list?.length === 0) this.wants.delete(key)
        waiter.resolve(response.presence === Presence.BLOCK ? response.data : undefined)
      }
    } catch (err) {
      this.fail(err as Error)
    }
  }

  private fail (err: Error): void {
    if (this.failure != null) return
    this.failure = err
    for (const list of this.wants.values()) for (const w of list) w.reject(err)
    this.wants.clear()
    for (const h of this.haves.splice(0)) h.waiter.reject(err)
    this.stream.abort(err)
  }

  async close (): Promise<void> {
    if (this.failure != null) return
    this.failure = new XferProtocolError('session closed')
    for (const list of this.wants.values()) for (const w of list) w.resolve(undefined)
    this.wants.clear()
    for (const h of this.haves.splice(0)) h.waiter.reject(this.failure)
    await this.stream.close().catch(() => { this.stream.abort(new Error('close failed')) })
    await this.reading
  }

  abort (err: Error): void {
    this.fail(err)
  }
}

function keyOf (cid: Uint8Array): string {
  return Buffer.from(cid.buffer, cid.byteOffset, cid.byteLength).toString('base64')
}

async function raceAbort<T> (promise: Promise<T>, signal: AbortSignal): Promise<T> {
  signal.throwIfAborted()
  return new Promise<T>((resolve, reject) => {
    const onAbort = (): void => { reject(signal.reason as Error) }
    signal.addEventListener('abort', onAbort, { once: true })
    promise.then(resolve, reject).finally(() => { signal.removeEventListener('abort', onAbort) })
  })
}
