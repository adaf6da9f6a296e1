/**
 * The proving side of /shoal/prove/1.0.0: a peer that says it holds blocks
 * shows it, by hashing each block with a nonce the asker just chose
 * (sha2-256(nonce || block)). Without the bytes there is no answer to give,
 * so a peer cannot claim a block it does not hold and make a holder drop its
 * copy (repairer.ts asks before dropping).
 *
 * Each proof costs a block read and hash here, so: one request per stream,
 * at most MAX_PROVE_CIDS CIDs, a request of at most MAX_PROVE_REQUEST_BYTES,
 * a deadline for the whole exchange, and at most MAX_PROVES_AT_ONCE requests
 * hashed at once from all peers together (the others wait within their
 * deadline). Anything malformed resets the stream.
 */
import { pbStream } from '@libp2p/utils'
import type { Connection, Logger, Stream } from '@libp2p/interface'
import { CID } from 'multiformats/cid'
import type { ContentStore } from '../store/content-store.ts'
import { isEndOfStream } from '../wire/streams.ts'
import {
  MAX_PROVE_CIDS, MAX_PROVE_REQUEST_BYTES, PROVE_NONCE_BYTES, PROVE_TIMEOUT_MS,
  ProveRequestCodec, ProveResponseCodec, proofOf, type ProveRequest
} from './prove-messages.ts'

/** Prove requests hashed at once, from all peers together. */
export const MAX_PROVES_AT_ONCE = 2
/** Prove streams one connection may have open at once. */
export const MAX_INBOUND_PROVE_STREAMS = 2

export interface ProveServerInit {
  content: Pick<ContentStore, 'holdsBlocks' | 'readBlock'>
  log: Logger
}

export class ProveServer {
  private readonly init: ProveServerInit
  private active = 0
  private readonly waiting: Array<() => void> = []

  constructor (init: ProveServerInit) {
    this.init = init
  }

  readonly handle = async (stream: Stream, connection: Connection): Promise<void> => {
    const signal = AbortSignal.timeout(PROVE_TIMEOUT_MS)
    const pb = pbStream(stream, { maxDataLength: MAX_PROVE_REQUEST_BYTES, maxBufferSize: MAX_PROVE_REQUEST_BYTES + 16 })
    try {
      const request = await pb.read(ProveRequestCodec, { signal })
      const cids = checkRequest(request)
      await this.acquire(signal)
      let proofs: Uint8Array[]
      try {
        proofs = await this.prove(request.nonce, cids, signal)
      } finally {
        this.release()
      }
      await pb.write({ proofs }, ProveResponseCodec, { signal })
      await stream.close({ signal })
    } catch (err) {
      stream.abort(err as Error)
      if (!isEndOfStream(err)) this.init.log('prove request from %s refused: %s', connection.remotePeer, (err as Error).message)
    }
  }

  private async prove (nonce: Uint8Array, cids: CID[], signal: AbortSignal): Promise<Uint8Array[]> {
    // what `has` answers HAVE for: blockstore copies
    const held = await this.init.content.holdsBlocks(cids)
    const proofs: Uint8Array[] = []
    for (let i = 0; i < cids.length; i++) {
      signal.throwIfAborted()
      if (!held[i]) { proofs.push(new Uint8Array()); continue }
      try {
        proofs.push(proofOf(nonce, await this.init.content.readBlock(cids[i])))
      } catch {
        // gone or unreadable since: no proof
        proofs.push(new Uint8Array())
      }
    }
    return proofs
  }

  private async acquire (signal: AbortSignal): Promise<void> {
    while (this.active >= MAX_PROVES_AT_ONCE) {
      signal.throwIfAborted()
      await new Promise<void>((resolve, reject) => {
        const onAbort = (): void => { reject(signal.reason) }
        signal.addEventListener('abort', onAbort, { once: true })
        this.waiting.push(() => { signal.removeEventListener('abort', onAbort); resolve() })
      })
    }
    this.active++
  }

  private release (): void {
    this.active--
    this.waiting.shift()?.()
  }
}

function checkRequest (request: ProveRequest): CID[] {
  if (request.nonce.length !== PROVE_NONCE_BYTES) throw new Error(`a prove nonce must be ${PROVE_NONCE_BYTES} bytes, got ${request.nonce.length}`)
  if (request.cids.length > MAX_PROVE_CIDS) throw new Error(`a prove request of ${request.cids.length} CIDs is over the limit of ${MAX_PROVE_CIDS}`)
  return request.cids.map(bytes => CID.decode(bytes))
}
