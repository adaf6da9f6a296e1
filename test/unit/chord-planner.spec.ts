import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { ChordPlanner, type PlannerRing } from '../../src/routing/chord/planner.ts'
import { clockwise, fromPosition, inHalfOpen, toPosition } from '../../src/routing/chord/ring.ts'
import type { RingWindow } from '../../src/routing/chord/ring-state.ts'

/**
 * A scripted ring: peers at random positions, every successor list exactly
 * the next r peers (a stabilized ring), and a lookup that answers with the
 * true predecessor's list. Keys are given as their own 32-byte positions.
 */
class ScriptedRing implements PlannerRing {
  readonly peers: string[]
  readonly position = new Map<string, bigint>()
  readonly lookedUp: bigint[] = []
  private readonly r: number
  private readonly self: string

  constructor (count: number, r: number) {
    this.r = r
    const named = Array.from({ length: count }, (_, i) => ({ name: `p${i}`, at: toPosition(randomBytes(32)) }))
    named.sort((a, b) => (a.at < b.at ? -1 : 1))
    this.peers = named.map(p => p.name)
    for (const p of named) this.position.set(p.name, p.at)
    this.self = this.peers[Math.floor(count / 2)]
  }

  /** The peer at index i's window: its successor list (closed with itself when the ring is small). */
  windowOf (i: number, count = this.r): RingWindow {
    const n = this.peers.length
    const length = Math.min(Math.max(count, this.r), n - 1)
    const peers = Array.from({ length }, (_, j) => this.peers[(i + 1 + j) % n])
    const complete = n - 1 <= Math.max(count, this.r)
    return { left: this.peers[i], peers: complete ? [...peers, this.peers[i]] : peers, complete }
  }

  predecessorIndex (key: bigint): number {
    const n = this.peers.length
    for (let i = 0; i < n; i++) {
      if (inHalfOpen(this.position.get(this.peers[i])!, key, this.position.get(this.peers[(i + 1) % n])!)) return i
    }
    throw new Error('unreachable')
  }

  ownWindow (): RingWindow {
    const i = this.peers.indexOf(this.self)
    const own = this.windowOf(i)
    if (own.complete) return own
    return { left: this.peers[(i - 1 + this.peers.length) % this.peers.length], peers: [this.self, ...own.peers], complete: false }
  }

  async findWindow (key: bigint, count: number): Promise<RingWindow> {
    this.lookedUp.push(key)
    return this.windowOf(this.predecessorIndex(key), count)
  }

  positionOfKey = (key: Uint8Array): bigint => toPosition(key)
  positionOfPeer = (peer: string): bigint => this.position.get(peer)!

  /** The true k responsible peers of a key among the peers not excluded. */
  truth (key: bigint, k: number, excluded = new Set<string>()): string[] {
    return this.peers
      .filter(p => !excluded.has(p))
      .sort((a, b) => {
        const da = clockwise(key, this.position.get(a)!)
        const db = clockwise(key, this.position.get(b)!)
        return da < db ? -1 : 1
      })
      .slice(0, k)
  }

  /**
   * The fewest lookups any planner could prove the keys with, by brute
   * force: drop the keys this peer's own window covers, then for every
   * choice of first key, cover the rest greedily around the ring.
   */
  fewestLookups (keys: bigint[], k: number): number {
    const own = this.ownWindow()
    const ownEnd = this.position.get(own.peers[own.peers.length - k])!
    const left = keys.filter(key => !inHalfOpen(this.position.get(own.left)!, key, ownEnd)).sort((a, b) => (a < b ? -1 : 1))
    if (left.length === 0) return 0
    const covers = (window: RingWindow, key: bigint): boolean =>
      inHalfOpen(this.position.get(window.left)!, key, this.position.get(window.peers[window.peers.length - k])!)
    // for each key, the first key (in ring order) its own lookup's window does not cover
    const n = left.length
    const windows = left.map(key => this.windowOf(this.predecessorIndex(key)))
    const next = left.map((_, i) => {
      let j = 1
      while (j < n && covers(windows[i], left[(i + j) % n])) j++
      return j
    })
    let best = Infinity
    for (let start = 0; start < n; start++) {
      let count = 0
      for (let j = 0; j < n; j += next[(start + j) % n]) count++
      best = Math.min(best, count)
    }
    return best
  }
}

const randomKeys = (count: number): Uint8Array[] => Array.from({ length: count }, () => Uint8Array.from(randomBytes(32)))

describe('chord planner', () => {
  it('gives every key its true k responsible peers, with the fewest lookups the windows allow (one at a time)', async () => {
    const ring = new ScriptedRing(200, 16)
    const keys = randomKeys(1000)
    const planner = new ChordPlanner(ring, { lookupsAtOnce: 1 })
    const result = await planner.plan(keys, 3)
    keys.forEach((key, i) => { assert.deepEqual(result.responsible[i], ring.truth(toPosition(key), 3), `key ${i}`) })
    const fewest = ring.fewestLookups(keys.map(toPosition), 3)
    // greedy from the lowest key is optimal on an arc; where the ring wraps past 0 it may take one more
    assert.ok(result.lookups >= fewest && result.lookups <= fewest + 1, `${result.lookups} lookups, fewest possible ${fewest}`)
    assert.ok(result.lookups < 200 / 14 + 2, `${result.lookups} lookups for 1000 keys on 200 peers`)
  })

  it('stays exact when it looks up several keys a round', async () => {
    const ring = new ScriptedRing(300, 16)
    const keys = randomKeys(2000)
    const result = await new ChordPlanner(ring).plan(keys, 5)
    keys.forEach((key, i) => { assert.deepEqual(result.responsible[i], ring.truth(toPosition(key), 5), `key ${i}`) })
    const fewest = ring.fewestLookups(keys.map(toPosition), 5)
    // predictions may overlap windows; never more than twice the fewest
    assert.ok(result.lookups >= fewest && result.lookups <= 2 * fewest + 1, `${result.lookups} lookups, fewest possible ${fewest}`)
  })

  it('proves a key up to s_(m-k) of a window and looks up the next one past it', async () => {
    const ring = new ScriptedRing(100, 8)
    const k = 3
    // a window far from this peer's own
    const own = ring.ownWindow()
    const at = (ring.peers.indexOf(own.left) + 50) % 100
    const window = ring.windowOf(at)
    const edge = ring.position.get(window.peers[window.peers.length - k])!
    const first = ring.position.get(window.peers[0])!
    const keys = [first, edge].map(fromPosition)
    let result = await new ChordPlanner(ring, { lookupsAtOnce: 1 }).plan(keys, k)
    assert.equal(result.lookups, 1)
    // one past the edge: the peer after s_(m-k) might not be the last responsible one any more
    result = await new ChordPlanner(ring, { lookupsAtOnce: 1 }).plan([first, edge + 1n].map(fromPosition), k)
    assert.equal(result.lookups, 2)
    assert.deepEqual(result.responsible[1], ring.truth(edge + 1n, k))
  })

  it('needs no lookup for keys its own predecessor and successor list cover, nor in a ring of r+1 peers or fewer', async () => {
    const ring = new ScriptedRing(100, 16)
    const own = ring.ownWindow()
    const start = ring.position.get(own.left)!
    const keys = [start + 1n, ring.position.get(own.peers[5])!].map(fromPosition)
    let result = await new ChordPlanner(ring).plan(keys, 3)
    assert.equal(result.lookups, 0)
    keys.forEach((key, i) => { assert.deepEqual(result.responsible[i], ring.truth(toPosition(key), 3)) })

    const small = new ScriptedRing(17, 16)
    const many = randomKeys(300)
    result = await new ChordPlanner(small).plan(many, 4)
    assert.equal(result.lookups, 0)
    many.forEach((key, i) => { assert.deepEqual(result.responsible[i], small.truth(toPosition(key), 4)) })
  })

  it('leaves excluded peers out and still proves the rest from the same windows', async () => {
    const ring = new ScriptedRing(150, 16)
    const keys = randomKeys(600)
    const excluded = new Set(ring.peers.filter((_, i) => i % 7 === 3))
    const planner = new ChordPlanner(ring)
    planner.exclude(excluded)
    const result = await planner.plan(keys, 3)
    keys.forEach((key, i) => {
      assert.deepEqual(result.responsible[i], ring.truth(toPosition(key), 3, excluded), `key ${i}`)
      for (const peer of result.responsible[i]) assert.ok(!excluded.has(peer))
    })
    // a second plan reuses what the planner learned
    const again = await planner.plan(keys, 3)
    assert.equal(again.lookups, 0)
    assert.deepEqual(again.responsible, result.responsible)
  })
})
