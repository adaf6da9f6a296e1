/**
 * A scripted attacker for the hostile-peer suite: a real libp2p node (TCP,
 * Noise, Yamux, as Shoal peers run) in the test process that dials a real
 * Shoal peer and speaks its protocols by hand, byte by byte, doing what an
 * honest peer would not. Also: the process's memory, measured the same way
 * before and during an attack.
 */
import { setFlagsFromString } from 'node:v8'
import { runInNewContext } from 'node:vm'
import { noise } from '@chainsafe/libp2p-noise'
import { yamux } from '@chainsafe/libp2p-yamux'
import type { Connection, Libp2p, Stream } from '@libp2p/interface'
import { tcp } from '@libp2p/tcp'
import { multiaddr } from '@multiformats/multiaddr'
import { createLibp2p } from 'libp2p'
import type { ShoalPeer } from '../../src/peer/peer.ts'
import { lengthPrefixed } from '../../src/wire/length-prefix.ts'

export const KiB = 1024
export const MiB = 1024 * KiB

export class Attacker {
  readonly node: Libp2p

  private constructor (node: Libp2p) {
    this.node = node
  }

  static async start (): Promise<Attacker> {
    const node = await createLibp2p({
      addresses: { listen: ['/ip4/127.0.0.1/tcp/0'] },
      transports: [tcp()],
      connectionEncrypters: [noise()],
      streamMuxers: [yamux()]
    })
    return new Attacker(node)
  }

  /** A new connection to `peer` (not the one libp2p would reuse), as an attacker opens to get round per-connection caps. */
  async connect (peer: ShoalPeer): Promise<Connection> {
    return this.node.dial(multiaddr(peer.multiaddrs()[0]), { force: true })
  }

  /** A stream of `protocol` to `peer`, on `connection` if given. */
  async open (peer: ShoalPeer, protocol: string, connection?: Connection): Promise<Stream> {
    const conn = connection ?? await this.connect(peer)
    return conn.newStream(protocol)
  }

  async stop (): Promise<void> {
    await this.node.stop()
  }
}

/** Sends one length-prefixed message; true if the stream took it without waiting. */
export function sendMessage (stream: Stream, body: Uint8Array): boolean {
  return stream.send(lengthPrefixed(body))
}

/** Resolves once the stream's write buffer is empty (what it sent has gone to the muxer). */
export async function drained (stream: Stream, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (stream.writeBufferLength > 0) {
    if (stream.status !== 'open') throw new Error(`stream ${stream.status}`)
    if (Date.now() > deadline) throw new Error('the stream did not drain')
    await new Promise(resolve => setTimeout(resolve, 5))
  }
}

/** Resolves with the error the stream was reset with (its 'close' event), or rejects after `timeoutMs`. */
export async function resetOf (stream: Stream, timeoutMs: number): Promise<Error | undefined> {
  if (stream.status === 'reset' || stream.status === 'aborted') return new Error(stream.status)
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => { reject(new Error(`the stream was not closed within ${timeoutMs} ms`)) }, timeoutMs)
    stream.addEventListener('close', evt => {
      clearTimeout(timer)
      resolve(evt.error)
    }, { once: true })
  })
}

/** True when the stream is (or gets) reset within `ms`. */
export async function isResetWithin (stream: Stream, ms: number): Promise<boolean> {
  try {
    const error = await resetOf(stream, ms)
    return error != null || stream.status === 'reset'
  } catch {
    return false
  }
}

setFlagsFromString('--expose-gc')
const gc = runInNewContext('gc') as () => void

/** Memory the process holds (heap and buffers), after a full garbage collection. */
export function liveBytes (): number {
  gc()
  gc()
  const m = process.memoryUsage()
  return m.heapUsed + m.arrayBuffers
}

/**
 * The most memory (heap and buffers, garbage included) the process held
 * while `during` ran, above what it held before, sampled every few ms.
 */
export async function peakGrowth (during: () => Promise<void>): Promise<number> {
  const before = liveBytes()
  let peak = 0
  const sample = (): void => {
    const m = process.memoryUsage()
    peak = Math.max(peak, m.heapUsed + m.arrayBuffers - before)
  }
  const timer = setInterval(sample, 2)
  try {
    await during()
    sample()
  } finally {
    clearInterval(timer)
  }
  return peak
}

export function formatMiB (bytes: number): string {
  return `${(bytes / MiB).toFixed(1)} MiB`
}

/** Prints a measurement when SHOAL_HOSTILE_VERBOSE is set (to read what a test measured, not to assert it). */
export function note (message: string): void {
  if (process.env.SHOAL_HOSTILE_VERBOSE != null) process.stderr.write(`      ${message}\n`)
}
