/**
 * KeptStreams (src/wire/kept-streams.ts), the pool of streams Chord's rpc
 * and Kademlia's find client keep between requests, on real streams: two
 * libp2p nodes in this process over TCP on 127.0.0.1, the second echoing
 * every message back on an echo protocol.
 */
import assert from 'node:assert/strict'
import { noise } from '@chainsafe/libp2p-noise'
import { yamux } from '@chainsafe/libp2p-yamux'
import type { Libp2p, Stream } from '@libp2p/interface'
import { tcp } from '@libp2p/tcp'
import { echo, pbStream } from '@libp2p/utils'
import { createLibp2p } from 'libp2p'
import { LOCAL_SWARM_ALLOW } from '../../src/constants.ts'
import { waitFor } from '../../src/utils/wait.ts'
import { KeptStreams, type KeptStream } from '../../src/wire/kept-streams.ts'

const ECHO = '/shoal-test/echo/1.0.0'

/** One number per message: all the tests need to tell answers apart. */
const NumberCodec = {
  encode: (n: number): Uint8Array => new TextEncoder().encode(String(n)),
  decode: (bytes: Uint8Array | { subarray: () => Uint8Array }): number => Number(new TextDecoder().decode(bytes instanceof Uint8Array ? bytes : bytes.subarray()))
}

async function createNode (): Promise<Libp2p> {
  return createLibp2p({
    addresses: { listen: ['/ip4/127.0.0.1/tcp/0'] },
    transports: [tcp()],
    connectionEncrypters: [noise()],
    streamMuxers: [yamux()],
    connectionManager: { allow: [LOCAL_SWARM_ALLOW] }
  })
}

describe('kept streams', function () {
  this.timeout(30_000)
  let asker: Libp2p
  let answerer: Libp2p
  /** Streams the answerer was opened, in order. */
  const served: Stream[] = []
  let lifetime: AbortController
  let pool: KeptStreams
  let opened: Stream[]

  before(async () => {
    [asker, answerer] = await Promise.all([createNode(), createNode()])
    await answerer.handle(ECHO, stream => {
      served.push(stream)
      void echo(stream).catch(() => {})
    })
  })
  after(async () => {
    await asker?.stop()
    await answerer?.stop()
  })
  beforeEach(() => {
    lifetime = new AbortController()
    pool = new KeptStreams({ owner: 'the test', lifetime: () => lifetime.signal, maxPerPeer: 2 })
    opened = []
  })
  afterEach(() => {
    pool.closeAll()
    for (const stream of opened) stream.abort(new Error('test over'))
  })

  const peer = (): string => answerer.peerId.toString()

  async function open (): Promise<KeptStream> {
    const stream = await asker.dialProtocol(answerer.getMultiaddrs()[0], ECHO, { signal: AbortSignal.timeout(10_000) })
    opened.push(stream)
    return { stream, pb: pbStream(stream) }
  }

  async function ask (kept: KeptStream, n: number): Promise<number> {
    const signal = AbortSignal.timeout(10_000)
    await kept.pb.write(n, NumberCodec, { signal })
    return kept.pb.read(NumberCodec, { signal })
  }

  const signal = (): AbortSignal => AbortSignal.timeout(10_000)

  it('hands a stream given back to the next request to the same peer, and to no other peer', async () => {
    assert.equal(await pool.use(peer(), open, async kept => ask(kept, 1), { signal: signal() }), 1)
    assert.equal(pool.count(peer()), 1)
    assert.equal(await pool.use(peer(), open, async kept => ask(kept, 2), { signal: signal() }), 2)
    assert.equal(opened.length, 1, 'the second request went on the first stream')
    assert.equal(pool.take('another peer'), undefined)
    const kept = pool.take(peer())
    assert.equal(kept?.stream, opened[0])
    assert.equal(pool.count(), 0)
  })

  it('keeps at most maxPerPeer unused streams per peer and closes one more given back', async () => {
    const streams = [await open(), await open(), await open()]
    for (const kept of streams) pool.giveBack(peer(), kept)
    assert.equal(pool.count(peer()), 2)
    await waitFor(() => streams[2].stream.status === 'closed', { timeoutMs: 10_000, intervalMs: 20, message: () => `the third stream is ${streams[2].stream.status}` })
    assert.equal(streams[0].stream.status, 'open')
    assert.equal(streams[1].stream.status, 'open')
  })

  it('does not hand out a stream the other side reset, and drops it', async () => {
    const before = served.length
    pool.giveBack(peer(), await open())
    await waitFor(() => served.length > before, { timeoutMs: 10_000, intervalMs: 20, message: () => 'the answerer saw no stream' })
    served.at(-1)!.abort(new Error('reset by the answerer'))
    await waitFor(() => opened[0].status !== 'open', { timeoutMs: 10_000, intervalMs: 20, message: () => `the asker's end is ${opened[0].status}` })
    assert.equal(pool.take(peer()), undefined)
    assert.equal(pool.count(), 0)
  })

  it('does not hand out a stream whose other side closed its end, and aborts it', async () => {
    const before = served.length
    pool.giveBack(peer(), await open())
    await waitFor(() => served.length > before, { timeoutMs: 10_000, intervalMs: 20, message: () => 'the answerer saw no stream' })
    await served.at(-1)!.close()
    await waitFor(() => opened[0].remoteWriteStatus === 'closed', { timeoutMs: 10_000, intervalMs: 20, message: () => `the answerer's end is ${opened[0].remoteWriteStatus}` })
    assert.equal(opened[0].readStatus, 'readable', 'nothing read: the end is not seen on this side yet')
    assert.equal(pool.take(peer()), undefined)
    assert.equal(opened[0].status, 'aborted')
    assert.equal(pool.count(), 0)
  })

  it('replaces a kept stream whose exchange fails once by a fresh one, and aborts the failed one', async () => {
    pool.giveBack(peer(), await open())
    let calls = 0
    const answer = await pool.use(peer(), open, async kept => {
      if (++calls === 1) throw new Error('closed by the other side while it was kept')
      return ask(kept, 7)
    }, { signal: signal() })
    assert.equal(answer, 7)
    assert.equal(calls, 2)
    assert.equal(opened.length, 2)
    assert.equal(opened[0].status, 'aborted')
    assert.equal(pool.take(peer())?.stream, opened[1])
  })

  it('does not try again after an error the caller calls fatal, nor after its signal aborted', async () => {
    class OutOfProtocolError extends Error { static name = 'OutOfProtocolError'; override name = 'OutOfProtocolError' }
    pool.giveBack(peer(), await open())
    await assert.rejects(pool.use(peer(), open, async () => { throw new OutOfProtocolError() }, { signal: signal(), fatal: err => err instanceof OutOfProtocolError }), { name: 'OutOfProtocolError' })
    assert.equal(opened.length, 1, 'no fresh stream was opened')
    assert.equal(opened[0].status, 'aborted')

    pool.giveBack(peer(), await open())
    const controller = new AbortController()
    await assert.rejects(pool.use(peer(), open, async () => {
      controller.abort()
      throw new Error('gave up')
    }, { signal: controller.signal }), { message: 'gave up' })
    assert.equal(opened.length, 2, 'no fresh stream was opened')
  })

  it('gives no stream to a caller whose signal is already aborted, and keeps it for the next', async () => {
    pool.giveBack(peer(), await open())
    const controller = new AbortController()
    controller.abort()
    assert.throws(() => pool.take(peer(), { signal: controller.signal }), { name: 'AbortError' })
    assert.equal(pool.count(peer()), 1)
    assert.equal(opened[0].status, 'open')
  })

  it('closes a stream left unused for idleMs', async () => {
    pool = new KeptStreams({ owner: 'the test', lifetime: () => lifetime.signal, idleMs: 50 })
    pool.giveBack(peer(), await open())
    await waitFor(() => pool.count() === 0 && opened[0].status === 'closed', { timeoutMs: 10_000, intervalMs: 20, message: () => `${pool.count()} kept, the stream ${opened[0].status}` })
  })

  it('aborts every kept stream at closeAll, and one given back after the owner stopped', async () => {
    pool.giveBack(peer(), await open())
    pool.giveBack('another peer', await open())
    pool.closeAll()
    assert.equal(pool.count(), 0)
    assert.deepEqual(opened.map(s => s.status), ['aborted', 'aborted'])
    lifetime.abort()
    pool.giveBack(peer(), await open())
    assert.equal(pool.count(), 0)
    assert.equal(opened[2].status, 'aborted')
  })
})
