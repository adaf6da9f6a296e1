/**
 * The holder's side of /shoal/xfer/1.0.0: answers have lists with a bit set
 * and wants with blocks, in the order asked. Requests are read while answers
 * are being sent, and the next few blocks are read from disk while the
 * current one goes out, so a fetcher that keeps a pipeline full gets a
 * steady stream. Limits per stream: MAX_PENDING_WANTS unanswered wants,
 * MAX_PENDING_HAVES have lists of at most MAX_HAVE_CIDS CIDs, READ_AHEAD
 * blocks in memory; a stream that asks for more, sends a malformed or
 * oversized message, or stops reading for SEND_TIMEOUT_MS is reset. The
 * peer's other streams and every other peer carry on.
 */
import { lpStream } from '@libp2p/utils'
import type { Connection, Logger, Stream } from '@libp2p/interface'
import { CID } from 'multiformats/cid'
import type { ContentStore } from '../store/content-store.ts'
import { STREAM_LIMITS } from '../wire/limits.ts'
import { isEndOfStream } from '../wire/streams.ts'
import { encodeResponse } from '../wire/xfer-frames.ts'
import {
  MAX_HAVE_CIDS, MAX_PENDING_HAVES, MAX_PENDING_WANTS, Presence, XferRequestCodec,
  packBits, type XferResponse
} from '../wire/xfer-messages.ts'
import type { UploadLimiter } from './upload-limiter.ts'

/** xfer streams one connection may have open at once. */
export const MAX_INBOUND_XFER_STREAMS = 4

/** Blocks read from disk ahead of the one being sent, per stream. */
const READ_AHEAD = 4

/** A fetcher that reads nothing for this long has its stream reset. */
const SEND_TIMEOUT_MS = 60_000

interface Pending {
  kind: 'want' | 'have'
  /** want: the CID asked for (binary) and its base64 key, for cancels. */
  cid?: Uint8Array
  key?: string
  /** have: the CIDs asked about. */
  cids?: Uint8Array[]
  answer?: Promise<XferResponse>
  cancelled?: boolean
}

export interface XferServerInit {
  content: ContentStore
  log: Logger
  limiter?: UploadLimiter
  /** Bytes of blocks sent, for /metrics. */
  onSent?: (bytes: number) => void
}

const NONE = new Uint8Array(0)

export class XferServer {
  private readonly init: XferServerInit

  constructor (init: XferServerInit) {
    this.init = init
  }

  readonly handle = async (stream: Stream, connection: Connection): Promise<void> => {
    const remote = connection.remotePeer.toString()
    const lp = lpStream(stream, STREAM_LIMITS)
    const queue: Pending[] = []
    let wants = 0
    let haves = 0
    let wake: (() => void) | undefined
    let readerDone = false
    let failed: Error | undefined
    const gone = new AbortController()
    stream.addEventListener('close', () => { gone.abort(new Error('stream closed')) }, { once: true })

    const readAhead = (): void => {
      for (let i = 0; i < Math.min(READ_AHEAD, queue.length); i++) {
        const item = queue[i]
        if (item.answer == null) {
          item.answer = this.answer(item)
          item.answer.catch(() => {}) // awaited by the writer; a stream reset leaves it unawaited
        }
      }
    }

    const reader = (async () => {
      try {
        while (true) {
          let request
          try {
            request = XferRequestCodec.decode(await lp.read())
          } catch (err) {
            if (isEndOfStream(err)) return
            throw err
          }
          if (request.cancel.length > 0) {
            const cancelled = new Set(request.cancel.map(c => Buffer.from(c).toString('base64')))
            for (let i = queue.length - 1; i >= 0; i--) {
              const item = queue[i]
              if (item.kind === 'want' && cancelled.has(item.key ?? '')) {
                item.cancelled = true
                queue.splice(i, 1)
                wants--
              }
            }
          }
          if (request.have.length > 0) {
            if (request.have.length > MAX_HAVE_CIDS) throw new Error(`a have list of ${request.have.length} CIDs (most ${MAX_HAVE_CIDS})`)
            if (++haves > MAX_PENDING_HAVES) throw new Error(`more than ${MAX_PENDING_HAVES} unanswered have lists`)
            queue.push({ kind: 'have', cids: request.have })
          }
          for (const cid of request.want) queue.push({ kind: 'want', cid, key: Buffer.from(cid).toString('base64') })
          wants += request.want.length
          if (wants > MAX_PENDING_WANTS) throw new Error(`more than ${MAX_PENDING_WANTS} unanswered wants`)
          readAhead()
          wake?.()
        }
      } catch (err) {
        failed = err as Error
      } finally {
        readerDone = true
        wake?.()
      }
    })()

    try {
      while (true) {
        if (failed != null) throw failed
        const next = queue[0]
        if (next == null) {
          if (readerDone) break
          await new Promise<void>(resolve => { wake = resolve })
          wake = undefined
          continue
        }
        readAhead()
        const response = await next.answer
        if (next.cancelled === true || response == null) continue // cancelled while it was being read
        queue.shift()
        if (next.kind === 'want') wants--
        else haves--
        readAhead()
        // a rate-limited send may wait long; only the stream's end cuts it short
        if (response.presence === Presence.BLOCK) await this.init.limiter?.take(response.data.length, gone.signal)
        const signal = AbortSignal.any([gone.signal, AbortSignal.timeout(SEND_TIMEOUT_MS)])
        // the block goes out as it was read: no copy into an encoder
        for (const part of encodeResponse(response)) {
          if (!stream.send(part)) await stream.onDrain({ signal })
        }
        if (response.presence === Presence.BLOCK) this.init.onSent?.(response.data.length)
      }
      await reader
      await stream.close()
    } catch (err) {
      this.init.log('xfer stream from %s reset: %s', remote, (err as Error).message)
      stream.abort(err as Error)
    }
  }

  private async answer (pending: Pending): Promise<XferResponse> {
    if (pending.kind === 'have') {
      // a CID that does not decode is simply not held
      const cids = (pending.cids ?? []).map(bytes => { try { return CID.decode(bytes) } catch { return undefined } })
      const valid = cids.flatMap((cid, i) => cid != null ? [i] : [])
      const found = await this.init.content.hasBlocks(valid.map(i => cids[i]!))
      const held = new Array<boolean>(cids.length).fill(false)
      valid.forEach((i, j) => { held[i] = found[j] })
      return { cid: NONE, presence: Presence.HAVE_SET, data: NONE, bits: packBits(held) }
    }
    const asked = pending.cid ?? NONE
    try {
      // Blockstore blocks are not re-hashed here (the fetcher verifies every block it receives); leaves kept in a fetched file are
      // (the user may have changed the file), so this peer never sends bytes it knows to be wrong.
      const data = await this.init.content.readBlock(CID.decode(asked), { verify: false })
      return { cid: asked, presence: Presence.BLOCK, data, bits: NONE }
    } catch {
      return { cid: asked, presence: Presence.DONT_HAVE, data: NONE, bits: NONE }
    }
  }
}
