/**
 * The xfer Response on the hot path, encoded and decoded by hand in the
 * protobuf wire format of xfer.proto (so any protobuf implementation reads
 * it): a block is never copied into an encoder's buffer on the holder, nor
 * joined from its network chunks on the fetcher, which hands the chunks
 * straight on. Requests, small and rare, go through the protobufjs codec.
 */
import type { XferResponse } from './xfer-messages.ts'

/** A list of byte chunks read off a stream (libp2p's Uint8ArrayList, structurally). */
export interface ByteList extends Iterable<Uint8Array> {
  readonly byteLength: number
  get: (index: number) => number
  subarray: (start?: number, end?: number) => Uint8Array
  sublist: (start?: number, end?: number) => ByteList
}

/** A Response whose `data` is still the list of chunks it arrived in. */
export interface ResponseFrame {
  cid: Uint8Array
  presence: number
  data: ByteList
  bits: Uint8Array
}

export class MalformedFrameError extends Error {
  static name = 'MalformedFrameError'
  constructor (message: string) {
    super(message)
    this.name = 'MalformedFrameError'
  }
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

/** Decodes one Response (without its length prefix). */
export function decodeResponse (message: ByteList): ResponseFrame {
  const frame: ResponseFrame = { cid: new Uint8Array(0), presence: 0, data: message.sublist(0, 0), bits: new Uint8Array(0) }
  const end = message.byteLength
  let pos = 0
  const varint = (): number => {
    let value = 0
    let scale = 1
    for (let i = 0; i < 8; i++) {
      if (pos >= end) throw new MalformedFrameError('truncated varint')
      const b = message.get(pos++)
      value += (b & 0x7f) * scale
      if (b < 0x80) return value
      scale *= 128
    }
    throw new MalformedFrameError('varint too long')
  }
  while (pos < end) {
    const tag = varint()
    const field = Math.floor(tag / 8)
    switch (tag & 7) {
      case 0: {
        const v = varint()
        if (field === 2) frame.presence = v
        break
      }
      case 2: {
        const len = varint()
        if (pos + len > end) throw new MalformedFrameError('field runs past the message')
        if (field === 1) frame.cid = message.subarray(pos, pos + len)
        else if (field === 3) frame.data = message.sublist(pos, pos + len)
        else if (field === 4) frame.bits = message.subarray(pos, pos + len)
        pos += len
        break
      }
      case 1: pos += 8; break
      case 5: pos += 4; break
      default: throw new MalformedFrameError(`unknown wire type ${tag & 7}`)
    }
    if (pos > end) throw new MalformedFrameError('field runs past the message')
  }
  return frame
}

function pushVarint (out: number[], value: number): void {
  while (value >= 0x80) {
    out.push((value % 128) | 0x80)
    value = Math.floor(value / 128)
  }
  out.push(value)
}
