/**
 * When a swarm counts as routable (src/swarm/routable.ts) on each overlay,
 * and how a lookup key is read (src/api/routing-routes.ts).
 */
import assert from 'node:assert/strict'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey, peerIdFromString } from '@libp2p/peer-id'
import { parseLookupKey, parseLookupReplicas } from '../../src/api/routing-routes.ts'
import { clockwiseFrom, toPosition } from '../../src/routing/chord/ring.ts'
import { idOfPeer } from '../../src/routing/key-space.ts'
import { routingShortfall, SwarmRing } from '../../src/swarm/routable.ts'

describe('routable swarms', () => {
  let ids: string[]
  let ring: string[]
  before(async () => {
    ids = await Promise.all(Array.from({ length: 6 }, async () => peerIdFromPrivateKey(await generateKeyPair('Ed25519')).toString()))
    ring = clockwiseFrom(0n, ids, id => toPosition(idOfPeer(peerIdFromString(id))))
  })

  it('SwarmRing orders peers by ring position and names each one\'s next r and the one before', () => {
    const swarm = new SwarmRing(ids, 3)
    assert.deepEqual(swarm.order, ring)
    assert.deepEqual(swarm.successorsOf(ring[4]), [ring[5], ring[0], ring[1]])
    assert.equal(swarm.predecessorOf(ring[0]), ring[5])
    assert.deepEqual(new SwarmRing(ids).successorsOf(ring[0]), ring.slice(1), 'r past N-1: every other peer')
  })

  it('a Chord peer is routable once its list is the next min(N-1, r) and its predecessor the peer before it', () => {
    const options = { overlay: 'chord' as const, kBucketSize: 20, successorListLength: 3 }
    const routing = { overlay: 'chord' as const, self: ring[1], predecessor: ring[0], successors: [ring[2], ring[3], ring[4]], fingers: [] }
    assert.equal(routingShortfall(routing, ids, options), undefined)
    assert.equal(routingShortfall({ ...routing, successors: [ring[2], ring[4], ring[5]] }, ids, options), '1 of its 3 successors right')
    assert.equal(routingShortfall({ ...routing, successors: [ring[2]] }, ids, options), '1 of its 3 successors right')
    assert.equal(routingShortfall({ ...routing, predecessor: undefined }, ids, options), 'its predecessor is not the peer before it')
  })

  it('a Kademlia peer is routable once it knows min(N-1, k) peers', () => {
    const options = { overlay: 'kademlia' as const, kBucketSize: 4 }
    const routing = { overlay: 'kademlia' as const, self: ids[0], buckets: [{ prefix: 0, peers: ids.slice(1, 3) }, { prefix: 2, peers: ids.slice(3, 5) }] }
    assert.equal(routingShortfall(routing, ids, options), undefined)
    assert.equal(routingShortfall({ ...routing, buckets: routing.buckets.slice(1) }, ids, options), 'knows 2 of the 4 peers it needs')
  })
})

describe('lookup keys', () => {
  it('reads even-length hex as key bytes and anything else as a CID (its multihash)', () => {
    assert.deepEqual(parseLookupKey('00FF10'), { key: '00ff10', bytes: Uint8Array.from([0, 255, 16]) })
    const cid = 'bafkreie3l3tbq3mqevjbsp6njkfjsfv6tzklf7qr6s3ge6ls4kjd4fgogu'
    const parsed = parseLookupKey(cid)
    assert.equal(parsed.key, cid)
    assert.equal(parsed.bytes.length, 34)
    assert.throws(() => parseLookupKey('abc'), { name: 'InvalidInputError' })
    assert.throws(() => parseLookupKey(''), { name: 'InvalidInputError' })
    assert.throws(() => parseLookupKey('00'.repeat(65)), { name: 'InvalidInputError', message: 'a hex key is at most 64 bytes, got 65' })
    assert.equal(parseLookupReplicas(undefined, 3), 3)
    assert.equal(parseLookupReplicas('64', 3), 64)
    assert.throws(() => parseLookupReplicas('0', 3), { name: 'InvalidInputError' })
  })
})
