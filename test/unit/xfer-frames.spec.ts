/**
 * The hand-coded xfer Response framing must be exactly the protobuf wire
 * format of xfer.proto: what it encodes protobufjs decodes, and the other
 * way round, whatever the chunking on the way.
 */
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { decodeResponse, encodeResponse, MalformedFrameError, type ByteList } from '../../src/wire/xfer-frames.ts'
import { packBits, Presence, unpackBits, XferResponseCodec, type XferResponse } from '../../src/wire/xfer-messages.ts'

const none = new Uint8Array(0)

/** A chunk list like libp2p's Uint8ArrayList (which the stream hands over), minimal. */
class ChunkList implements ByteList {
  readonly chunks: Uint8Array[]
  constructor (chunks: Uint8Array[]) { this.chunks = chunks }
  get byteLength (): number { return this.chunks.reduce((n, c) => n + c.length, 0) }
  private flat (): Buffer { return Buffer.concat(this.chunks) }
  get (i: number): number { const b = this.flat()[i]; if (b == null) throw new RangeError('out of range'); return b }
  subarray (start?: number, end?: number): Uint8Array { return this.flat().subarray(start, end) }
  sublist (start?: number, end?: number): ChunkList { return new ChunkList([this.subarray(start, end)]) }
  [Symbol.iterator] (): Iterator<Uint8Array> { return this.chunks[Symbol.iterator]() }
}

/** Splits bytes into chunks of random sizes, as a network would. */
function chunked (bytes: Uint8Array): ChunkList {
  const chunks: Uint8Array[] = []
  for (let at = 0; at < bytes.length;) {
    const n = Math.min(bytes.length - at, 1 + Math.floor(Math.random() * 70_000))
    chunks.push(bytes.subarray(at, at + n))
    at += n
  }
  return new ChunkList(chunks)
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

      const decoded = decodeResponse(chunked(XferResponseCodec.encode(response)))
      assert.deepEqual(Buffer.from(decoded.cid), Buffer.from(response.cid))
      assert.equal(decoded.presence, response.presence)
      assert.ok(Buffer.from(decoded.data.subarray()).equals(Buffer.from(response.data)))
      assert.ok(Buffer.from(decoded.bits).equals(Buffer.from(response.bits)))
    }
  })

  it('refuses a field that runs past the message and a truncated varint', () => {
    const good = XferResponseCodec.encode(cases[1])
    assert.throws(() => decodeResponse(new ChunkList([good.subarray(0, good.length - 1)])), MalformedFrameError)
    assert.throws(() => decodeResponse(new ChunkList([Uint8Array.from([0x08, 0x80])])), MalformedFrameError)
  })

  it('packs have bits low bit first and reads missing bytes as not held', () => {
    const flags = Array.from({ length: 19 }, (_, i) => i % 3 === 0)
    assert.deepEqual(unpackBits(packBits(flags), 19), flags)
    assert.deepEqual(packBits([true, false, false, false, false, false, false, false, false, true]), Uint8Array.from([1, 2]))
    assert.deepEqual(unpackBits(new Uint8Array(0), 3), [false, false, false])
  })
})
