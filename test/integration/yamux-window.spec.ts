/**
 * yamux with window updates per half window (src/transport/yamux-window.ts),
 * between two libp2p nodes over TCP: the bytes arrive exact, a reader that
 * stalls does not stall the stream for good, and the receiver sends a
 * window update only once half its window is used.
 */
import assert from 'node:assert/strict'
import { randomBytes, createHash } from 'node:crypto'
import { noise } from '@chainsafe/libp2p-noise'
import { tcp } from '@libp2p/tcp'
import type { Stream } from '@libp2p/interface'
import { createLibp2p, type Libp2p } from 'libp2p'
import { StreamState, YamuxStream } from '@chainsafe/libp2p-yamux/stream'
import { halfWindowUpdates, shoalYamux } from '../../src/transport/yamux-window.ts'

const PROTOCOL = '/shoal-test/yamux-window/1.0.0'
/** yamux's frame type of a window update (its spec: 0 data, 1 window update). */
const WINDOW_UPDATE = 1
const KiB = 1024
/** yamux's initial stream window: the smallest window the receiver can have. */
const INITIAL_WINDOW = 256 * KiB

interface FrameSender { sendFrame: (header: { type: number, flag: number }, data?: unknown) => boolean }

async function node (): Promise<Libp2p> {
  return createLibp2p({
    addresses: { listen: ['/ip4/127.0.0.1/tcp/0'] },
    transports: [tcp()],
    connectionEncrypters: [noise()],
    streamMuxers: [shoalYamux()]
  })
}

describe('yamux window updates per half window, over TCP', function () {
  this.timeout(60_000)
  let receiver: Libp2p
  let sender: Libp2p
  before(async () => {
    [receiver, sender] = await Promise.all([node(), node()])
  })
  after(async () => {
    await Promise.all([receiver?.stop(), sender?.stop()])
  })

  /** Sends `total` bytes in writes of `write` bytes; the receiver's digest, and its window updates (not counting flags-only frames). */
  async function transfer (total: number, write: number, read: (stream: Stream) => AsyncIterable<Uint8Array>): Promise<{ sent: string, received: string, updates: number, dataFrames: number }> {
    const result = Promise.withResolvers<{ received: string, updates: number, dataFrames: number }>()
    await receiver.handle(PROTOCOL, async stream => {
      const muxed = stream as unknown as FrameSender & { handleData: (frame: unknown) => void }
      let updates = 0
      let dataFrames = 0
      const sendFrame = muxed.sendFrame
      muxed.sendFrame = (header, data) => {
        if (header.type === WINDOW_UPDATE && header.flag === 0) updates++
        return sendFrame(header, data)
      }
      const handleData = muxed.handleData.bind(muxed)
      muxed.handleData = frame => { dataFrames++; handleData(frame) }
      const hash = createHash('sha256')
      for await (const piece of read(stream)) hash.update(piece instanceof Uint8Array ? piece : (piece as { subarray: () => Uint8Array }).subarray())
      await stream.close()
      result.resolve({ received: hash.digest('hex'), updates, dataFrames })
    }, { force: true })
    const stream = await sender.dialProtocol(receiver.getMultiaddrs()[0], PROTOCOL)
    const bytes = randomBytes(total)
    for (let at = 0; at < total; at += write) {
      if (!stream.send(bytes.subarray(at, Math.min(total, at + write)))) await stream.onDrain()
    }
    await stream.close()
    const got = await result.promise
    return { sent: createHash('sha256').update(bytes).digest('hex'), ...got }
  }

  it('an established stream sends an update only once half its window is used; a stream answering a SYN at once', () => {
    assert.equal(halfWindowUpdates(), true)
    const frames: Array<{ type: number, flag: number, length: number }> = []
    const stream = (state: number, used: number): object => ({
      state,
      recvWindow: INITIAL_WINDOW,
      recvWindowCapacity: INITIAL_WINDOW - used,
      maxStreamWindowSize: 16 * 1024 * KiB,
      epochStart: Date.now(),
      getRTT: () => -1,
      getSendFlags: (YamuxStream.prototype as unknown as { getSendFlags: () => number }).getSendFlags,
      sendFrame: (header: { type: number, flag: number, length: number }) => { frames.push(header); return true }
    })
    const update = (YamuxStream.prototype as unknown as { sendWindowUpdate: (this: object) => void }).sendWindowUpdate
    update.call(stream(StreamState.Established, 16 * KiB))
    update.call(stream(StreamState.Established, INITIAL_WINDOW / 2 - 1))
    assert.deepEqual(frames, [], 'less than half the window used: no update')
    update.call(stream(StreamState.Established, INITIAL_WINDOW / 2))
    assert.deepEqual(frames, [{ type: WINDOW_UPDATE, flag: 0, streamID: undefined, length: INITIAL_WINDOW / 2 }])
    frames.length = 0
    // a stream answering a SYN acknowledges it at once, used window or not
    update.call(stream(StreamState.SYNReceived, 0))
    assert.equal(frames.length, 1)
    assert.notEqual((frames as Array<{ flag: number }>)[0].flag, 0)
  })

  it('moves 32 MiB in 16 KiB writes exactly, with at most one window update per half initial window', async () => {
    const total = 32 * 1024 * KiB
    const r = await transfer(total, 16 * KiB, stream => stream as unknown as AsyncIterable<Uint8Array>)
    assert.equal(r.received, r.sent)
    // each update is sent only once half a window (at least half the initial one) arrived
    assert.ok(r.updates <= total / (INITIAL_WINDOW / 2), `${r.updates} window updates for ${r.dataFrames} data frames`)
  })

  it('a reader that stops for a while still gets every byte once it reads again', async () => {
    const total = 8 * 1024 * KiB
    const r = await transfer(total, 64 * KiB, async function * (stream) {
      let seen = 0
      for await (const piece of stream) {
        yield piece as unknown as Uint8Array
        seen += piece.byteLength
        // stop once, past the first window, long enough for the sender to run out of window
        if (seen >= 2 * INITIAL_WINDOW && seen - piece.byteLength < 2 * INITIAL_WINDOW) await new Promise(resolve => setTimeout(resolve, 300))
      }
    })
    assert.equal(r.received, r.sent)
  })
})
