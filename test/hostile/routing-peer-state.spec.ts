/**
 * A hostile DHT peer answers every query with peers of its own making:
 * 10,000 of them (the victim's in-memory peer state must stay within its
 * bound), or one whose address is a loopback port of the victim's machine
 * (a victim on the public network must not dial it).
 *
 * The hostile peer is a bare libp2p node speaking /shoal/kad/1.0.0 by hand:
 * it reads a request and answers with a FIND_NODE response whose closer
 * peers are random peer IDs (sha2-256 multihashes) at the addresses the test
 * chooses.
 */
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import fs from 'node:fs/promises'
import net from 'node:net'
import { noise } from '@chainsafe/libp2p-noise'
import { yamux } from '@chainsafe/libp2p-yamux'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { identify } from '@libp2p/identify'
import { ping } from '@libp2p/ping'
import { tcp } from '@libp2p/tcp'
import { lpStream } from '@libp2p/utils'
import { multiaddr } from '@multiformats/multiaddr'
import { createLibp2p, type Libp2p } from 'libp2p'
import { DHT_PROTOCOL } from '../../src/constants.ts'
import { ShoalPeer } from '../../src/peer/peer.ts'
import { Repo } from '../../src/peer/repo.ts'
import { defaultConfig, type ShoalConfig } from '../../src/peer/config.ts'
import { peerStoreCacheOf } from '../../src/routing/libp2p.ts'
import { PEER_STORE_CACHE_MAX_ENTRIES } from '../../src/routing/peer-store-cache.ts'
import { waitFor } from '../../src/utils/wait.ts'
import { tempDir } from '../helpers/cli.ts'

// protobuf by hand: kad-dht's Message { type = 1; closerPeers = 8 (Peer { id = 1; addrs = 2 }) }
const varint = (n: number): number[] => {
  const out: number[] = []
  while (n >= 0x80) { out.push((n & 0x7f) | 0x80); n >>>= 7 }
  out.push(n)
  return out
}
const field = (tag: number, bytes: Uint8Array): number[] => [...varint(tag << 3 | 2), ...varint(bytes.length), ...bytes]
const FIND_NODE = 4

/** A random peer ID's bytes: a sha2-256 multihash. */
const fakePeerId = (): Uint8Array => Uint8Array.from([0x12, 0x20, ...randomBytes(32)])

function findNodeResponse (peers: Array<{ id: Uint8Array, addr?: Uint8Array }>): Uint8Array {
  const bytes: number[] = [...varint(1 << 3), ...varint(FIND_NODE)]
  for (const p of peers) bytes.push(...field(8, Uint8Array.from([...field(1, p.id), ...(p.addr == null ? [] : field(2, p.addr))])))
  return Uint8Array.from(bytes)
}

interface HostileDht {
  node: Libp2p
  replies: number
}

/** A libp2p node that answers every /shoal/kad/1.0.0 request with `response`. */
async function hostileDht (response: Uint8Array, announce: string[] = []): Promise<HostileDht> {
  const node = await createLibp2p({
    privateKey: await generateKeyPair('Ed25519'),
    addresses: { listen: ['/ip4/127.0.0.1/tcp/0'], announce },
    transports: [tcp()],
    connectionEncrypters: [noise()],
    streamMuxers: [yamux()],
    services: { identify: identify(), ping: ping() }
  })
  const hostile: HostileDht = { node, replies: 0 }
  await node.handle(DHT_PROTOCOL, async stream => {
    const lp = lpStream(stream, { maxDataLength: 8 * 1024 * 1024 })
    try {
      for (;;) {
        await lp.read()
        await lp.write(response)
        hostile.replies++
      }
    } catch {
      stream.abort(new Error('done'))
    }
  }, { maxInboundStreams: 64 })
  return hostile
}

describe('hostile: DHT replies naming peers of the replier\'s making', function () {
  const dirs: string[] = []
  const stops: Array<() => Promise<void>> = []
  after(async () => {
    for (const stop of stops.reverse()) await stop().catch(() => {})
    for (const dir of dirs) await fs.rm(dir, { recursive: true, force: true })
  })

  const victimPeer = async (config: Partial<ShoalConfig> = {}): Promise<ShoalPeer> => {
    const dir = await tempDir()
    dirs.push(dir)
    await Repo.init(dir, { ...config, listen: ['/ip4/127.0.0.1/tcp/0'], api: '127.0.0.1:0' })
    const peer = await ShoalPeer.open(dir, { metrics: false })
    await peer.start()
    stops.push(async () => { await peer.stop() })
    return peer
  }

  /** Connects the hostile node to the victim and waits until the victim's routing table holds it. */
  const meet = async (victim: ShoalPeer, hostile: HostileDht): Promise<void> => {
    stops.push(async () => { await hostile.node.stop() })
    await hostile.node.dial(multiaddr(victim.multiaddrs()[0]))
    await waitFor(() => victim.overlay.knownPeers().includes(hostile.node.peerId.toString()), {
      timeoutMs: 10_000, message: () => 'the victim never took the hostile peer into its routing table'
    })
  }

  /** A lookup through the hostile peer, cut short: its answer is what matters. */
  const lookup = async (victim: ShoalPeer, hostile: HostileDht): Promise<void> => {
    await victim.overlay.lookup(randomBytes(32), 20, { signal: AbortSignal.timeout(4_000) }).catch(() => {})
    assert.ok(hostile.replies >= 1, 'the victim asked the hostile peer')
  }

  it('a reply naming 10,000 peers leaves the peer-store cache within its bound', async () => {
    const victim = await victimPeer()
    // without addresses: each still becomes a peer record, and costs the
    // victim no dial and no routing-table work
    const hostile = await hostileDht(findNodeResponse(Array.from({ length: 10_000 }, () => ({ id: fakePeerId() }))))
    await meet(victim, hostile)
    await lookup(victim, hostile)

    const cache = peerStoreCacheOf(victim.libp2p)
    assert.ok(cache != null)
    // every named peer went into the peer store (LevelDB), not all into memory
    await waitFor(async () => (await victim.libp2p.peerStore.all()).length >= 10_000, {
      timeoutMs: 30_000, intervalMs: 500, message: () => 'the named peers never reached the peer store'
    })
    assert.ok(cache.cachedEntries <= PEER_STORE_CACHE_MAX_ENTRIES, `${cache.cachedEntries} peer records cached in memory (bound ${PEER_STORE_CACHE_MAX_ENTRIES})`)
    assert.ok(cache.pendingWrites <= PEER_STORE_CACHE_MAX_ENTRIES, `${cache.pendingWrites} peer records waiting to be written (bound ${PEER_STORE_CACHE_MAX_ENTRIES})`)
  })

  it('with private addresses off, a loopback address in a DHT reply is never dialled', async () => {
    const dialled: string[] = []
    const trap = net.createServer(socket => { dialled.push(String(socket.remoteAddress)); socket.destroy() })
    await new Promise<void>(resolve => trap.listen(0, '127.0.0.1', resolve))
    stops.push(async () => { await new Promise(resolve => trap.close(resolve)) })
    const port = (trap.address() as net.AddressInfo).port

    const victim = await victimPeer({ connections: { ...defaultConfig().connections, allow: [], privateAddresses: false } })
    const trapAddr = multiaddr(`/ip4/127.0.0.1/tcp/${port}`).bytes
    // the hostile peer announces a public address, so a public peer takes it into its routing table
    const hostile = await hostileDht(findNodeResponse(Array.from({ length: 5 }, () => ({ id: fakePeerId(), addr: trapAddr }))), ['/ip4/203.0.113.7/tcp/4001'])
    await meet(victim, hostile)
    await lookup(victim, hostile)
    assert.deepEqual(dialled, [], 'the victim dialled the loopback address a DHT reply named')
  })
})
