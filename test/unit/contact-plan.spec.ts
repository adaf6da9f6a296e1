import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { planContacts } from '../../src/swarm/contact-plan.ts'
import { commonPrefixLength, compareDistance } from '../../src/routing/kademlia/kad-distance.ts'

const ids = (n: number): Uint8Array[] => Array.from({ length: n }, () => randomBytes(32))

/** Each peer's contacts as sets, from the dial lists; fails on a pair dialled twice. */
function contactSets (n: number, dials: number[][]): Array<Set<number>> {
  const sets = Array.from({ length: n }, () => new Set<number>())
  dials.forEach((list, i) => {
    for (const j of list) {
      assert.notEqual(i, j, `peer ${i} dials itself`)
      assert.ok(!sets[i].has(j), `pair ${i}-${j} dialled twice`)
      sets[i].add(j)
      sets[j].add(i)
    }
  })
  return sets
}

describe('swarm contact plan', () => {
  it('counts leading bits in common', () => {
    const a = new Uint8Array([0b1010_0000, 0])
    assert.equal(commonPrefixLength(a, new Uint8Array([0b0010_0000, 0])), 0)
    assert.equal(commonPrefixLength(a, new Uint8Array([0b1011_0000, 0])), 3)
    assert.equal(commonPrefixLength(a, new Uint8Array([0b1010_0000, 1])), 15)
    assert.equal(commonPrefixLength(a, a), 16)
  })

  it('connects every pair of a swarm of up to k+1 peers', () => {
    for (const n of [1, 2, 5, 21]) {
      const plan = planContacts(ids(n), { minContacts: 20 })
      const sets = contactSets(n, plan.dials)
      sets.forEach((set, i) => { assert.equal(set.size, n - 1, `peer ${i} of ${n}`) })
    }
  })

  it('gives each of 100 peers at least k contacts: its closest and some in every bucket, about k connections each', () => {
    const n = 100
    const kadIds = ids(n)
    const plan = planContacts(kadIds, { minContacts: 20, near: 8, perBucket: 2 })
    const sets = contactSets(n, plan.dials)
    let edges = 0
    for (let i = 0; i < n; i++) {
      edges += plan.dials[i].length
      assert.ok(sets[i].size >= 20, `peer ${i} has ${sets[i].size} contacts`)
      assert.deepEqual(new Set(plan.contacts[i]), sets[i])
      const byDistance = plan.byDistance[i]
      assert.equal(byDistance.length, n - 1)
      for (let r = 1; r < byDistance.length; r++) assert.ok(compareDistance(kadIds[i], kadIds[byDistance[r - 1]], kadIds[byDistance[r]]) < 0)
      for (const j of byDistance.slice(0, 8)) assert.ok(sets[i].has(j), `peer ${i}: close peer ${j} missing`)
      // every bucket some other peer falls in holds a contact
      const buckets = new Set(byDistance.map(j => commonPrefixLength(kadIds[i], kadIds[j])))
      const covered = new Set([...sets[i]].map(j => commonPrefixLength(kadIds[i], kadIds[j])))
      assert.deepEqual(covered, buckets, `peer ${i}`)
    }
    // 1,000 connections is the least that gives 100 peers 20 contacts each
    assert.ok(edges <= 1100, `${edges} connections`)
    // the dials are spread: no peer has to make many more than its share
    assert.ok(Math.max(...plan.dials.map(d => d.length)) <= 14)
  })
})
