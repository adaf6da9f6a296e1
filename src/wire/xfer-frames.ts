/**
 * The xfer Response on the hot path, encoded and decoded by hand in the
 * protobuf wire format of xfer.proto (so any protobuf implementation reads
 * it): a block is never copied into an encoder's buffer on the holder, and
 * on the fetcher it is copied once, from the network chunks straight into
 * the buffer it is hashed and written from. Requests, small and rare, go
 * through the protobufjs codec.
 */
import { copyBytes } from '../utils/bytes.ts'
import { WireProtocolError } from './errors.ts'
import { pushVarint } from './length-prefix.ts'
import type { XferResponse } from './xfer-messages.ts'

/** A decoded Response; `data` is the buffer the decoder's `allocate` gave. */
export interface ResponseFrame {
  cid: Uint8Array
  presence: number
  data: Uint8Array
  bits: Uint8Array
}

export { lengthPrefixed } from './length-prefix.ts'

/** A Response that is not well-formed protobuf, or over the size limit. */
export class MalformedFrameError extends WireProtocolError {
  static name = 'MalformedFrameError'
}

/**
 * The Response, length prefix included, as buffers to send in order: a
 * header, then the block itself (not copied), then any trailing field.
 */
export function encodeResponse (response: XferResponse): Uint8Array[] {
  const header: number[] = []
  if (response.cid.length > 0) { header.push(0x0a); pushVarint(header, response.cid.length); for (const b of response.cid) header.push(b) }
  if (response.presence !== 0) { header.push(0x10); pushVarint(header, response.presence) }
  const tail: number[] = []
  if (response.bits.length > 0) { tail.push(0x22); pushVarint(tail, response.bits.length); for (const b of response.bits) tail.push(b) }
  if (response.data.length > 0) {
    header.push(0x1a)
    pushVarint(header, response.data.length)
  }
  const length = header.length + response.data.length + tail.length
  const prefix: number[] = []
  pushVarint(prefix, length)
  const parts: Uint8Array[] = [Uint8Array.from([...prefix, ...header])]
  if (response.data.length > 0) parts.push(response.data)
  if (tail.length > 0) parts.push(Uint8Array.from(tail))
  return parts
}

export interface ResponseDecoderInit {
  maxMessageBytes: number
  /** Where a block's bytes go: the one copy between the network and the disk. */
  allocate: (size: number) => Uint8Array
  onFrame: (frame: ResponseFrame) => void
}

const NONE = new Uint8Array(0)

/**
 * Decodes length-prefixed Responses from stream chunks as they arrive,
 * copying each block's bytes straight into a buffer from `allocate`: no
 * chunk is kept once it has been read, so nothing from the network lives
 * long enough to burden the garbage collector, and no block is joined
 * twice. Throws MalformedFrameError on anything but a well-formed message.
 */
export class ResponseDecoder {
  private readonly init: ResponseDecoderInit
  private state: 'length' | 'tag' | 'varint' | 'fieldLength' | 'bytes' | 'skip' = 'length'
  private value = 0
  private scale = 1
  private varintBytes = 0
  /** Bytes of the current message still to read (after its length prefix). */
  private remaining = 0
  private field = 0
  private fieldLeft = 0
  private target?: Uint8Array
  private targetAt = 0
  private frame: ResponseFrame = { cid: NONE, presence: 0, data: NONE, bits: NONE }

  constructor (init: ResponseDecoderInit) {
    this.init = init
  }

  /** The buffer of a block left half-filled (on failure), to give back. */
  get partial (): Uint8Array | undefined {
    return this.state === 'bytes' && this.field === 3 ? this.target : undefined
  }

  push (chunk: Uint8Array): void {
    let at = 0
    while (at < chunk.length) {
      if (this.state === 'bytes' || this.state === 'skip') {
        const n = Math.min(this.fieldLeft, chunk.length - at)
        if (this.state === 'bytes') copyBytes(chunk, this.target!, this.targetAt, at, at + n)
        this.targetAt += n
        this.fieldLeft -= n
        this.remaining -= n
        at += n
        if (this.fieldLeft === 0) this.endField()
        continue
      }
      const byte = chunk[at++]
      if (this.state !== 'length') this.remaining--
      if (++this.varintBytes > 8) throw new MalformedFrameError('varint too long')
      this.value += (byte & 0x7f) * this.scale
      this.scale *= 128
      if (byte >= 0x80) {
        if (this.state !== 'length' && this.remaining <= 0) throw new MalformedFrameError('truncated varint')
        continue
      }
      const value = this.value
      this.value = 0
      this.scale = 1
      this.varintBytes = 0
      this.onVarint(value)
    }
  }

  private onVarint (value: number): void {
    switch (this.state) {
      case 'length':
        if (value > this.init.maxMessageBytes) throw new MalformedFrameError(`a message of ${value} bytes (most ${this.init.maxMessageBytes})`)
        this.remaining = value
        if (value === 0) this.emit()
        else this.state = 'tag'
        return
      case 'tag': {
        if (this.remaining <= 0) throw new MalformedFrameError('a field without a value')
        this.field = Math.floor(value / 8)
        const type = value & 7
        if (this.field === 0) throw new MalformedFrameError('field number 0')
        if (type === 0) { this.state = 'varint'; return }
        if (type === 2) { this.state = 'fieldLength'; return }
        if (type === 1 || type === 5) { this.startField(type === 1 ? 8 : 4, false); return }
        throw new MalformedFrameError(`unknown wire type ${type}`)
      }
      case 'varint':
        if (this.field === 2) this.frame.presence = value
        this.afterField()
        return
      case 'fieldLength':
        this.startField(value, true)
    }
  }

  private startField (length: number, keep: boolean): void {
    if (length > this.remaining) throw new MalformedFrameError('field runs past the message')
    this.fieldLeft = length
    this.targetAt = 0
    const wanted = keep && (this.field === 1 || this.field === 3 || this.field === 4)
    if (wanted && this.field === 3 && this.frame.data !== NONE) throw new MalformedFrameError('two data fields')
    this.target = !wanted ? undefined : this.field === 3 ? this.init.allocate(length) : new Uint8Array(length)
    this.state = wanted ? 'bytes' : 'skip'
    if (length === 0) this.endField()
  }

  private endField (): void {
    if (this.state === 'bytes') {
      const bytes = this.target!
      if (this.field === 1) this.frame.cid = bytes
      else if (this.field === 3) this.frame.data = bytes
      else this.frame.bits = bytes
    }
    this.target = undefined
    this.afterField()
  }

  private afterField (): void {
    if (this.remaining < 0) throw new MalformedFrameError('field runs past the message')
    if (this.remaining === 0) this.emit()
    else this.state = 'tag'
  }

  private emit (): void {
    const frame = this.frame
    this.frame = { cid: NONE, presence: 0, data: NONE, bits: NONE }
    this.state = 'length'
    this.init.onFrame(frame)
  }
}
