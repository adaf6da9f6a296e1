/**
 * A one-way delay on every byte a peer receives over TCP, for the lab's
 * links (`shoal swarm up --netns --latency MS`, docs/lab.md).
 *
 *   socket 'data' ──> [ chunk, due = arrival + MS ] ... queue ... ──> maConn.onData
 *                                                     (one timer, FIFO)
 *
 * The kernel here has no netem, so the delay lives in Shoal's own transport:
 * it wraps @libp2p/tcp and holds each chunk read from a socket for MS before
 * the connection (Noise, Yamux, the protocols) sees it. Every byte then
 * arrives MS later at the rate it came in, as over a long link. What it does
 * not do, unlike netem: the kernel's TCP still acknowledges at once, so
 * TCP's own congestion window never sees the delay; only what the
 * application waits for does (handshakes, request/response round trips,
 * Yamux window updates, the fetch pipeline).
 *
 * Only lab peers enable it: `swarm up --netns` starts them with
 * `SHOAL_LAB_LINK=<file>` in the environment, a JSON file `{ latencyMs }`
 * the lab rewrites when `swarm link` changes it; the transport polls it, so
 * a new delay applies to every byte received after the change. Without that
 * variable `labTransport` returns the transport unchanged.
 */
import { readFile } from 'node:fs/promises'
import { unwatchFile, watchFile, type Stats } from 'node:fs'
import { serviceCapabilities, transportSymbol } from '@libp2p/interface'
import type {
  Connection, CreateListenerOptions, DialTransportOptions, Listener, MultiaddrConnection,
  Startable, Transport, Upgrader
} from '@libp2p/interface'
import type { Multiaddr } from '@multiformats/multiaddr'

/** The environment variable naming a lab peer's link file. */
export const LAB_LINK_ENV = 'SHOAL_LAB_LINK'
/** How often the link file is checked for a change. */
export const LINK_FILE_POLL_INTERVAL_MS = 200

/** What the lab writes into a host's link file. */
export interface LinkFile {
  /** One-way delay added to every byte received, in ms (0: none). */
  latencyMs: number
}

type TransportFactory<C> = (components: C) => Transport

/** tcp() wrapped in the delay stage when this process is a lab peer, else tcp() itself. */
export function labTransport<C> (inner: TransportFactory<C>, env: NodeJS.ProcessEnv = process.env): TransportFactory<C> {
  const file = env[LAB_LINK_ENV]
  if (file == null || file === '') return inner
  return linkDelay(inner, { file })
}

export interface LinkDelayInit {
  /** The link file to follow (see LinkFile). */
  file: string
  pollIntervalMs?: number
}

export function linkDelay<C> (inner: TransportFactory<C>, init: LinkDelayInit): TransportFactory<C> {
  return (components) => new DelayedTransport(inner(components), init)
}

/** The current delay, shared by every connection of one transport. */
class DelaySetting {
  ms = 0
  private readonly init: LinkDelayInit
  private readonly onChange = (curr: Stats): void => { if (curr.mtimeMs !== 0) void this.read() }

  constructor (init: LinkDelayInit) {
    this.init = init
  }

  async start (): Promise<void> {
    await this.read()
    watchFile(this.init.file, { interval: this.init.pollIntervalMs ?? LINK_FILE_POLL_INTERVAL_MS, persistent: false }, this.onChange)
  }

  stop (): void {
    unwatchFile(this.init.file, this.onChange)
  }

  /** A missing or half-written file keeps the delay it had. */
  private async read (): Promise<void> {
    try {
      const parsed = JSON.parse(await readFile(this.init.file, 'utf8')) as Partial<LinkFile>
      if (typeof parsed.latencyMs === 'number' && Number.isFinite(parsed.latencyMs) && parsed.latencyMs >= 0) this.ms = parsed.latencyMs
    } catch {}
  }
}

class DelayedTransport implements Transport, Startable {
  readonly [transportSymbol] = true as const
  readonly [Symbol.toStringTag] = '@shoal/link-delay'
  readonly [serviceCapabilities] = ['@libp2p/transport']
  private readonly inner: Transport
  private readonly delay: DelaySetting

  constructor (inner: Transport, init: LinkDelayInit) {
    this.inner = inner
    this.delay = new DelaySetting(init)
  }

  async start (): Promise<void> {
    await this.delay.start()
  }

  stop (): void {
    this.delay.stop()
  }

  async dial (ma: Multiaddr, options: DialTransportOptions): Promise<Connection> {
    return this.inner.dial(ma, { ...options, upgrader: delayedUpgrader(options.upgrader, this.delay) })
  }

  createListener (options: CreateListenerOptions): Listener {
    return this.inner.createListener({ ...options, upgrader: delayedUpgrader(options.upgrader, this.delay) })
  }

  get listenFilter (): Transport['listenFilter'] {
    return this.inner.listenFilter.bind(this.inner)
  }

  get dialFilter (): Transport['dialFilter'] {
    return this.inner.dialFilter.bind(this.inner)
  }
}

/** The upgrader, delaying each raw connection before Noise sees a byte of it. */
function delayedUpgrader (upgrader: Upgrader, delay: DelaySetting): Upgrader {
  return new Proxy(upgrader, {
    get (target, prop) {
      if (prop === 'upgradeInbound' || prop === 'upgradeOutbound') {
        return async (maConn: MultiaddrConnection, opts: any) => {
          delayReceive(maConn, delay)
          return target[prop](maConn, opts)
        }
      }
      const value = Reflect.get(target, prop, target)
      return typeof value === 'function' ? value.bind(target) : value
    }
  })
}

/** The parts of @libp2p/utils' AbstractMessageStream the stage hooks into. */
interface HookableConnection {
  readStatus: string
  onData: (data: Uint8Array) => void
  onTransportClosed: (err?: Error) => void
  sendResume: () => void
  addEventListener: (type: 'close', listener: () => void) => void
}

/**
 * Holds every chunk the socket delivers until `delay.ms` after it arrived,
 * then hands the chunks on in order. A graceful close from the remote waits
 * behind the data it followed; while the consumer has paused the
 * connection, nothing is handed on (the socket is paused too, so at most one
 * delay's worth of data waits here).
 */
export function delayReceive (maConn: MultiaddrConnection, delay: { ms: number }): void {
  const conn = maConn as unknown as HookableConnection
  if (typeof conn.onData !== 'function' || typeof conn.onTransportClosed !== 'function') return
  const deliver = conn.onData.bind(conn)
  const transportClosed = conn.onTransportClosed.bind(conn)
  const resume = conn.sendResume.bind(conn)
  const queue: Array<{ data: Uint8Array, due: number }> = []
  let head = 0
  let lastDue = 0
  let timer: ReturnType<typeof setTimeout> | undefined
  let closeAfterQueue = false
  let closed = false

  const flush = (): void => {
    timer = undefined
    const now = performance.now()
    while (head < queue.length && queue[head].due <= now && !closed) {
      if (conn.readStatus === 'paused') return
      const { data } = queue[head]
      queue[head++] = undefined as never
      deliver(data)
    }
    if (head === queue.length) {
      queue.length = 0
      head = 0
      if (closeAfterQueue && !closed) {
        closeAfterQueue = false
        transportClosed()
      }
      return
    }
    if (head > 1024) {
      queue.splice(0, head)
      head = 0
    }
    if (!closed) timer = setTimeout(flush, Math.max(0, queue[head].due - performance.now()))
  }

  conn.onData = (data: Uint8Array): void => {
    if (delay.ms <= 0 && head === queue.length) {
      deliver(data)
      return
    }
    // never before a chunk that came earlier, even when the delay was just lowered
    lastDue = Math.max(lastDue, performance.now() + delay.ms)
    queue.push({ data, due: lastDue })
    if (timer == null && conn.readStatus !== 'paused') timer = setTimeout(flush, Math.max(0, lastDue - performance.now()))
  }
  conn.onTransportClosed = (err?: Error): void => {
    if (err == null && head < queue.length && !closed) {
      closeAfterQueue = true
      return
    }
    transportClosed(err)
  }
  conn.sendResume = (): void => {
    resume()
    if (timer == null && head < queue.length) flush()
  }
  conn.addEventListener('close', () => {
    closed = true
    if (timer != null) clearTimeout(timer)
    timer = undefined
    queue.length = 0
    head = 0
  })
}
