import assert from 'node:assert/strict'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { closestByXor, compareDistance, kadIdOfKey, kadIdOfPeer } from '../../src/routing/kademlia/kad-distance.ts'

describe('kad distance', () => {
  it('orders peers by XOR of sha2-256 keyspace IDs, closest first', async () => {
    const peers = await Promise.all(Array.from({ length: 30 }, async () => peerIdFromPrivateKey(await generateKeyPair('Ed25519'))))
    const key = new TextEncoder().encode('some key')
    const target = kadIdOfKey(key)
    const sorted = closestByXor(key, peers, peers.length)
    for (let i = 1; i < sorted.length; i++) {
      assert.ok(compareDistance(target, kadIdOfPeer(sorted[i - 1]), kadIdOfPeer(sorted[i])) < 0)
    }
    // brute force: the first one has the smallest XOR as a big integer
    const asBig = (id: Uint8Array): bigint => BigInt('0x' + Buffer.from(id.map((b, i) => b ^ target[i])).toString('hex'))
    const min = peers.reduce((best, p) => asBig(kadIdOfPeer(p)) < asBig(kadIdOfPeer(best)) ? p : best)
    assert.equal(sorted[0].toString(), min.toString())
    assert.equal(closestByXor(key, peers, 3).length, 3)
  })
})
