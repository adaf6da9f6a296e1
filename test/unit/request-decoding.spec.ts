/**
 * Requests are checked before they are decoded: sizes and counts of lists
 * against the protocol's limits, exactly one of put / has; fields from a
 * later version are skipped.
 */
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { WireProtocolError } from '../../src/wire/errors.ts'
import { MAX_CIDS_PER_QUERY } from '../../src/wire/limits.ts'
import { scanFields } from '../../src/wire/proto-scan.ts'
import { decodeStoreRequest, encodePut, StoreRequestCodec } from '../../src/wire/store-messages.ts'
import { decodeXferRequest, MAX_CANCEL_CIDS, MAX_HAVE_CIDS, MAX_PENDING_WANTS, XferRequestCodec } from '../../src/wire/xfer-messages.ts'

const cids = (n: number): Uint8Array[] => Array.from({ length: n }, () => randomBytes(36))

describe('request decoding', () => {
  it('decodes a store put and a store has within the limits', () => {
    const put = { cid: randomBytes(36), data: randomBytes(1000), replicas: 3 }
    const decoded = decodeStoreRequest(StoreRequestCodec.encode({ put }))
    assert.ok(Buffer.from(decoded.put!.data).equals(put.data))
    assert.equal(decodeStoreRequest(StoreRequestCodec.encode({ has: { cids: cids(MAX_CIDS_PER_QUERY) } })).has!.cids.length, MAX_CIDS_PER_QUERY)
  })

  it('a put encoded around its block (header, then the block not copied) is the protobuf encoding any decoder reads', () => {
    for (const size of [0, 1, 127, 128, 300_000, 4 * 1024 * 1024]) {
      const put = { cid: randomBytes(36), data: randomBytes(size), replicas: 5 }
      const [header, block] = encodePut(put.cid, put.data, put.replicas)
      assert.equal(block, put.data, 'the block itself, not a copy')
      const message = Buffer.concat([header, block])
      // its length prefix, then exactly the message
      let length = 0
      let at = 0
      for (let scale = 1; ; scale *= 128) {
        const byte = message[at++]
        length += (byte & 0x7f) * scale
        if (byte < 0x80) break
      }
      assert.equal(length, message.length - at)
      const decoded = StoreRequestCodec.decode(message.subarray(at))
      assert.deepEqual([Buffer.from(decoded.put!.cid), Buffer.from(decoded.put!.data), decoded.put!.replicas], [put.cid, put.data, 5])
    }
  })

  it('refuses a store request with both, neither, or twice one of put / has, and a has over its limit', () => {
    const put = StoreRequestCodec.encode({ put: { cid: randomBytes(36), data: randomBytes(10), replicas: 3 } })
    const has = StoreRequestCodec.encode({ has: { cids: cids(2) } })
    assert.throws(() => decodeStoreRequest(Buffer.concat([put, has])), WireProtocolError)
    assert.throws(() => decodeStoreRequest(Buffer.concat([put, put])), WireProtocolError)
    assert.throws(() => decodeStoreRequest(new Uint8Array(0)), WireProtocolError)
    assert.throws(() => decodeStoreRequest(StoreRequestCodec.encode({ has: { cids: cids(MAX_CIDS_PER_QUERY + 1) } })), /more than 1024/)
  })

  it('skips fields it does not know', () => {
    const put = StoreRequestCodec.encode({ put: { cid: randomBytes(36), data: randomBytes(10), replicas: 3 } })
    // field 9, varint 1
    assert.ok(decodeStoreRequest(Buffer.concat([Uint8Array.of(0x48, 0x01), put])).put != null)
  })

  it('decodes an xfer request within the limits and refuses one a list over its count', () => {
    const ok = decodeXferRequest(XferRequestCodec.encode({ want: cids(MAX_PENDING_WANTS), have: cids(10), cancel: cids(MAX_CANCEL_CIDS) }))
    assert.equal(ok.want.length, MAX_PENDING_WANTS)
    assert.throws(() => decodeXferRequest(XferRequestCodec.encode({ want: cids(MAX_PENDING_WANTS + 1), have: [], cancel: [] })), /wants/)
    assert.throws(() => decodeXferRequest(XferRequestCodec.encode({ want: [], have: [], cancel: cids(MAX_CANCEL_CIDS + 1) })), /cancels/)
    assert.equal(decodeXferRequest(XferRequestCodec.encode({ want: [], have: cids(MAX_HAVE_CIDS), cancel: [] })).have.length, MAX_HAVE_CIDS)
  })

  it('refuses malformed protobuf before decoding it', () => {
    assert.throws(() => { scanFields(Uint8Array.of(0x0a, 0x05, 0x01), () => {}) }, /runs past/)
    assert.throws(() => { scanFields(Uint8Array.of(0x00), () => {}) }, /numbered 0/)
    assert.throws(() => { scanFields(Uint8Array.of(0x0b), () => {}) }, /wire type 3/)
    assert.throws(() => { scanFields(Uint8Array.of(0x08, 0xff), () => {}) }, /varint/)
  })
})
