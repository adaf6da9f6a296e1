import assert from 'node:assert/strict'
import { parseGroups } from '../../src/swarm/lab/partition.ts'
import { planLab, peerAddress } from '../../src/swarm/lab/topology.ts'
import { tbfSpec } from '../../src/swarm/lab/links.ts'
import { UNLIMITED_LINK } from '../../src/swarm/lab/index.ts'

describe('lab partitions, addresses and links', () => {
  it('reads groups of indexes and ranges; peers no group names form one more group', () => {
    assert.deepEqual(parseGroups('0-9|10-19', 20), [[0, 1, 2, 3, 4, 5, 6, 7, 8, 9], [10, 11, 12, 13, 14, 15, 16, 17, 18, 19]])
    assert.deepEqual(parseGroups('0,2|1,3', 4), [[0, 2], [1, 3]])
    assert.deepEqual(parseGroups('3', 5), [[3], [0, 1, 2, 4]])
    assert.deepEqual(parseGroups('0, 1 |2', 3), [[0, 1], [2]])
  })

  it('refuses a peer out of range, in two groups, a backwards range, junk, and a "partition" of one group', () => {
    assert.throws(() => parseGroups('0-4|5-9', 8), { name: 'InvalidInputError', message: '--groups: peer 9 does not exist (the swarm has peers 0 to 7)' })
    assert.throws(() => parseGroups('0-4|4-7', 8), { message: '--groups: peer 4 is in two groups' })
    assert.throws(() => parseGroups('5-2', 8), { message: '--groups: range 5-2 runs backwards' })
    assert.throws(() => parseGroups('a|b', 8), /is not a peer index or a range/)
    assert.throws(() => parseGroups('0-7', 8), { message: '--groups: a partition needs at least two groups of peers' })
  })

  it('keeps the peers of one host process in one group', () => {
    const lab = planLab('/tmp/some-swarm', [[0, 1], [2, 3]], () => UNLIMITED_LINK)
    assert.deepEqual(parseGroups('0-1|2-3', 4, lab), [[0, 1], [2, 3]])
    assert.throws(() => parseGroups('0|1-3', 4, lab), { name: 'NotALabSwarmError', message: /peers 0-1 share one host process/ })
  })

  it('derives names from the folder and gives peer i the address 10.77.0.0 + i + 1', () => {
    const a = planLab('/tmp/swarm-a', [[0], [1]], () => UNLIMITED_LINK)
    const b = planLab('/tmp/swarm-b', [[0], [1]], () => UNLIMITED_LINK)
    assert.notEqual(a.id, b.id)
    assert.equal(planLab('/tmp/swarm-a/', [[0]], () => UNLIMITED_LINK).id, a.id, 'the same folder, the same names')
    assert.deepEqual(a.hosts.map(h => h.namespace), [`shoal-${a.id}-h0`, `shoal-${a.id}-h1`])
    assert.equal(a.switchNamespace, `shoal-${a.id}-sw`)
    assert.deepEqual([0, 1, 253, 254, 255, 499].map(peerAddress), ['10.77.0.1', '10.77.0.2', '10.77.0.254', '10.77.0.255', '10.77.1.0', '10.77.1.244'])
  })

  it('caps a link with a tbf whose burst is 5 ms of the rate, never under a few frames', () => {
    assert.equal(tbfSpec(16 * 1024 * 1024), 'tbf rate 134217728bit burst 83887 latency 20ms')
    assert.equal(tbfSpec(100 * 1024), 'tbf rate 819200bit burst 4096 latency 20ms')
  })
})
