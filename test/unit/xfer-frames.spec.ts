/**
 * The hand-coded xfer Response framing must be exactly the protobuf wire
 * format of xfer.proto: what it encodes protobufjs decodes, and the other
 * way round, whatever the chunking on the way.
 */
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { encodeResponse, lengthPrefixed, MalformedFrameError, ResponseDecoder, type ResponseFrame } from '../../src/wire/xfer-frames.ts'
import { packBits, Presence, unpackBits, XferResponseCodec, type XferResponse } from '../../src/wire/xfer-messages.ts'

const none = new Uint8Array(0)

/** Splits bytes into chunks of random sizes (1 byte and up), as a network would. */
function chunked (bytes: Uint8Array): Uint8Array[] {
  const chunks: Uint8Array[] = []
  for (let at = 0; at < bytes.length;) {
    const n = Math.min(bytes.length - at, Math.random() < 0.2 ? 1 : 1 + Math.floor(Math.random() * 70_000))
    chunks.push(bytes.subarray(at, at + n))
    at += n
  }
  return chunks
}

/** Decodes a byte stream, chunk by chunk, into frames. */
function decodeAll (chunks: Uint8Array[]): ResponseFrame[] {
  const frames: ResponseFrame[] = []
  const decoder = new ResponseDecoder({ maxMessageBytes: 5 * 1024 * 1024, allocate: n => new Uint8Array(n), onFrame: f => frames.push(f) })
  for (const c of chunks) decoder.push(c)
  return frames
}

describe('xfer Response framing', () => {
  const cases: XferResponse[] = [
    { cid: randomBytes(36), presence: Presence.BLOCK, data: randomBytes(1024 * 1024), bits: none },
    { cid: randomBytes(36), presence: Presence.BLOCK, data: randomBytes(1), bits: none },
    { cid: randomBytes(36), presence: Presence.DONT_HAVE, data: none, bits: none },
    { cid: none, presence: Presence.HAVE_SET, data: none, bits: packBits([true, false, true, true, false, false, false, false, true]) }
  ]

  it('encodes what protobufjs decodes, and decodes what protobufjs encodes, across any chunking', () => {
    for (const response of cases) {
      const parts = encodeResponse(response)
      const whole = Buffer.concat(parts)
      // strip the varint length prefix
      let at = 0
      let length = 0
      let scale = 1
      while (true) { const b = whole[at++]; length += (b & 0x7f) * scale; scale *= 128; if (b < 0x80) break }
      assert.equal(whole.length - at, length, 'the prefix is the message length')
      const body = whole.subarray(at)
      const viaProtobufjs = XferResponseCodec.decode(body)
      assert.deepEqual(Buffer.from(viaProtobufjs.cid), Buffer.from(response.cid))
      assert.equal(viaProtobufjs.presence, response.presence)
      assert.ok(Buffer.from(viaProtobufjs.data).equals(Buffer.from(response.data)))
      assert.ok(Buffer.from(viaProtobufjs.bits).equals(Buffer.from(response.bits)))

    }
    // many messages back to back, split anywhere
    const stream = Buffer.concat(cases.map(r => lengthPrefixed(XferResponseCodec.encode(r))))
    for (let round = 0; round < 20; round++) {
      const frames = decodeAll(chunked(stream))
      assert.equal(frames.length, cases.length)
      frames.forEach((decoded, i) => {
        const response = cases[i]
        assert.deepEqual(Buffer.from(decoded.cid), Buffer.from(response.cid))
        assert.equal(decoded.presence, response.presence)
        assert.ok(Buffer.from(decoded.data).equals(Buffer.from(response.data)))
        assert.ok(Buffer.from(decoded.bits).equals(Buffer.from(response.bits)))
      })
    }
  })

  it('refuses a field that runs past the message, an oversized message, and a field without a value', () => {
    const good = XferResponseCodec.encode(cases[1])
    // the prefix says one byte less than the fields need
    const short = Buffer.concat([lengthPrefixed(good.subarray(0, good.length - 1)).subarray(0, 2), good])
    assert.throws(() => decodeAll([short]), MalformedFrameError)
    assert.throws(() => decodeAll([Uint8Array.from([0xff, 0xff, 0xff, 0x7f])]), /a message of/)
    assert.throws(() => decodeAll([Uint8Array.from([0x01, 0x10])]), /without a value/)
  })

  it('packs have bits low bit first and reads missing bytes as not held', () => {
    const flags = Array.from({ length: 19 }, (_, i) => i % 3 === 0)
    assert.deepEqual(unpackBits(packBits(flags), 19), flags)
    assert.deepEqual(packBits([true, false, false, false, false, false, false, false, false, true]), Uint8Array.from([1, 2]))
    assert.deepEqual(unpackBits(new Uint8Array(0), 3), [false, false, false])
  })
})
