/**
 * The connection trimmer (src/routing/connection-trimmer.ts) on real libp2p
 * nodes over TCP: a hub that peers keep dialling closes its idle
 * connections once past its high watermark, down to the low one, even from
 * an allow-listed address (which libp2p itself never prunes), and keeps a
 * connection that carries a stream, one still in its grace period, a
 * protected peer and a peer libp2p keeps alive.
 */
import assert from 'node:assert/strict'
import { noise } from '@chainsafe/libp2p-noise'
import { yamux } from '@chainsafe/libp2p-yamux'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { KEEP_ALIVE, type Libp2p } from '@libp2p/interface'
import { tcp } from '@libp2p/tcp'
import { createLibp2p } from 'libp2p'
import { connectionTrimmer, type ConnectionTrimmer, type ConnectionTrimmerInit } from '../../src/routing/connection-trimmer.ts'
import { waitFor } from '../../src/utils/wait.ts'

const ECHO = '/test/hold/1.0.0'

type Hub = Libp2p<{ trimmer: ConnectionTrimmer }>

describe('connection trimmer', function () {
  this.timeout(60_000)
  const nodes: Libp2p[] = []
  afterEach(async () => {
    await Promise.all(nodes.splice(0).map(async n => n.stop()))
  })

  /** What every node of these tests runs: TCP on loopback, Noise, yamux. */
  async function base (): Promise<Parameters<typeof createLibp2p>[0]> {
    return {
      privateKey: await generateKeyPair('Ed25519'),
      addresses: { listen: ['/ip4/127.0.0.1/tcp/0'] },
      transports: [tcp()],
      connectionEncrypters: [noise()],
      streamMuxers: [yamux()],
      connectionMonitor: { enabled: false }
    }
  }

  async function node (): Promise<Libp2p> {
    const n = await createLibp2p(await base())
    nodes.push(n)
    return n
  }

  async function hub (init: ConnectionTrimmerInit): Promise<Hub> {
    const n = await createLibp2p({
      ...await base(),
      // allow-listed as a local swarm's address is: libp2p never prunes these
      connectionManager: { allow: ['/ip4/127.0.0.1/ipcidr/32'], maxConnections: 1_000 },
      services: { trimmer: connectionTrimmer(init) }
    })
    // streams on this protocol stay open until the dialler closes them
    await n.handle(ECHO, async () => {})
    nodes.push(n)
    return n
  }

  /** `count` peers that dial `to`, once `to` has seen every one of them. */
  async function dialAll (to: Libp2p, count: number): Promise<Libp2p[]> {
    const peers = await Promise.all(Array.from({ length: count }, async () => node()))
    await Promise.all(peers.map(async p => p.dial(to.getMultiaddrs())))
    // a dial resolves before the other side has registered its end
    await waitFor(() => peers.every(p => to.getConnections(p.peerId).length > 0), { timeoutMs: 10_000, intervalMs: 20, message: () => 'the hub did not see every dial' })
    return peers
  }

  it('closes idle connections past the high watermark down to the low one, and keeps busy, protected and kept-alive ones', async () => {
    let protectedPeer = ''
    // a grace period long enough for every dial to land first, so that one trim round sees them all
    const h = await hub({ highWater: 6, lowWater: 3, gracePeriodMs: 2_000, protect: () => [protectedPeer] })
    const peers = await dialAll(h, 10)
    protectedPeer = peers[0].peerId.toString()
    await h.peerStore.merge(peers[1].peerId, { tags: { [`${KEEP_ALIVE}-test`]: { value: 1 } } })
    // a stream the hub's side still has open
    const busy = await peers[2].dialProtocol(h.getMultiaddrs(), ECHO)
    await waitFor(() => busy.status === 'open' && h.getConnections(peers[2].peerId)[0]?.streams.length > 0, { timeoutMs: 10_000, intervalMs: 20, message: () => 'the stream never opened on the hub' })
    assert.equal(h.getConnections().length, 10, 'nothing closed within the grace period')
    await waitFor(() => h.getConnections().length <= 3, { timeoutMs: 20_000, intervalMs: 100, message: () => `hub still has ${h.getConnections().length} connections` })
    const left = new Set(h.getConnections().map(c => c.remotePeer.toString()))
    assert.deepEqual([...left].sort(), [peers[0], peers[1], peers[2]].map(p => p.peerId.toString()).sort())
    assert.equal(h.services.trimmer.trimmed, 7)
    await busy.close()
  })

  it('keeps connections in their grace period, and every connection while under the high watermark', async () => {
    const h = await hub({ highWater: 4, lowWater: 2, gracePeriodMs: 60_000 })
    await dialAll(h, 8)
    assert.equal(await h.services.trimmer.trim(), 0)
    assert.equal(h.getConnections().length, 8)

    const calm = await hub({ highWater: 8, lowWater: 2, gracePeriodMs: 0 })
    await dialAll(calm, 8)
    await new Promise(resolve => setTimeout(resolve, 1_500))
    assert.equal(await calm.services.trimmer.trim(), 0)
    assert.equal(calm.getConnections().length, 8)
  })

  it('refuses a low watermark above the high one', async () => {
    await assert.rejects(hub({ highWater: 2, lowWater: 3, gracePeriodMs: 0 }), /lowWater 3 is above highWater 2/)
  })
})
