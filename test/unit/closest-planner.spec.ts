/**
 * The ClosestPlanner against a scripted network (no libp2p): peers are
 * names, the lookup answers exactly what kad-dht's would (the DHT's k
 * closest peers to the key, the asking peer left out), and the truth is
 * XOR order over every peer.
 */
import assert from 'node:assert/strict'
import { createHash, randomBytes } from 'node:crypto'
import { ClosestPlanner } from '../../src/routing/kademlia/closest-planner.ts'
import { compareDistance, kadIdOfKey } from '../../src/routing/kademlia/kad-distance.ts'

const LOOKUP_SIZE = 20
const SELF = 'self'

const ids = new Map<string, Uint8Array>()
function idOf (peer: string): Uint8Array {
  let id = ids.get(peer)
  if (id == null) ids.set(peer, id = createHash('sha256').update(peer).digest())
  return id
}

/** `peers` in XOR order to `key`, closest first. */
function byDistance (key: Uint8Array, peers: string[]): string[] {
  const target = kadIdOfKey(key)
  return [...peers].sort((a, b) => compareDistance(target, idOf(a), idOf(b)))
}

interface ScriptedNetwork {
  planner: ClosestPlanner
  /** Keys looked up, in order. */
  looked: Uint8Array[]
  /** How many peers each lookup asked for, in order. */
  widths: number[]
  /** Most lookups that were in flight at once. */
  maxInFlight: () => number
}

/**
 * This peer in a network of `others`, knowing `known` of them. Its lookups
 * answer from the whole network, as a DHT walk would, after a tick.
 */
function scripted (others: string[], known: string[]): ScriptedNetwork {
  const looked: Uint8Array[] = []
  const widths: number[] = []
  let inFlight = 0
  let most = 0
  const planner = new ClosestPlanner({
    selfId: SELF,
    knownPeers: () => known,
    lookup: async (key, count) => {
      looked.push(key)
      widths.push(count)
      most = Math.max(most, ++inFlight)
      await new Promise(resolve => setImmediate(resolve))
      inFlight--
      return byDistance(key, others).slice(0, count)
    },
    lookupSize: LOOKUP_SIZE,
    idOfPeer: idOf
  })
  return { planner, looked, widths, maxInFlight: () => most }
}

/** A Kademlia routing table of this peer: its 20 nearest neighbours (a name's ID is the sha2-256 a key of its bytes gets) and 10 far peers. */
const kademliaTable = (others: string[]): string[] => [...byDistance(Buffer.from(SELF), others).slice(0, 20), ...others.slice(0, 10)]
const names = (n: number, prefix = 'peer'): string[] => Array.from({ length: n }, (_, i) => `${prefix}-${i}`)
const randomKeys = (n: number): Uint8Array[] => Array.from({ length: n }, () => randomBytes(34))

describe('closest planner', function () {
  it('proves each key\'s k closest from a few lookups: exact answers for 200 keys in a network of 300', async () => {
    const others = names(300)
    // the routing table knows a few peers, none of them necessarily close to any key
    const known = others.slice(0, 12)
    const keys = randomKeys(200)
    const { planner, looked, maxInFlight } = scripted(others, known)
    const plan = await planner.plan(keys, 3)
    keys.forEach((key, i) => {
      assert.deepEqual(plan.responsible[i], byDistance(key, [...others, SELF]).slice(0, 3), `key ${i}`)
    })
    // the routing table alone would have answered wrongly: the lookups did the work
    assert.ok(keys.some(key => byDistance(key, [...known, SELF])[0] !== byDistance(key, [...others, SELF])[0]))
    assert.equal(plan.lookups, looked.length)
    assert.ok(plan.lookups >= 2 && plan.lookups < keys.length / 2, `${plan.lookups} lookups for ${keys.length} keys`)
    assert.ok(maxInFlight() <= 4, `at most 4 lookups at once, saw ${maxInFlight()}`)
  })

  it('takes a lookup that returns fewer peers than the DHT\'s k as the whole network: one lookup covers every key', async () => {
    const others = names(12)
    const keys = randomKeys(50)
    const { planner, looked } = scripted(others, others.slice(0, 3))
    const plan = await planner.plan(keys, 3)
    assert.equal(plan.lookups, 1)
    assert.equal(looked.length, 1)
    keys.forEach((key, i) => { assert.deepEqual(plan.responsible[i], byDistance(key, [...others, SELF]).slice(0, 3)) })
  })

  it('counts this peer in when it is among the closest, and alone in an empty network', async () => {
    const keys = randomKeys(10)
    const alone = await scripted([], []).planner.plan(keys, 3)
    assert.deepEqual(alone.responsible, keys.map(() => [SELF]))
    // a key this peer is closest to, in a small network
    const others = names(5)
    const mine = randomKeys(200).find(key => byDistance(key, [...others, SELF])[0] === SELF)
    assert.ok(mine != null)
    const plan = await scripted(others, others).planner.plan([mine], 3)
    assert.equal(plan.responsible[0][0], SELF)
  })

  it('plans nobody, after one lookup, when this peer is excluded and knows no other (a leaving or lone peer handing its blocks on)', async () => {
    const { planner, looked } = scripted([], [])
    planner.exclude([SELF])
    const keys = randomKeys(5)
    const plan = await planner.plan(keys, 3, { signal: AbortSignal.timeout(5_000) })
    assert.deepEqual(plan.responsible, keys.map(() => []))
    assert.equal(looked.length, 1)
  })

  it('leaves excluded peers out of every later plan, even while lookups still name them, and picks the next closest', async () => {
    const others = names(60)
    const keys = randomKeys(40)
    const { planner } = scripted(others, others.slice(0, 20))
    const first = await planner.plan(keys, 3)
    const counts = new Map<string, number>()
    for (const peers of first.responsible) for (const p of peers) if (p !== SELF) counts.set(p, (counts.get(p) ?? 0) + 1)
    const gone = [...counts].sort((a, b) => b[1] - a[1]).slice(0, 2).map(([p]) => p)
    planner.exclude(gone)
    const again = await planner.plan(keys, 3)
    const alive = [...others.filter(p => !gone.includes(p)), SELF]
    keys.forEach((key, i) => {
      assert.ok(!again.responsible[i].some(p => gone.includes(p)), `key ${i} planned on an excluded peer`)
      assert.deepEqual(again.responsible[i], byDistance(key, alive).slice(0, 3), `key ${i}`)
    })
  })

  it('plans at most the DHT\'s k peers per key, since no lookup could prove more', async () => {
    const others = names(100)
    const [key] = randomKeys(1)
    const plan = await scripted(others, []).planner.plan([key], 50)
    assert.deepEqual(plan.responsible[0], byDistance(key, [...others, SELF]).slice(0, LOOKUP_SIZE))
  })

  it('looks a few keys up each for its own k in a large network whose table knows this peer\'s neighbours, and is exact', async () => {
    const others = names(1000)
    const known = kademliaTable(others)
    const keys = randomKeys(5)
    const { planner, widths } = scripted(others, known)
    const plan = await planner.plan(keys, 3)
    keys.forEach((key, i) => { assert.deepEqual(plan.responsible[i], byDistance(key, [...others, SELF]).slice(0, 3), `key ${i}`) })
    assert.equal(widths.length, keys.length)
    assert.ok(widths.every(w => w === 3), `lookup widths ${widths.join(',')}`)
  })

  it('looks many keys up at full width in the same network: each lookup proves a region', async () => {
    const others = names(1000)
    const known = kademliaTable(others)
    const keys = randomKeys(200)
    const { planner, widths } = scripted(others, known)
    const plan = await planner.plan(keys, 3)
    keys.forEach((key, i) => { assert.deepEqual(plan.responsible[i], byDistance(key, [...others, SELF]).slice(0, 3), `key ${i}`) })
    assert.ok(widths.every(w => w === LOOKUP_SIZE), `lookup widths ${widths.join(',')}`)
  })

  it('widens a key\'s lookup when its narrow one named excluded peers, and ends even when every peer a lookup could name is excluded', async () => {
    const others = names(1000)
    const known = kademliaTable(others)
    const [key] = randomKeys(1)
    const { planner, widths } = scripted(others, known)
    const truth = byDistance(key, others)
    // the key's 3 closest gone, but not yet excluded when the plan starts: excluded before it
    planner.exclude(truth.slice(0, 3))
    const plan = await planner.plan([key], 3)
    assert.deepEqual(plan.responsible[0], byDistance(key, [...truth.slice(3), SELF]).slice(0, 3))
    // a narrow lookup wide enough for k past the 3 excluded
    assert.deepEqual(widths, [6])

    // more excluded than a full-width lookup returns: the planner gives the best it knows, after a bounded number of lookups
    const crowded = scripted(others, known)
    crowded.planner.exclude(truth.slice(0, LOOKUP_SIZE + 5))
    const best = await crowded.planner.plan([key], 3, { signal: AbortSignal.timeout(5_000) })
    assert.ok(crowded.widths.length <= 2, `${crowded.widths.length} lookups`)
    assert.ok(!best.responsible[0].some(p => truth.slice(0, LOOKUP_SIZE + 5).includes(p)))
  })

  it('stops when its signal is aborted', async () => {
    const { planner } = scripted(names(300), [])
    const controller = new AbortController()
    controller.abort()
    await assert.rejects(planner.plan(randomKeys(5), 3, { signal: controller.signal }), { name: 'AbortError' })
  })
})
