/**
 * A host floods a daemon that runs the default config with inbound TCP
 * connections that never start their handshake (a slow or hostile host).
 * The daemon refuses most of them at once (per-host rate: nothing is
 * allow-listed by default, loopback included), and the connections it did
 * accept cannot fill the pending-handshake cap: a peer on another address
 * still connects during the flood.
 *
 * Both hosts are local: the flood comes from 127.0.0.2, the honest peer from
 * 127.0.0.1 (all of 127.0.0.0/8 is loopback on Linux).
 */
import assert from 'node:assert/strict'
import fs from 'node:fs/promises'
import net from 'node:net'
import { multiaddr } from '@multiformats/multiaddr'
import {
  INBOUND_CONNECTIONS_PER_HOST_PER_SECOND, INBOUND_UPGRADE_TIMEOUT_MS, MAX_INCOMING_PENDING_CONNECTIONS
} from '../../src/constants.ts'
import { ShoalPeer } from '../../src/peer/peer.ts'
import { Repo } from '../../src/peer/repo.ts'
import { tempDir } from '../helpers/cli.ts'

const FLOOD_HOST = '127.0.0.2'
/** A refused connection is closed within this long (a held one stays open until the upgrade timeout). */
const QUICK_MS = 2_000

/** Opens silent connections from `localAddress` as fast as they open, until stopped. */
class SilentFlood {
  readonly sockets: net.Socket[] = []
  /** Sockets the daemon closed within `quickMs` of their opening. */
  refusedQuickly = 0
  private stopped = false
  private readonly done: Promise<void>

  constructor (port: number, localAddress: string, quickMs = QUICK_MS) {
    const openOne = async (): Promise<void> => new Promise(resolve => {
      const socket = net.connect({ host: '127.0.0.1', port, localAddress })
      const openedAt = Date.now()
      this.sockets.push(socket)
      socket.on('error', () => {})
      socket.on('close', () => { if (Date.now() - openedAt < quickMs) this.refusedQuickly++ })
      socket.on('connect', () => { resolve() })
      socket.on('close', () => { resolve() })
    })
    this.done = (async () => {
      while (!this.stopped) {
        await Promise.all(Array.from({ length: 10 }, openOne))
        await new Promise(resolve => setTimeout(resolve, 20))
      }
    })()
  }

  /** Sockets the daemon still holds open (pending in its handshake). */
  get open (): number {
    return this.sockets.filter(s => !s.closed && !s.destroyed).length
  }

  /** Stops opening connections (those open stay open). */
  async pause (): Promise<void> {
    this.stopped = true
    await this.done
  }

  async stop (): Promise<void> {
    await this.pause()
    this.sockets.forEach(s => s.destroy())
  }
}

describe('hostile: an inbound connection flood from one host (default config)', function () {
  const dirs: string[] = []
  const peers: ShoalPeer[] = []
  let flood: SilentFlood | undefined

  const newPeer = async (): Promise<ShoalPeer> => {
    const dir = await tempDir()
    dirs.push(dir)
    // the default config but for its listen and API addresses
    await Repo.init(dir, { listen: ['/ip4/127.0.0.1/tcp/0'], api: '127.0.0.1:0' })
    const peer = await ShoalPeer.open(dir, { metrics: false })
    peers.push(peer)
    await peer.start()
    return peer
  }

  after(async () => {
    await flood?.stop()
    for (const peer of peers.reverse()) await peer.stop()
    for (const dir of dirs) await fs.rm(dir, { recursive: true, force: true })
  })

  it('refuses most of the flood at once, and another host still connects while it lasts', async () => {
    const target = await newPeer()
    const honest = await newPeer()
    assert.deepEqual(target.repo.config.connections.allow, [], 'the default config allow-lists nothing')
    const port = Number(multiaddr(target.multiaddrs()[0]).getComponents().find(c => c.name === 'tcp')?.value)

    flood = new SilentFlood(port, FLOOD_HOST)
    const floodStarted = Date.now()
    // long enough for a flood held to libp2p's old defaults (10 pending,
    // 10 s upgrade timeout) to fill the pending cap: 5 a second from one host
    await new Promise(resolve => setTimeout(resolve, 3_000))

    // the flood goes on while the honest peer (from 127.0.0.1) connects
    const started = Date.now()
    const connection = await honest.libp2p.dial(multiaddr(target.multiaddrs()[0]), { signal: AbortSignal.timeout(10_000) })
    assert.equal(connection.remotePeer.toString(), target.peerId.toString())
    assert.ok(Date.now() - started < 5_000, `the honest peer connected in ${Date.now() - started} ms`)

    // what the daemon refused is closed by now; what it accepted stays open
    // in its handshake until the upgrade timeout
    await flood.pause()
    await new Promise(resolve => setTimeout(resolve, QUICK_MS))
    const attempted = flood.sockets.length
    const held = flood.open
    const seconds = Math.ceil((Date.now() - floodStarted) / 1000)
    // one host gets at most `rate` connections into each one-second window
    const perHostBound = INBOUND_CONNECTIONS_PER_HOST_PER_SECOND * (Math.min(seconds, Math.ceil(INBOUND_UPGRADE_TIMEOUT_MS / 1000)) + 1)
    assert.ok(attempted > 100, `the flood opened ${attempted} connections`)
    assert.ok(held <= perHostBound, `the daemon holds ${held} of ${attempted} flood connections open (bound ${perHostBound} in ${seconds} s)`)
    assert.ok(flood.refusedQuickly >= attempted - held, `the daemon refused ${flood.refusedQuickly} of ${attempted} flood connections within ${QUICK_MS} ms`)
    const perHostMax = INBOUND_CONNECTIONS_PER_HOST_PER_SECOND * (Math.ceil(INBOUND_UPGRADE_TIMEOUT_MS / 1000) + 1)
    assert.ok(perHostMax * 4 <= MAX_INCOMING_PENDING_CONNECTIONS, 'one host fills at most a quarter of the pending cap')
    await flood.stop()
  })
})
