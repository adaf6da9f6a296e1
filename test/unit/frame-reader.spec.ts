/**
 * FrameReader: length-prefixed messages off a stream whatever the chunking,
 * the length before the body, a clean end between messages, and the sender
 * held up (the stream paused) once more than the high-water mark is unread.
 */
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { streamPair } from '@libp2p/utils'
import { WireProtocolError } from '../../src/wire/errors.ts'
import { FrameReader } from '../../src/wire/frame-reader.ts'
import { lengthPrefixed } from '../../src/wire/length-prefix.ts'

describe('frame reader', () => {
  it('reads messages split and joined any way, then undefined at a clean end', async () => {
    const [a, b] = await streamPair()
    const reader = new FrameReader(b, { highWaterBytes: 1 << 20 })
    const messages = [randomBytes(0), randomBytes(1), randomBytes(300), randomBytes(70_000)]
    const wire = Buffer.concat(messages.map(m => lengthPrefixed(m)))
    for (let at = 0; at < wire.length;) {
      const n = Math.min(wire.length - at, 1 + Math.floor(Math.random() * 5000))
      a.send(wire.subarray(at, at + n))
      at += n
    }
    await a.close()
    for (const m of messages) {
      const length = await reader.readLength()
      assert.equal(length, m.length)
      assert.ok(Buffer.from(await reader.readBody(length)).equals(m))
    }
    assert.equal(await reader.readLength(), undefined)
  })

  it('fails on an end inside a message', async () => {
    const [a, b] = await streamPair()
    const reader = new FrameReader(b, { highWaterBytes: 1 << 20 })
    a.send(lengthPrefixed(randomBytes(100)).subarray(0, 50))
    await a.close()
    const length = await reader.readLength()
    await assert.rejects(reader.readBody(length!), WireProtocolError)
  })

  it('pauses the stream while more than the high-water mark sits unread, and resumes when read', async () => {
    const [a, b] = await streamPair()
    const reader = new FrameReader(b, { highWaterBytes: 1000 })
    for (let i = 0; i < 10; i++) a.send(lengthPrefixed(randomBytes(500)))
    await new Promise(resolve => setTimeout(resolve, 50))
    assert.equal(b.readStatus, 'paused')
    for (let i = 0; i < 10; i++) {
      const length = await reader.readLength()
      assert.equal((await reader.readBody(length!)).length, 500)
    }
    // a read that needs more than is buffered resumes it
    const next = reader.readLength()
    assert.equal(b.readStatus, 'readable')
    a.send(lengthPrefixed(randomBytes(7)))
    assert.equal(await next, 7)
  })

  it('gives up a read when its signal aborts', async () => {
    const [, b] = await streamPair()
    const reader = new FrameReader(b, { highWaterBytes: 1000 })
    await assert.rejects(reader.readLength(AbortSignal.timeout(20)))
  })
})
