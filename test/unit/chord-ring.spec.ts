import assert from 'node:assert/strict'
import { createHash, randomBytes } from 'node:crypto'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { RING_BITS } from '../../src/routing/chord/constants.ts'
import { FingerTable } from '../../src/routing/chord/finger-table.ts'
import { Positions } from '../../src/routing/chord/positions.ts'
import {
  RING_SIZE, clockwise, clockwiseFrom, fingerStart, fromPosition, inHalfOpen, inOpen, toPosition
} from '../../src/routing/chord/ring.ts'
import { RingState } from '../../src/routing/chord/ring-state.ts'
import { idOfKey, idOfPeer } from '../../src/routing/key-space.ts'

const MAX = RING_SIZE - 1n

describe('chord ring arithmetic', () => {
  it('reads and writes 32-byte identifiers as positions, big-endian', () => {
    const id = randomBytes(32)
    assert.equal(toPosition(id), BigInt('0x' + id.toString('hex')))
    assert.deepEqual(fromPosition(toPosition(id)), Uint8Array.from(id))
    assert.equal(toPosition(new Uint8Array(32).fill(0xff)), MAX)
    assert.throws(() => toPosition(new Uint8Array(20)), RangeError)
  })

  it('measures clockwise distance around 2^256', () => {
    assert.equal(clockwise(5n, 9n), 4n)
    assert.equal(clockwise(9n, 5n), RING_SIZE - 4n)
    assert.equal(clockwise(MAX, 0n), 1n)
    assert.equal(clockwise(7n, 7n), 0n)
  })

  it('tells open and half-open arcs, across zero and on a ring of one', () => {
    // (10, 20)
    assert.ok(inOpen(10n, 15n, 20n))
    assert.ok(!inOpen(10n, 10n, 20n))
    assert.ok(!inOpen(10n, 20n, 20n))
    assert.ok(!inOpen(10n, 25n, 20n))
    // an arc across zero: (MAX - 1, 3)
    assert.ok(inOpen(MAX - 1n, MAX, 3n))
    assert.ok(inOpen(MAX - 1n, 0n, 3n))
    assert.ok(!inOpen(MAX - 1n, 5n, 3n))
    // (a, a) is everything but a; (a, a] everything
    assert.ok(inOpen(7n, 8n, 7n))
    assert.ok(!inOpen(7n, 7n, 7n))
    assert.ok(inHalfOpen(7n, 7n, 7n))
    // (10, 20]
    assert.ok(inHalfOpen(10n, 20n, 20n))
    assert.ok(!inHalfOpen(10n, 10n, 20n))
    assert.ok(inHalfOpen(MAX, 0n, 0n))
  })

  it('places finger starts at self + 2^i, wrapping past the top', () => {
    assert.equal(fingerStart(0n, 0), 1n)
    assert.equal(fingerStart(0n, 255), 1n << 255n)
    assert.equal(fingerStart(MAX, 0), 0n)
    assert.equal(fingerStart(1n << 255n, 255), 0n)
  })

  it('sorts into responsibility order: at the key first, then clockwise', () => {
    const positions = [5n, MAX, 100n, 50n, 0n]
    assert.deepEqual(clockwiseFrom(50n, positions, p => p), [50n, 100n, MAX, 0n, 5n])
    assert.deepEqual(clockwiseFrom(51n, positions, p => p), [100n, MAX, 0n, 5n, 50n])
  })

  it('places peers and keys exactly as Kademlia does (sha2-256 of the multihash, of the key)', async () => {
    const peer = peerIdFromPrivateKey(await generateKeyPair('Ed25519'))
    const positions = new Positions()
    assert.deepEqual(positions.idOfPeer(peer.toString()), idOfPeer(peer))
    assert.deepEqual(Buffer.from(positions.idOfPeer(peer.toString())), createHash('sha256').update(peer.toMultihash().bytes).digest())
    const key = randomBytes(34)
    assert.deepEqual(positions.idOfKey(key), idOfKey(key))
    assert.deepEqual(Buffer.from(positions.idOfKey(key)), createHash('sha256').update(key).digest())
    assert.equal(positions.ofPeer(peer.toString()), toPosition(idOfPeer(peer)))
  })
})

describe('chord finger table', () => {
  it('holds 256 fingers as runs of distinct peers', () => {
    const table = new FingerTable()
    assert.equal(table.get(0), undefined)
    table.setRange(0, 99, 'a')
    table.setRange(100, 200, 'b')
    table.setRange(150, 160, 'a')
    assert.deepEqual(table.distinct(), [
      { index: 0, peerId: 'a' }, { index: 100, peerId: 'b' }, { index: 150, peerId: 'a' }, { index: 161, peerId: 'b' }
    ])
    assert.equal(table.get(99), 'a')
    assert.equal(table.get(100), 'b')
    assert.equal(table.get(255), undefined)
    assert.throws(() => table.get(RING_BITS), RangeError)
  })

  it('hands a dead finger\'s runs to the next finger, or forgets them at the end', () => {
    const table = new FingerTable()
    table.setRange(0, 9, 'a')
    table.setRange(10, 19, 'b')
    table.setRange(20, 29, 'c')
    table.remove('b')
    assert.deepEqual(table.distinct(), [{ index: 0, peerId: 'a' }, { index: 10, peerId: 'c' }])
    table.remove('c')
    assert.deepEqual(table.distinct(), [{ index: 0, peerId: 'a' }])
    assert.deepEqual([...table.peers()], ['a'])
  })
})

describe('chord ring state', () => {
  // a made-up ring: peer names map to chosen positions
  const positionsOf = (map: Record<string, bigint>): Positions => {
    const positions = new Positions()
    positions.ofPeer = (peer: string) => map[peer]
    return positions
  }
  const ring = { me: 100n, a: 200n, b: 300n, c: 400n, d: 500n, e: MAX - 10n }

  it('builds its successor list from a successor and that one\'s list, stopping at itself or at r', () => {
    const changes: unknown[] = []
    const state = new RingState('me', positionsOf(ring), 3, change => { changes.push(change) })
    assert.ok(state.alone)
    state.adoptSuccessors(['a', 'b', 'c', 'd'])
    assert.deepEqual(state.successors, ['a', 'b', 'c'])
    assert.equal(state.wrapped, false)
    // a list that comes back round to this peer closes the ring
    state.adoptSuccessors(['a', 'b', 'me', 'c'])
    assert.deepEqual(state.successors, ['a', 'b'])
    assert.equal(state.wrapped, true)
    // a complete list ends with its sender, seen twice here
    state.adoptSuccessors(['a', 'b', 'a'])
    assert.deepEqual(state.successors, ['a', 'b'])
    assert.equal(state.wrapped, true)
    assert.ok(changes.length >= 2)
  })

  it('answers a key from its successor list only when the key lies between it and its first successor', () => {
    const state = new RingState('me', positionsOf(ring), 3)
    // alone: every key
    assert.ok(state.precedesKey(5n))
    state.adoptSuccessors(['a', 'b', 'c', 'd'])
    assert.ok(state.precedesKey(150n))
    assert.ok(state.precedesKey(200n))
    assert.ok(!state.precedesKey(201n))
    assert.ok(!state.precedesKey(100n))
  })

  it('names the known peers closest before a key, nearest the key first', () => {
    const state = new RingState('me', positionsOf(ring), 3)
    state.adoptSuccessors(['a', 'b', 'c'])
    state.setFingers(200, 255, 'e')
    state.setPredecessor('d')
    // before 450: c (400), b, a; d (500) and e lie past it
    assert.deepEqual(state.closestPreceding(450n, 10), ['c', 'b', 'a'])
    assert.deepEqual(state.closestPreceding(450n, 2), ['c', 'b'])
    // before 50 (past the top): e, d, c, b, a
    assert.deepEqual(state.closestPreceding(50n, 2), ['e', 'd'])
    assert.deepEqual(state.closestPreceding(450n, 10, p => p === 'c'), ['b', 'a'])
  })

  it('fills the fingers its successor list answers, and in a closed ring no others', () => {
    const self = 0n
    const near = { me: self, x: 1n << 10n, y: 1n << 20n, z: 1n << 200n }
    const state = new RingState('me', positionsOf(near), 4)
    state.adoptSuccessors(['x', 'y'])
    // fingers 0..10 -> x, 11..20 -> y, the rest unknown
    assert.deepEqual(state.fingers.distinct(), [{ index: 0, peerId: 'x' }, { index: 11, peerId: 'y' }])
    assert.equal(state.firstFingerBeyondSuccessors(), 21)
    state.adoptSuccessors(['x', 'y', 'z', 'me'])
    assert.equal(state.wrapped, true)
    assert.deepEqual(state.fingers.distinct(), [{ index: 0, peerId: 'x' }, { index: 11, peerId: 'y' }, { index: 21, peerId: 'z' }])
    assert.equal(state.fingers.get(201), undefined)
    assert.equal(state.firstFingerBeyondSuccessors(), RING_BITS)
  })

  it('proves a window with its predecessor and list, or the whole ring when the list closes it', () => {
    const state = new RingState('me', positionsOf(ring), 3)
    state.adoptSuccessors(['a', 'b', 'c', 'd'])
    assert.deepEqual(state.ownWindow(), { left: 'me', peers: ['a', 'b', 'c'], complete: false })
    state.setPredecessor('e')
    assert.deepEqual(state.ownWindow(), { left: 'e', peers: ['me', 'a', 'b', 'c'], complete: false })
    state.adoptSuccessors(['a', 'b', 'me'])
    assert.equal(state.ownWindow().complete, true)
  })

  it('never takes in a peer it refuses', () => {
    const state = new RingState('me', positionsOf(ring), 3, () => {}, peer => peer !== 'b')
    state.adoptSuccessors(['a', 'b', 'c'])
    assert.deepEqual(state.successors, ['a', 'c'])
    state.setPredecessor('b')
    assert.equal(state.predecessor, undefined)
    state.setFingers(0, 10, 'b')
    assert.equal(state.fingers.get(5), 'a')
  })
})
