/**
 * The holder's side of /shoal/xfer/1.0.0: answers wants with blocks and
 * haves with presence, in the order asked. Requests are read while answers
 * are being sent, so a fetcher can keep a pipeline full and cancel what it
 * no longer needs. A stream that asks for more than MAX_PENDING_PER_STREAM
 * unanswered CIDs, or sends a malformed or oversized message, is reset; the
 * peer's other streams and every other peer carry on.
 */
import { pbStream } from '@libp2p/utils'
import type { Connection, Logger, Stream } from '@libp2p/interface'
import { CID } from 'multiformats/cid'
import type { ContentStore } from '../store/content-store.ts'
import { STREAM_LIMITS } from '../wire/limits.ts'
import { isEndOfStream } from '../wire/streams.ts'
import {
  MAX_PENDING_PER_STREAM, Presence, XferRequestCodec, XferResponseCodec,
  type XferResponse
} from '../wire/xfer-messages.ts'

/** xfer streams one connection may have open at once. */
export const MAX_INBOUND_XFER_STREAMS = 4

interface Pending {
  key: string
  cid: Uint8Array
  kind: 'want' | 'have'
}

export interface XferServerInit {
  content: ContentStore
  log: Logger
  /** Bytes of blocks sent, for /metrics. */
  onSent?: (bytes: number) => void
}

export class XferServer {
  private readonly init: XferServerInit

  constructor (init: XferServerInit) {
    this.init = init
  }

  readonly handle = async (stream: Stream, connection: Connection): Promise<void> => {
    const remote = connection.remotePeer.toString()
    const pb = pbStream(stream, STREAM_LIMITS)
    const queue: Pending[] = []
    let wake: (() => void) | undefined
    let readerDone = false
    let failed: Error | undefined

    const reader = (async () => {
      try {
        while (true) {
          let request
          try {
            request = await pb.read(XferRequestCodec)
          } catch (err) {
            if (isEndOfStream(err)) return
            throw err
          }
          if (request.cancel.length > 0) {
            const cancelled = new Set(request.cancel.map(c => Buffer.from(c).toString('base64')))
            for (let i = queue.length - 1; i >= 0; i--) {
              if (queue[i].kind === 'want' && cancelled.has(queue[i].key)) queue.splice(i, 1)
            }
          }
          for (const cid of request.want) queue.push({ key: Buffer.from(cid).toString('base64'), cid, kind: 'want' })
          for (const cid of request.have) queue.push({ key: Buffer.from(cid).toString('base64'), cid, kind: 'have' })
          if (queue.length > MAX_PENDING_PER_STREAM) throw new Error(`more than ${MAX_PENDING_PER_STREAM} unanswered CIDs`)
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
        const next = queue.shift()
        if (next == null) {
          if (readerDone) break
          await new Promise<void>(resolve => { wake = resolve })
          wake = undefined
          continue
        }
        const response = await this.answer(next)
        await pb.write(response, XferResponseCodec)
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
    const none = new Uint8Array(0)
    let cid: CID
    try {
      cid = CID.decode(pending.cid)
    } catch {
      return { cid: pending.cid, presence: Presence.DONT_HAVE, data: none }
    }
    if (pending.kind === 'have') {
      return { cid: pending.cid, presence: await this.init.content.hasBlock(cid) ? Presence.HAVE : Presence.DONT_HAVE, data: none }
    }
    try {
      // Not re-hashed here: the fetcher verifies every block it receives.
      const data = await this.init.content.blockstore.get(cid, { verify: false })
      return { cid: pending.cid, presence: Presence.BLOCK, data }
    } catch {
      return { cid: pending.cid, presence: Presence.DONT_HAVE, data: none }
    }
  }
}
