/**
 * /shoal/kad/find/1.0.0, the query of Shoal's Kademlia lookup
 * (src/routing/kademlia/find-server.ts, find-client.ts) on an 8-peer
 * swarm: an answer is the answering peer's routing-table peers closest to
 * the key with their addresses, one request after another on a stream; a
 * malformed, oversized or out-of-range request resets its stream and the
 * peer goes on serving; a peer that does not speak the protocol is asked
 * over kad-dht's FIND_NODE and the lookup still finds the true k.
 */
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { noise } from '@chainsafe/libp2p-noise'
import { yamux } from '@chainsafe/libp2p-yamux'
import { identify } from '@libp2p/identify'
import type { Libp2p, Stream } from '@libp2p/interface'
import { peerIdFromMultihash } from '@libp2p/peer-id'
import { tcp } from '@libp2p/tcp'
import { pbStream } from '@libp2p/utils'
import { multiaddr } from '@multiformats/multiaddr'
import { createLibp2p } from 'libp2p'
import * as Digest from 'multiformats/hashes/digest'
import { LOCAL_SWARM_ALLOW } from '../../src/constants.ts'
import { KAD_FIND_PROTOCOL } from '../../src/routing/kademlia/constants.ts'
import { FindRequestCodec, FindResponseCodec, type FindResponse } from '../../src/routing/kademlia/find-messages.ts'
import { closestByXor, kadIdOfKey } from '../../src/routing/kademlia/kad-distance.ts'
import type { KademliaOverlay } from '../../src/routing/kademlia/kademlia-overlay.ts'
import { createTestSwarm, type TestSwarm } from '../../src/swarm/test-swarm.ts'
import { waitFor } from '../../src/utils/wait.ts'

const PEERS = 8
const K = 3

const idsOf = (response: FindResponse): string[] => response.closer.map(p => peerIdFromMultihash(Digest.decode(p.id)).toString())

describe('the Kademlia find protocol', function () {
  this.timeout(120_000)
  let swarm: TestSwarm
  let plain: Libp2p
  before(async () => {
    swarm = await createTestSwarm(PEERS)
    plain = await createLibp2p({
      addresses: { listen: ['/ip4/127.0.0.1/tcp/0'] },
      transports: [tcp()],
      connectionEncrypters: [noise()],
      streamMuxers: [yamux()],
      connectionManager: { allow: [LOCAL_SWARM_ALLOW] },
      services: { identify: identify() }
    })
  })
  after(async () => {
    await plain?.stop()
    await swarm?.destroy()
  })

  it('answers with its routing-table peers closest to the key and their addresses, one request after another on a stream', async () => {
    const a = swarm.peers[0]
    const stream = await plain.dialProtocol(a.libp2p.getMultiaddrs()[0], KAD_FIND_PROTOCOL)
    const pb = pbStream(stream)
    for (const count of [K, 5]) {
      const key = randomBytes(34)
      await pb.write({ key: kadIdOfKey(key), count }, FindRequestCodec)
      const response = await pb.read(FindResponseCodec, { signal: AbortSignal.timeout(10_000) })
      assert.deepEqual(idsOf(response), a.overlay.order(key, a.overlay.knownPeers()).slice(0, count), `count ${count}`)
      for (const [i, peer] of response.closer.entries()) {
        const named = swarm.peers.find(p => p.peerId.toString() === idsOf(response)[i])
        assert.ok(named != null)
        const listening = named.libp2p.getMultiaddrs().map(String)
        assert.ok(peer.addrs.length > 0, `no address for ${named.peerId}`)
        for (const addr of peer.addrs) assert.ok(listening.includes(multiaddr(addr).toString()), `${multiaddr(addr)} is not where ${named.peerId} listens`)
      }
    }
    await stream.close()
  })

  it('resets a stream on a malformed, oversized or out-of-range request and goes on serving', async () => {
    const a = swarm.peers[0]
    const key = kadIdOfKey(randomBytes(34))
    const attempts: Array<{ name: string, send: (pb: ReturnType<typeof pbStream<Stream>>) => Promise<void> }> = [
      { name: 'garbage', send: async pb => { pb.unwrap().send(Uint8Array.from([0x05, 0xff, 0xff, 0xff, 0xff, 0xff])) } },
      { name: 'over the size limit', send: async pb => { pb.unwrap().send(Uint8Array.from([0xff, 0xff, 0xff, 0x7f])) } },
      { name: 'a short key', send: async pb => { await pb.write({ key: new Uint8Array(5), count: K }, FindRequestCodec) } },
      { name: 'a count of 0', send: async pb => { await pb.write({ key, count: 0 }, FindRequestCodec) } },
      { name: 'a count over 32', send: async pb => { await pb.write({ key, count: 33 }, FindRequestCodec) } }
    ]
    for (const attempt of attempts) {
      const stream = await plain.dialProtocol(a.libp2p.getMultiaddrs()[0], KAD_FIND_PROTOCOL)
      const pb = pbStream(stream)
      await attempt.send(pb)
      await assert.rejects(pb.read(FindResponseCodec, { signal: AbortSignal.timeout(10_000) }), (err: Error) => err.name !== 'TimeoutError' && err.name !== 'AbortError', attempt.name)
    }
    // a well-formed request on a fresh stream is answered
    const stream = await plain.dialProtocol(a.libp2p.getMultiaddrs()[0], KAD_FIND_PROTOCOL)
    const pb = pbStream(stream)
    await pb.write({ key, count: K }, FindRequestCodec)
    const response = await pb.read(FindResponseCodec, { signal: AbortSignal.timeout(10_000) })
    assert.equal(response.closer.length, K)
    await stream.close()
    // and lookups from it still find the true k
    const ids = swarm.peers.map(p => p.peerId)
    const lookupKey = randomBytes(34)
    const result = await a.overlay.lookup(lookupKey, K, { signal: AbortSignal.timeout(20_000) })
    assert.deepEqual(result.responsible, closestByXor(lookupKey, ids, K).map(String))
  })

  it('asks a peer that does not speak it over kad-dht\'s FIND_NODE, and still finds the true k', async () => {
    const ids = swarm.peers.map(p => p.peerId)
    const old = swarm.peers[1]
    const asker = swarm.peers[2]
    // a key among whose k closest the old peer is, so the lookup must hear its answer
    let key = randomBytes(34)
    while (!closestByXor(key, ids, K).some(id => id.equals(old.peerId)) || closestByXor(key, ids, 1)[0].equals(asker.peerId)) key = randomBytes(34)
    await old.libp2p.unhandle(KAD_FIND_PROTOCOL)
    // streams the asker keeps from before would still reach the old handler
    await asker.libp2p.hangUp(old.peerId)
    await asker.libp2p.dial(old.peerId)
    await waitFor(() => asker.overlay.knownPeers().includes(old.peerId.toString()), { timeoutMs: 10_000, message: () => 'the asker never saw the old peer back' })
    const answeredBefore = (old.overlay as KademliaOverlay).findQueries().answered
    const result = await asker.overlay.lookup(key, K, { signal: AbortSignal.timeout(20_000) })
    assert.deepEqual(result.responsible, closestByXor(key, ids, K).map(String))
    // asked once, answered over FIND_NODE in the same query
    assert.deepEqual(result.path.filter(hop => hop.peerId === old.peerId.toString()).map(hop => hop.ok), [true])
    assert.equal((old.overlay as KademliaOverlay).findQueries().answered, answeredBefore, 'the old peer answered no find request')
  })
})
