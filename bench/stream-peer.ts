/**
 * One end of the raw-stream ceiling in bench/fetch.ts: two libp2p nodes in
 * two processes, one connection, bytes from memory. The transports,
 * encrypter and muxer are the ones src/routing/libp2p.ts gives a Shoal peer
 * (tcp(), noise(), shoalYamux(): yamux with window updates per half window); nothing else runs on either
 * node, so this is what any protocol over one Shoal connection can at best
 * move.
 *
 *   node bench/stream-peer.ts receive      prints {"multiaddr"}, then one
 *                                          {"bytes","seconds","cpuSeconds"}
 *                                          per stream it is sent
 *   node bench/stream-peer.ts send MA      dials MA once; for each line
 *                                          "MIB" on stdin sends MIB MiB on a
 *                                          new stream and prints {"sent"}
 *
 * Both live until their stdin ends, like the daemons of a fetch: the pair
 * can be warmed up and measured again and again between fetches, on warm
 * code and a warm connection (bench/fetch.ts interleaves them).
 *
 * Both run with the daemon's V8 flags (DAEMON_V8_FLAGS) unless
 * SHOAL_BENCH_NODE_DEFAULTS=1 is in their environment.
 *
 * The receiver times from the moment its handler gets the stream to the
 * stream's end, and measures its own CPU (process.cpuUsage) over that span:
 * the fetcher is the receiving side of a fetch.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { createInterface } from 'node:readline'
import { fileURLToPath } from 'node:url'
import { noise } from '@chainsafe/libp2p-noise'
import { tcp } from '@libp2p/tcp'
import { multiaddr } from '@multiformats/multiaddr'
import { createLibp2p, type Libp2p } from 'libp2p'
import { DAEMON_V8_FLAGS, useBulkTransferV8Flags } from '../src/utils/v8-flags.ts'
import { cpuSecondsOf } from './stats.ts'
import { shoalYamux } from '../src/transport/yamux-window.ts'

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
    streamMuxers: [shoalYamux()]
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
    // the sender waits for this close before it starts the next stream
    await stream.close()
    process.stdout.write(JSON.stringify(receipt) + '\n')
  })
  process.stdout.write(JSON.stringify({ multiaddr: n.getMultiaddrs()[0].toString() }) + '\n')
  await untilStdinEnds()
  await n.stop()
}

async function send (to: string): Promise<void> {
  const n = await node([])
  const peer = multiaddr(to)
  // one random MiB sent again and again: Noise encrypts every copy anyway
  const block = randomBytes(MiB)
  for await (const line of createInterface({ input: process.stdin })) {
    const mib = Number(line)
    if (!(mib > 0)) throw new Error(`not a size in MiB: ${line}`)
    const stream = await n.dialProtocol(peer, STREAM_PROTOCOL)
    for (let i = 0; i < mib; i++) {
      if (!stream.send(block)) await stream.onDrain()
    }
    await stream.close()
    // the receiver closes its end once it has read everything
    if (stream.status !== 'closed') await new Promise(resolve => { stream.addEventListener('close', resolve, { once: true }) })
    process.stdout.write(JSON.stringify({ sent: mib }) + '\n')
  }
  await n.stop()
}

async function untilStdinEnds (): Promise<void> {
  process.stdin.resume()
  await new Promise(resolve => { process.stdin.once('close', resolve) })
}

/**
 * A receiver and a sender process of this script, driven from a benchmark:
 * `run` sends one stream over their connection and returns the receiver's
 * receipt. `env`: the children's environment.
 */
export class StreamPair {
  private readonly receiver: ChildProcess
  private readonly sender: ChildProcess
  private readonly fromReceiver: AsyncIterator<string>
  private readonly fromSender: AsyncIterator<string>

  private constructor (receiver: ChildProcess, sender: ChildProcess, fromReceiver: AsyncIterator<string>, fromSender: AsyncIterator<string>) {
    this.receiver = receiver
    this.sender = sender
    this.fromReceiver = fromReceiver
    this.fromSender = fromSender
  }

  static async start (env: Record<string, string | undefined>): Promise<StreamPair> {
    const script = fileURLToPath(import.meta.url)
    const receiver = spawn(process.execPath, [script, 'receive'], { stdio: ['pipe', 'pipe', 'inherit'], env })
    const fromReceiver = createInterface({ input: receiver.stdout! })[Symbol.asyncIterator]()
    const first = await fromReceiver.next()
    if (first.done === true) {
      receiver.kill()
      throw new Error('the stream receiver exited before it listened')
    }
    const { multiaddr: to } = JSON.parse(first.value) as { multiaddr: string }
    const sender = spawn(process.execPath, [script, 'send', to], { stdio: ['pipe', 'pipe', 'inherit'], env })
    return new StreamPair(receiver, sender, fromReceiver, createInterface({ input: sender.stdout! })[Symbol.asyncIterator]())
  }

  /**
   * One stream of `mib` MiB: the receiver's receipt, and the CPU both
   * processes used from the request to the sender's report (from /proc, as
   * the fetch benchmark measures its daemons).
   */
  async run (mib: number): Promise<StreamReceipt & { pairCpuSeconds: number }> {
    const cpu = (): number => cpuSecondsOf(this.sender.pid!) + cpuSecondsOf(this.receiver.pid!)
    const cpuBefore = cpu()
    this.sender.stdin!.write(`${mib}\n`)
    const received = await this.fromReceiver.next()
    const sent = await this.fromSender.next()
    if (received.done === true || sent.done === true) throw new Error(`the stream ${received.done === true ? 'receiver' : 'sender'} exited`)
    const pairCpuSeconds = cpu() - cpuBefore
    const receipt = JSON.parse(received.value) as StreamReceipt
    if (receipt.bytes !== mib * MiB) throw new Error(`the receiver got ${receipt.bytes} of ${mib * MiB} bytes`)
    return { ...receipt, pairCpuSeconds }
  }

  /** Ends both processes: they exit when their stdin ends, or are killed after 10 s. */
  async stop (): Promise<void> {
    await Promise.all([this.sender, this.receiver].map(async child => {
      if (child.exitCode != null || child.signalCode != null) return
      const exited = new Promise(resolve => { child.once('exit', resolve) })
      child.stdin!.end()
      const timer = setTimeout(() => { child.kill('SIGKILL') }, 10_000)
      await exited
      clearTimeout(timer)
    }))
  }
}

if (import.meta.main === true) {
  if (process.env.SHOAL_BENCH_NODE_DEFAULTS !== '1') useBulkTransferV8Flags(DAEMON_V8_FLAGS)
  const [role, to] = process.argv.slice(2)
  if (role === 'receive') await receive()
  else if (role === 'send' && to != null) await send(to)
  else throw new Error('usage: stream-peer.ts receive | send MULTIADDR')
}
