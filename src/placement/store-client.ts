/**
 * The offering side of /shoal/store/1.0.0: one stream to one peer; each
 * request gets one response, in order, and putMany keeps several puts in
 * flight (the receiver reads ahead and stores them together).
 */
import { peerIdFromString } from '@libp2p/peer-id'
import { pbStream } from '@libp2p/utils'
import type { Libp2p, Stream } from '@libp2p/interface'
import type { CID } from 'multiformats/cid'
import { MAX_CIDS_PER_QUERY, STREAM_LIMITS } from '../wire/limits.ts'
import {
  STORE_PROTOCOL, StoreRequestCodec, StoreResponseCodec, StoreStatus,
  type StoreRequest, type StoreResponse
} from '../wire/store-messages.ts'

/** Unanswered puts a sender keeps on one stream (the receiver's limit is MAX_PIPELINED_REQUESTS). */
export const PUT_WINDOW = 4
/** How long one request may wait for its answer. */
export const STORE_REQUEST_TIMEOUT_MS = 30_000

export class StoreSession {
  readonly peerId: string
  private readonly stream: Stream
  private readonly pb: ReturnType<typeof pbStream>

  private constructor (peerId: string, stream: Stream) {
    this.peerId = peerId
    this.stream = stream
    this.pb = pbStream(stream, STREAM_LIMITS)
  }

  static async open (node: Pick<Libp2p, 'dialProtocol'>, peerId: string, signal?: AbortSignal): Promise<StoreSession> {
    const stream = await node.dialProtocol(peerIdFromString(peerId), STORE_PROTOCOL, { signal })
    return new StoreSession(peerId, stream)
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
    const sizes: number[] = []
    let acked = 0
    let failure: Error | undefined
    let wake: (() => void) | undefined
    const reader = (async () => {
      try {
        while (acked < items.length) {
          const timeout = AbortSignal.timeout(STORE_REQUEST_TIMEOUT_MS)
          const response = await this.pb.read(StoreResponseCodec, { signal: signal != null ? AbortSignal.any([signal, timeout]) : timeout })
          onResult(acked, response.statuses[0] ?? StoreStatus.UNKNOWN, response.message, sizes[acked])
          acked++
          wake?.()
        }
      } catch (err) {
        failure = err as Error
        wake?.()
      }
    })()
    for (let sent = 0; sent < items.length; sent++) {
      while (sent - acked >= window && failure == null) await new Promise<void>(resolve => { wake = resolve })
      if (failure != null) break
      const data = await items[sent].load()
      sizes[sent] = data.length
      await this.pb.write({ put: { cid: items[sent].cid.bytes, data, replicas } }, StoreRequestCodec, { signal })
    }
    await reader
    if (failure != null) throw failure
  }

  /** Which of these blocks the peer holds. */
  async has (cids: CID[], signal?: AbortSignal): Promise<boolean[]> {
    const out: boolean[] = []
    for (let i = 0; i < cids.length; i += MAX_CIDS_PER_QUERY) {
      const batch = cids.slice(i, i + MAX_CIDS_PER_QUERY)
      const response = await this.request({ has: { cids: batch.map(c => c.bytes) } }, signal)
      if (response.statuses.length !== batch.length) throw new Error(`peer ${this.peerId} answered ${response.statuses.length} statuses for ${batch.length} CIDs`)
      out.push(...response.statuses.map(s => s === StoreStatus.HAVE))
    }
    return out
  }

  private async request (request: StoreRequest, signal?: AbortSignal): Promise<StoreResponse> {
    const timeout = AbortSignal.timeout(STORE_REQUEST_TIMEOUT_MS)
    const combined = signal != null ? AbortSignal.any([signal, timeout]) : timeout
    await this.pb.write(request, StoreRequestCodec, { signal: combined })
    return this.pb.read(StoreResponseCodec, { signal: combined })
  }

  async close (): Promise<void> {
    await this.stream.close().catch(() => { this.stream.abort(new Error('close failed')) })
  }

  abort (err: Error): void {
    this.stream.abort(err)
  }
}

/** True for the statuses that mean "the peer now holds the block". */
export function isHeld (status: number): boolean {
  return status === StoreStatus.STORED || status === StoreStatus.ALREADY_HELD
}
