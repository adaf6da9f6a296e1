/**
 * One end of the raw-stream ceiling in bench/fetch.ts: two libp2p nodes in
 * two processes, one stream, bytes from memory. The transports, encrypter
 * and muxer are the ones src/peer/libp2p.ts gives a Shoal peer (tcp(),
 * noise(), yamux(), their defaults); nothing else runs on either node, so
 * this is what any protocol over one Shoal connection can at best move.
 *
 *   node bench/stream-peer.ts receive        prints {"multiaddr"}, then, after
 *                                            one stream, {"bytes","seconds","cpuSeconds"}, and exits
 *   node bench/stream-peer.ts send MA MIB    sends MIB MiB to MA on one stream
 *
 * Both run with the daemons' V8 flags (src/utils/v8-flags.ts) unless
 * SHOAL_BENCH_NODE_DEFAULTS=1 is in their environment.
 *
 * The receiver times from the moment its handler gets the stream to the
 * stream's end, and measures its own CPU (process.cpuUsage) over that span:
 * the fetcher is the receiving side of a fetch.
 */
import { randomBytes } from 'node:crypto'
import { noise } from '@chainsafe/libp2p-noise'
import { yamux } from '@chainsafe/libp2p-yamux'
import { tcp } from '@libp2p/tcp'
import { multiaddr } from '@multiformats/multiaddr'
import { createLibp2p, type Libp2p } from 'libp2p'
import { useBulkTransferV8Flags } from '../src/utils/v8-flags.ts'

export const STREAM_PROTOCOL = '/shoal-bench/stream/1.0.0'
const MiB = 1024 * 1024

export interface StreamReceipt {
  bytes: number
  seconds: number
  cpuSeconds: number
}

async function node (listen: string[]): Promise<Libp2p> {
  return createLibp2p({
    addresses: { listen },
    transports: [tcp()],
    connectionEncrypters: [noise()],
    streamMuxers: [yamux()]
  })
}

async function receive (): Promise<void> {
  const n = await node(['/ip4/127.0.0.1/tcp/0'])
  await n.handle(STREAM_PROTOCOL, async stream => {
    const started = performance.now()
    const cpu = process.cpuUsage()
    let bytes = 0
    for await (const piece of stream) bytes += piece.byteLength
    const used = process.cpuUsage(cpu)
    const receipt: StreamReceipt = { bytes, seconds: (performance.now() - started) / 1000, cpuSeconds: (used.user + used.system) / 1e6 }
    // the sender waits for this close before it hangs up, so nothing is cut off
    const hungUp = new Promise(resolve => { n.addEventListener('peer:disconnect', resolve, { once: true }) })
    await stream.close()
    process.stdout.write(JSON.stringify(receipt) + '\n')
    await Promise.race([hungUp, new Promise(resolve => setTimeout(resolve, 5000))])
    await n.stop()
  })
  process.stdout.write(JSON.stringify({ multiaddr: n.getMultiaddrs()[0].toString() }) + '\n')
}

async function send (to: string, mib: number): Promise<void> {
  const n = await node([])
  const stream = await n.dialProtocol(multiaddr(to), STREAM_PROTOCOL)
  // one random MiB sent again and again: Noise encrypts every copy anyway
  const block = randomBytes(MiB)
  for (let i = 0; i < mib; i++) {
    if (!stream.send(block)) await stream.onDrain()
  }
  await stream.close()
  // the receiver closes its end once it has read everything
  if (stream.status !== 'closed') await new Promise(resolve => { stream.addEventListener('close', resolve, { once: true }) })
  await n.stop()
}

if (import.meta.main === true) {
  if (process.env.SHOAL_BENCH_NODE_DEFAULTS !== '1') useBulkTransferV8Flags()
  const [role, to, mib] = process.argv.slice(2)
  if (role === 'receive') await receive()
  else if (role === 'send' && to != null && Number(mib) > 0) await send(to, Number(mib))
  else throw new Error('usage: stream-peer.ts receive | send MULTIADDR MIB')
}
