/**
 * Streams kept open between requests, per peer: the asking side of a
 * request/answer protocol (Chord's rpc.ts, Kademlia's find-client.ts)
 * sends one request at a time on a stream and, once the answer is in,
 * gives the stream back here for the next request to the same peer. A new
 * stream per request costs its opening, protocol negotiation and closing,
 * several times the request itself, and a lookup or a stabilize round asks
 * the same peers again and again.
 *
 *   take(peer) ── a kept stream, still open both ways? ── yes ─> request on it
 *        │                                             └─ no: aborted, next
 *        └─ none: the caller opens a fresh one
 *   giveBack(peer) ── pool stopped: aborted; peer has its most: closed;
 *                     else kept, closed after idleMs unused
 *
 * `use` is the whole exchange: a kept stream first; if it fails (the other
 * side may have closed it while it sat here) one fresh stream, unless the
 * caller gave up or the failure would come again on any stream. A stream
 * whose exchange failed is aborted, never kept.
 */
import type { AbortOptions, Stream } from '@libp2p/interface'
import type { ProtobufStream } from '@libp2p/utils'
import { KEPT_STREAM_IDLE_MS, MAX_KEPT_STREAMS_PER_PEER } from './limits.ts'

export interface KeptStream {
  stream: Stream
  pb: ProtobufStream<Stream>
}

export interface KeptStreamsInit {
  /** Who owns the streams, as the reason they are aborted with says ("the Chord overlay"). */
  owner: string
  /** Aborted when the owner stops: a stream given back after that is aborted, not kept. */
  lifetime: () => AbortSignal
  /** A kept stream unused this long is closed. */
  idleMs?: number
  /** Unused streams kept per peer; one more given back is closed. */
  maxPerPeer?: number
}

export interface UseOptions {
  signal: AbortSignal
  /** An error that a fresh stream would only repeat (the peer answered out of protocol): no second try. */
  fatal?: (err: unknown) => boolean
}

interface Entry {
  kept: KeptStream
  idle: ReturnType<typeof setTimeout>
}

export class KeptStreams {
  private readonly init: KeptStreamsInit
  private readonly idleMs: number
  private readonly maxPerPeer: number
  private readonly byPeer = new Map<string, Entry[]>()

  constructor (init: KeptStreamsInit) {
    this.init = init
    this.idleMs = init.idleMs ?? KEPT_STREAM_IDLE_MS
    this.maxPerPeer = init.maxPerPeer ?? MAX_KEPT_STREAMS_PER_PEER
  }

  /** Unused streams kept for `peer`, or for every peer. */
  count (peer?: string): number {
    if (peer != null) return this.byPeer.get(peer)?.length ?? 0
    let n = 0
    for (const entries of this.byPeer.values()) n += entries.length
    return n
  }

  /**
   * `exchange` on a kept stream to `peer`, else on a fresh one from `open`;
   * a kept stream that fails is replaced once by a fresh one. The stream
   * goes back to the pool when `exchange` resolves, and is aborted when it
   * throws.
   */
  async use<T> (peer: string, open: () => Promise<KeptStream>, exchange: (kept: KeptStream) => Promise<T>, options: UseOptions): Promise<T> {
    const reused = this.take(peer, options)
    if (reused != null) {
      try {
        return await this.exchangeOn(peer, reused, exchange)
      } catch (err) {
        if (options.signal.aborted || options.fatal?.(err) === true) throw err
      }
    }
    return this.exchangeOn(peer, await open(), exchange)
  }

  /**
   * A kept stream to `peer` that is still open both ways, or undefined (the
   * ones found closed are aborted on the way). Throws the signal's reason
   * when it is already aborted: a caller that gave up takes no stream.
   */
  take (peer: string, options: AbortOptions = {}): KeptStream | undefined {
    options.signal?.throwIfAborted()
    const entries = this.byPeer.get(peer)
    while (entries != null && entries.length > 0) {
      const { kept, idle } = entries.pop() as Entry
      clearTimeout(idle)
      if (isReusable(kept.stream)) {
        if (entries.length === 0) this.byPeer.delete(peer)
        return kept
      }
      kept.stream.abort(new Error('stale'))
    }
    this.byPeer.delete(peer)
    return undefined
  }

  /** Keeps `kept` for the next request to `peer` (an exchange on it has just finished). */
  giveBack (peer: string, kept: KeptStream): void {
    if (this.init.lifetime().aborted) {
      kept.stream.abort(new Error(`${this.init.owner} stopped`))
      return
    }
    const entries = this.byPeer.get(peer) ?? []
    if (entries.length >= this.maxPerPeer) {
      void kept.stream.close().catch(() => {})
      return
    }
    const entry: Entry = {
      kept,
      idle: setTimeout(() => {
        const list = this.byPeer.get(peer)
        const at = list?.indexOf(entry) ?? -1
        if (list != null && at >= 0) {
          list.splice(at, 1)
          if (list.length === 0) this.byPeer.delete(peer)
        }
        void kept.stream.close().catch(() => { kept.stream.abort(new Error('closing an idle stream failed')) })
      }, this.idleMs)
    }
    entry.idle.unref?.()
    entries.push(entry)
    this.byPeer.set(peer, entries)
  }

  /** Aborts every kept stream (the owner stops). */
  closeAll (): void {
    for (const entries of this.byPeer.values()) {
      for (const { kept, idle } of entries) {
        clearTimeout(idle)
        kept.stream.abort(new Error(`${this.init.owner} stopped`))
      }
    }
    this.byPeer.clear()
  }

  private async exchangeOn<T> (peer: string, kept: KeptStream, exchange: (kept: KeptStream) => Promise<T>): Promise<T> {
    try {
      const result = await exchange(kept)
      this.giveBack(peer, kept)
      return result
    } catch (err) {
      kept.stream.abort(err as Error)
      throw err
    }
  }
}

/**
 * Open, writable and readable (or only paused), and the other side has
 * neither reset it nor closed its end: a stream whose answerer closed its
 * end still reads as readable here until its end is read, and would only
 * fail the request sent on it.
 */
function isReusable (stream: Stream): boolean {
  return stream.status === 'open' && stream.writeStatus === 'writable' && (stream.readStatus === 'readable' || stream.readStatus === 'paused') &&
    stream.remoteWriteStatus === 'writable'
}
