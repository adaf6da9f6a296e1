import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { pbStream } from '@libp2p/utils'
import type { Libp2p } from 'libp2p'
import type { Stream } from '@libp2p/interface'
import { CID } from 'multiformats/cid'
import * as raw from 'multiformats/codecs/raw'
import { sha256 } from 'multiformats/hashes/sha2'
import type { ChordRouting } from '../../src/routing/index.ts'
import { CHORD_PROTOCOL } from '../../src/routing/chord/index.ts'
import { ChordRequestCodec, ChordResponseCodec } from '../../src/routing/chord/messages.ts'
import { clockwise, fingerStart, toPosition } from '../../src/routing/chord/ring.ts'
import { waitFor } from '../../src/utils/wait.ts'
import { ChordTestRing, createChordNode, createPlainNode, FAST_TIMERS, positionOf, type ChordNode } from '../helpers/chord-nodes.ts'

const chordRouting = (node: ChordNode): ChordRouting => {
  const routing = node.services.chord.routing()
  if (routing.overlay !== 'chord') throw new Error('not a Chord routing snapshot')
  return routing
}

const keyPosition = (node: ChordNode, key: Uint8Array): bigint => toPosition(node.services.chord.idOfKey(key))

describe('a Chord ring of 32 peers over TCP', function () {
  const r = 6
  let ring: ChordTestRing
  before(async () => {
    ring = await ChordTestRing.create(32, { successorListLength: r })
    await ring.waitStable(r)
  })
  after(async () => { await ring?.destroy() })

  it('every lookup, from any peer, returns the key\'s true successor and the true k after it', async () => {
    const all = ring.live().map(n => n.peerId.toString())
    for (let i = 0; i < 64; i++) {
      const key = randomBytes(34)
      const asker = ring.live()[i % 32]
      const k = i % 8 === 7 ? 2 * r : 3
      const result = await asker.services.chord.lookup(key, k, { signal: AbortSignal.timeout(20_000) })
      const truth = ring.responsible(keyPosition(asker, key), k)
      assert.deepEqual(result.responsible, truth, `key ${i} (k=${k}) from ${asker.peerId}`)
      // the truth function agrees: ring order over every peer
      assert.deepEqual(asker.services.chord.order(key, all).slice(0, k), truth)
      assert.equal(asker.services.chord.rank(key, truth[0], all), 0)
      assert.equal(result.messages, result.path.length)
      assert.ok(result.path.every(hop => hop.ok && hop.hop >= 1 && hop.hop <= result.hops))
    }
  })

  it('the planner proves the k responsible peers of many keys with few lookups', async () => {
    const asker = ring.live()[5]
    const keys = Array.from({ length: 400 }, () => randomBytes(34))
    const planner = asker.services.chord.planner()
    const result = await planner.plan(keys, 3, { signal: AbortSignal.timeout(30_000) })
    keys.forEach((key, i) => { assert.deepEqual(result.responsible[i], ring.responsible(keyPosition(asker, key), 3), `key ${i}`) })
    // windows of r - k + 1 = 4 peers: a ring of 32 needs about 8
    assert.ok(result.lookups <= 16, `${result.lookups} lookups`)
    // with a peer excluded, the next one takes its place
    const gone = result.responsible[0][0]
    planner.exclude([gone])
    const again = await planner.plan(keys.slice(0, 1), 3)
    assert.ok(!again.responsible[0].includes(gone))
    assert.deepEqual(again.responsible[0], ring.responsible(keyPosition(asker, keys[0]), 4).filter(p => p !== gone))
  })

  it('routing() shows the predecessor, the successor list and the distinct fingers', () => {
    const node = ring.live()[3]
    const routing = chordRouting(node)
    assert.equal(routing.self, node.peerId.toString())
    assert.equal(routing.predecessor, ring.expectedPredecessor(node))
    assert.deepEqual(routing.successors, ring.expectedSuccessors(node, r))
    const live = new Set(ring.live().map(n => n.peerId.toString()))
    const self = positionOf(node)
    let previous = -1
    for (const finger of routing.fingers) {
      assert.ok(live.has(finger.peerId))
      assert.ok(finger.index > previous)
      previous = finger.index
      // a finger lies at or after its start, never before
      const byId = ring.live().find(n => n.peerId.toString() === finger.peerId)!
      assert.ok(clockwise(self, positionOf(byId)) >= clockwise(self, fingerStart(self, finger.index)))
    }
    assert.equal(routing.fingers[0].peerId, routing.successors[0])
    assert.deepEqual(new Set(node.services.chord.knownPeers()), new Set([...routing.successors, routing.predecessor, ...routing.fingers.map(f => f.peerId)]))
  })

  it('a provider record goes to the root\'s responsible peers and is found from anywhere', async () => {
    const root = CID.createV1(raw.code, await sha256.digest(randomBytes(100)))
    const provider = ring.live()[7]
    await provider.services.chord.provide(root, { signal: AbortSignal.timeout(20_000) })
    for (const seeker of [ring.live()[0], ring.live()[20], ring.live()[31]]) {
      const found: string[] = []
      for await (const peer of seeker.services.chord.findProviders(root, { signal: AbortSignal.timeout(20_000) })) found.push(peer)
      if (seeker === provider) assert.deepEqual(found, [])
      else assert.deepEqual(found, [provider.peerId.toString()])
    }
    const unknown = CID.createV1(raw.code, await sha256.digest(randomBytes(100)))
    const none: string[] = []
    for await (const peer of ring.live()[9].services.chord.findProviders(unknown)) none.push(peer)
    assert.deepEqual(none, [])
  })
})

describe('a Chord ring of 24 peers each handed its successor list at once', function () {
  const r = 6
  let ring: ChordTestRing
  after(async () => { await ring?.destroy() })

  it('is correct at every peer after stabilization, and every lookup finds the true successor and k', async function () {
    this.timeout(120_000)
    ring = await ChordTestRing.seeded(24, r, FAST_TIMERS)
    await ring.waitStable(r)
    for (let i = 0; i < 24; i++) {
      const key = randomBytes(34)
      const asker = ring.nodes[i]
      const result = await asker.services.chord.lookup(key, 3, { signal: AbortSignal.timeout(30_000) })
      assert.deepEqual(result.responsible, ring.responsible(toPosition(asker.services.chord.idOfKey(key)), 3), `key ${i} from ${asker.peerId}`)
    }
  })
})

describe('a Chord ring of 16 peers each handed its successor list and its fingers', function () {
  // a short list, so that most keys lie past it and only fingers reach them in one step
  const r = 2
  const PEERS = 16
  let ring: ChordTestRing
  after(async () => { await ring?.destroy() })

  it('holds the handed fingers at their true indices, and its lookups go to the finger closest before the key first', async function () {
    this.timeout(120_000)
    // fix-fingers never runs here: every finger a peer holds is one it was handed
    ring = await ChordTestRing.seeded(PEERS, r, { ...FAST_TIMERS, fixFingersIntervalMs: 600_000 }, { fingers: true })
    await ring.waitStable(r)
    let handed = 0
    for (const node of ring.live()) {
      // the fingers whose start falls within the successor list are read off it; the others are the handed ones
      const truth = ring.trueFingers(node)
      const expected: Array<{ index: number, peerId: string }> = []
      for (const [i, peerId] of truth.entries()) if (peerId !== expected.at(-1)?.peerId) expected.push({ index: i, peerId })
      handed += ring.handedFingers(node, ring.expectedSuccessors(node, r)).length
      assert.deepEqual(chordRouting(node).fingers, expected, `the fingers of ${node.peerId}`)
    }
    assert.ok(handed >= PEERS, `${handed} fingers handed out in all: the test needs a ring where fingers matter`)

    // from one peer, a key just past each finger it was handed: the first peer asked is that finger
    const asker = ring.live()[0]
    const handedToAsker = chordRouting(asker).fingers.filter(f => !ring.expectedSuccessors(asker, r).includes(f.peerId))
    assert.ok(handedToAsker.length > 0)
    for (const finger of handedToAsker) {
      const at = positionOf(ring.live().find(n => n.peerId.toString() === finger.peerId)!)
      const after = positionOf(ring.live().find(n => n.peerId.toString() === ring.expectedSuccessors(ring.live().find(n => n.peerId.toString() === finger.peerId)!, 1)[0])!)
      let key: Uint8Array
      do key = randomBytes(34)
      while (!(clockwise(at, keyPosition(asker, key)) > 0n && clockwise(at, keyPosition(asker, key)) < clockwise(at, after)))
      const result = await asker.services.chord.lookup(key, 1, { signal: AbortSignal.timeout(30_000) })
      assert.deepEqual(result.responsible, ring.responsible(keyPosition(asker, key), 1))
      const { peerId, hop, ok } = result.path[0]
      assert.deepEqual({ peerId, hop, ok }, { peerId: finger.peerId, hop: 1, ok: true }, `a key past finger ${finger.index}`)
    }
  })
})

describe('a Chord ring through joins and graceful leaves', function () {
  const r = 4
  let ring: ChordTestRing
  after(async () => { await ring?.destroy() })

  it('after stabilization every live peer\'s successor is the next live peer and its list the next r', async () => {
    const handedOff: Array<{ successors: string[] }> = []
    ring = await ChordTestRing.create(12, {
      successorListLength: r,
      onLeave: async (leave) => { handedOff.push({ successors: leave.successors }) }
    })
    await ring.waitStable(r)
    await ring.add(6)
    await ring.waitStable(r)

    // five leave, one at a time, none next to another on the ring; each
    // hands its keys on (the hook) before saying goodbye
    const sorted = ring.sorted()
    const leavers = [1, 4, 8, 11, 15].map(i => sorted[i])
    for (const leaver of leavers) {
      const before = chordRouting(leaver)
      const expected = before.successors
      const predecessor = ring.live().find(n => n.peerId.toString() === before.predecessor)!
      const successor = ring.live().find(n => n.peerId.toString() === expected[0])!
      handedOff.length = 0
      if (leaver === leavers[4]) {
        // stop() leaves too (leaveOnStop, the default)
        await ring.stop(leaver)
      } else {
        await ring.leave(leaver)
      }
      assert.equal(handedOff.length, 1)
      assert.deepEqual(handedOff[0].successors, expected)
      // its neighbours closed the gap at once, without waiting for a stabilize round
      const gone = leaver.peerId.toString()
      assert.ok(!chordRouting(predecessor).successors.includes(gone))
      assert.notEqual(chordRouting(successor).predecessor, gone)
    }
    await ring.waitStable(r)
    for (const node of ring.live()) assert.deepEqual(chordRouting(node).successors, ring.expectedSuccessors(node, r))
    // and lookups agree with the ring that is left
    for (let i = 0; i < 16; i++) {
      const key = randomBytes(34)
      const asker = ring.live()[i % ring.live().length]
      const result = await asker.services.chord.lookup(key, 3, { signal: AbortSignal.timeout(20_000) })
      assert.deepEqual(result.responsible, ring.responsible(keyPosition(asker, key), 3))
    }
  })
})

describe('Chord and peers that do not speak it', function () {
  let plain: Libp2p[] = []
  let nodes: ChordNode[] = []
  after(async () => {
    await Promise.all([...plain, ...nodes].map(async n => { try { await n.stop() } catch {} }))
  })

  const plainNode = async (): Promise<Libp2p> => {
    const node = await createPlainNode()
    plain.push(node)
    return node
  }

  it('starts and stops twice harmlessly, and answers nothing once stopped', async () => {
    const a = await createChordNode()
    nodes.push(a)
    await a.services.chord.start()
    const changes: unknown[] = []
    const unsubscribe = a.services.chord.onChange(change => { changes.push(change) })
    const b = await createChordNode()
    nodes.push(b)
    await b.services.chord.join([a.getMultiaddrs()[0].toString()], { signal: AbortSignal.timeout(20_000) })
    await waitFor(() => changes.length > 0, { timeoutMs: 20_000, message: () => 'no change reported' })
    unsubscribe()
    await a.services.chord.stop()
    await a.services.chord.stop()
    await assert.rejects(a.services.chord.lookup(randomBytes(34), 1), { name: 'ChordNotRunningError' })
    await assert.rejects(b.services.chord.lookup(randomBytes(34), 0), { name: 'InvalidReplicasError' })
  })

  it('refuses a peer of another overlay, once, and never puts it on the ring', async () => {
    const refused: string[] = []
    const a = await createChordNode({ onPeerRefused: (peer) => { refused.push(peer) } })
    const b = await createChordNode()
    nodes.push(a, b)
    const other = await plainNode()
    // joining through it: the dial works, Chord does not
    const result = await a.services.chord.join([other.getMultiaddrs()[0].toString(), b.getMultiaddrs()[0].toString()], { signal: AbortSignal.timeout(20_000) })
    assert.deepEqual(result, { connected: 1, failed: 1 })
    await waitFor(() => refused.length > 0, { timeoutMs: 10_000, message: () => 'never refused' })
    // a second one only connects to it: identify tells
    const another = await plainNode()
    await another.dial(a.getMultiaddrs()[0])
    await waitFor(() => refused.includes(another.peerId.toString()), { timeoutMs: 10_000, message: () => 'identify did not refuse it' })
    // again: still logged once each
    await a.services.chord.join([other.getMultiaddrs()[0].toString()], { signal: AbortSignal.timeout(20_000) })
    assert.deepEqual(refused.sort(), [other.peerId.toString(), another.peerId.toString()].sort())
    await waitFor(() => chordRouting(a).successors[0] === b.peerId.toString(), { timeoutMs: 20_000, message: () => 'a never found b' })
    const known = a.services.chord.knownPeers()
    assert.ok(!known.includes(other.peerId.toString()))
    assert.ok(!known.includes(another.peerId.toString()))
  })

  it('resets a stream on a malformed, oversized or forged request and goes on serving', async () => {
    const a = await createChordNode()
    const b = await createChordNode()
    nodes.push(a, b)
    await b.services.chord.join([a.getMultiaddrs()[0].toString()], { signal: AbortSignal.timeout(20_000) })
    await waitFor(() => chordRouting(a).successors[0] === b.peerId.toString() && chordRouting(b).successors[0] === a.peerId.toString(), { timeoutMs: 20_000, message: () => 'a and b never formed a ring' })
    const hostile = await plainNode()
    const own = { id: hostile.peerId.toMultihash().bytes, addrs: [] }
    const attempts: Array<{ name: string, send: (pb: ReturnType<typeof pbStream<Stream>>) => Promise<void> }> = [
      { name: 'garbage', send: async pb => { pb.unwrap().send(Uint8Array.from([0x05, 0xff, 0xff, 0xff, 0xff, 0xff])) } },
      { name: 'over the size limit', send: async pb => { pb.unwrap().send(Uint8Array.from([0xff, 0xff, 0xff, 0x7f])) } },
      { name: 'two operations', send: async pb => { await pb.write({ from: own, ping: {}, get_state: { notify: false } }, ChordRequestCodec) } },
      { name: 'a forged sender', send: async pb => { await pb.write({ from: { id: b.peerId.toMultihash().bytes, addrs: [] }, ping: {} }, ChordRequestCodec) } },
      { name: 'a short key', send: async pb => { await pb.write({ from: own, find_successor: { key: new Uint8Array(5) } }, ChordRequestCodec) } }
    ]
    for (const attempt of attempts) {
      const stream = await hostile.dialProtocol(a.getMultiaddrs()[0], CHORD_PROTOCOL)
      const pb = pbStream(stream)
      await attempt.send(pb)
      await assert.rejects(pb.read(ChordResponseCodec, { signal: AbortSignal.timeout(10_000) }), (err: Error) => err.name !== 'TimeoutError' && err.name !== 'AbortError', attempt.name)
    }
    // a well-formed ping on a fresh stream is answered
    const stream = await hostile.dialProtocol(a.getMultiaddrs()[0], CHORD_PROTOCOL)
    const pb = pbStream(stream)
    await pb.write({ from: own, ping: {} }, ChordRequestCodec)
    const pong = await pb.read(ChordResponseCodec, { signal: AbortSignal.timeout(10_000) })
    assert.ok(pong.ack != null)
    // and the ring still works
    const result = await b.services.chord.lookup(randomBytes(34), 2, { signal: AbortSignal.timeout(10_000) })
    assert.deepEqual(new Set(result.responsible), new Set([a.peerId.toString(), b.peerId.toString()]))
  })
})
