/**
 * The lab's delay stage (src/transport/link-delay.ts) on real libp2p nodes
 * over TCP on 127.0.0.1: node A reads its link file and holds every byte it
 * receives for the latency there; node B is plain TCP.
 */
import assert from 'node:assert/strict'
import { createHash, randomBytes } from 'node:crypto'
import fs from 'node:fs/promises'
import path from 'node:path'
import { noise } from '@chainsafe/libp2p-noise'
import { yamux } from '@chainsafe/libp2p-yamux'
import { ping, type Ping } from '@libp2p/ping'
import { tcp } from '@libp2p/tcp'
import { createLibp2p, type Libp2p } from 'libp2p'
import { LAB_LINK_ENV, labTransport, linkDelay } from '../../src/transport/link-delay.ts'
import { waitFor } from '../../src/utils/wait.ts'
import { tempDir } from '../helpers/cli.ts'

const SINK = '/shoal-test/sink/1.0.0'
const LATENCY_MS = 150

async function node (transport: ReturnType<typeof tcp>): Promise<Libp2p<{ ping: Ping }>> {
  return createLibp2p({
    addresses: { listen: ['/ip4/127.0.0.1/tcp/0'] },
    transports: [transport],
    connectionEncrypters: [noise()],
    streamMuxers: [yamux()],
    connectionMonitor: { enabled: false },
    services: { ping: ping() }
  })
}

describe('the lab\'s delay stage on real libp2p connections', function () {
  this.timeout(60_000)
  let dir: string
  let file: string
  let a: Libp2p<{ ping: Ping }>
  let b: Libp2p<{ ping: Ping }>
  const setLatency = async (ms: number): Promise<void> => {
    await fs.writeFile(`${file}.tmp`, JSON.stringify({ latencyMs: ms }))
    await fs.rename(`${file}.tmp`, file)
  }

  before(async () => {
    dir = await tempDir('shoal-link-delay-')
    file = path.join(dir, 'host-0.link.json')
    await setLatency(LATENCY_MS)
    a = await node(linkDelay(tcp(), { file, pollIntervalMs: 50 }))
    b = await node(tcp())
    await b.dial(a.getMultiaddrs())
  })
  after(async () => {
    await b?.stop()
    await a?.stop()
    await fs.rm(dir, { recursive: true, force: true })
  })

  it('is off unless the process was started as a lab peer', () => {
    const plain = tcp()
    assert.equal(labTransport(plain, {}), plain)
    assert.notEqual(labTransport(plain, { [LAB_LINK_ENV]: file }), plain)
  })

  it('holds every byte the peer receives for the link\'s latency, and a new latency applies at once', async () => {
    const rtt = await b.services.ping.ping(a.peerId)
    assert.ok(rtt >= LATENCY_MS, `a ping to the delayed peer took ${rtt} ms, less than its ${LATENCY_MS} ms latency`)
    // the other way, A's ping waits for B's answer, which A receives late too
    assert.ok(await a.services.ping.ping(b.peerId) >= LATENCY_MS)

    await setLatency(0)
    let fast = Infinity
    await waitFor(async () => (fast = await b.services.ping.ping(a.peerId)) < LATENCY_MS / 2, {
      timeoutMs: 5000, intervalMs: 100, message: () => `after the latency went to 0 a ping still took ${fast} ms`
    })
    await setLatency(LATENCY_MS)
    await waitFor(async () => await b.services.ping.ping(a.peerId) >= LATENCY_MS, { timeoutMs: 5000, intervalMs: 100, message: () => 'the latency did not come back' })
  })

  it('hands on every byte in order, and the sender\'s close only after the bytes it followed', async () => {
    await a.handle(SINK, async (stream) => {
      const hash = createHash('sha256')
      let bytes = 0
      for await (const chunk of stream) {
        const data = chunk.subarray()
        hash.update(data)
        bytes += data.byteLength
      }
      stream.send(new TextEncoder().encode(`${bytes} ${hash.digest('hex')}`))
      await stream.close()
    })
    const data = randomBytes(4 * 1024 * 1024 + 3)
    const stream = await b.dialProtocol(a.getMultiaddrs(), SINK)
    for (let at = 0; at < data.length; at += 65_536) {
      if (!stream.send(data.subarray(at, at + 65_536))) await stream.onDrain()
    }
    await stream.close()
    let answer = ''
    for await (const chunk of stream) answer += new TextDecoder().decode(chunk.subarray())
    assert.equal(answer, `${data.length} ${createHash('sha256').update(data).digest('hex')}`)
  })

  it('a connection the sender closes right after its last bytes still delivers them all first', async () => {
    const received = Promise.withResolvers<string>()
    await a.handle(`${SINK}/closing`, async (stream) => {
      const hash = createHash('sha256')
      let bytes = 0
      try {
        for await (const chunk of stream) {
          hash.update(chunk.subarray())
          bytes += chunk.byteLength
        }
      } finally {
        received.resolve(`${bytes} ${hash.digest('hex')}`)
      }
    })
    const data = randomBytes(1024 * 1024)
    const stream = await b.dialProtocol(a.getMultiaddrs(), `${SINK}/closing`)
    if (!stream.send(data)) await stream.onDrain()
    await stream.close()
    // the whole connection goes while the bytes are still on their way to A
    await b.hangUp(a.peerId)
    assert.equal(await received.promise, `${data.length} ${createHash('sha256').update(data).digest('hex')}`)
    await b.dial(a.getMultiaddrs())
  })
})
