/** The fetcher's side of /shoal/xfer/1.0.0: one stream to one holder. */
import { peerIdFromString } from '@libp2p/peer-id'
import { pbStream } from '@libp2p/utils'
import type { Libp2p, Stream } from '@libp2p/interface'
import type { CID } from 'multiformats/cid'
import { STREAM_LIMITS } from '../wire/limits.ts'
import { Presence, XFER_PROTOCOL, XferRequestCodec, XferResponseCodec, type XferResponse } from '../wire/xfer-messages.ts'

export const XFER_REQUEST_TIMEOUT_MS = 30_000

export class XferSession {
  readonly peerId: string
  private readonly stream: Stream
  private readonly pb: ReturnType<typeof pbStream>

  private constructor (peerId: string, stream: Stream) {
    this.peerId = peerId
    this.stream = stream
    this.pb = pbStream(stream, STREAM_LIMITS)
  }

  static async open (node: Pick<Libp2p, 'dialProtocol'>, peerId: string, signal?: AbortSignal): Promise<XferSession> {
    return new XferSession(peerId, await node.dialProtocol(peerIdFromString(peerId), XFER_PROTOCOL, { signal }))
  }

  /** One block, or undefined when the peer does not hold it. Not verified here. */
  async get (cid: CID, signal?: AbortSignal): Promise<Uint8Array | undefined> {
    const response = await this.ask({ want: [cid.bytes], have: [], cancel: [] }, signal)
    if (response.presence === Presence.BLOCK) return response.data
    if (response.presence === Presence.DONT_HAVE) return undefined
    throw new Error(`peer ${this.peerId} answered presence ${response.presence} to a want`)
  }

  private async ask (request: { want: Uint8Array[], have: Uint8Array[], cancel: Uint8Array[] }, signal?: AbortSignal): Promise<XferResponse> {
    const timeout = AbortSignal.timeout(XFER_REQUEST_TIMEOUT_MS)
    const combined = signal != null ? AbortSignal.any([signal, timeout]) : timeout
    await this.pb.write(request, XferRequestCodec, { signal: combined })
    const response = await this.pb.read(XferResponseCodec, { signal: combined })
    const asked = request.want[0] ?? request.have[0]
    if (asked != null && !Buffer.from(response.cid).equals(Buffer.from(asked))) {
      throw new Error(`peer ${this.peerId} answered for another CID`)
    }
    return response
  }

  async close (): Promise<void> {
    await this.stream.close().catch(() => { this.stream.abort(new Error('close failed')) })
  }

  abort (err: Error): void {
    this.stream.abort(err)
  }
}
