import assert from 'node:assert/strict'
import { parseRange } from '../../src/api/content-routes.ts'
import { formatBytes, parseByteSize } from '../../src/utils/bytes.ts'

describe('HTTP Range parsing', () => {
  const size = 1000
  const cases: Array<[string | undefined, ReturnType<typeof parseRange>]> = [
    [undefined, undefined],
    ['bytes=0-0', { offset: 0, length: 1 }],
    ['bytes=10-19', { offset: 10, length: 10 }],
    ['bytes=990-', { offset: 990, length: 10 }],
    ['bytes=990-5000', { offset: 990, length: 10 }],
    ['bytes=-10', { offset: 990, length: 10 }],
    ['bytes=-5000', { offset: 0, length: 1000 }],
    ['bytes=1000-', 'unsatisfiable'],
    ['bytes=-0', 'unsatisfiable'],
    ['bytes=20-10', undefined],
    ['bytes=0-1,5-6', undefined],
    ['items=0-1', undefined],
    ['bytes=-', undefined]
  ]
  for (const [header, expected] of cases) {
    it(`${header ?? '(none)'} -> ${JSON.stringify(expected)}`, () => {
      assert.deepEqual(parseRange(header, size), expected)
    })
  }
})

describe('byte sizes', () => {
  it('parses counts and units, refuses the rest', () => {
    assert.equal(parseByteSize('1048576'), 1048576)
    assert.equal(parseByteSize('256KiB'), 262144)
    assert.equal(parseByteSize('1 MiB'), 1048576)
    assert.equal(parseByteSize('1.5GB'), 1.5e9)
    assert.equal(parseByteSize('20gib'), 20 * 2 ** 30)
    for (const bad of ['', 'MiB', '-1', '1 parsec', '1e3']) assert.equal(parseByteSize(bad), undefined, bad)
    assert.equal(formatBytes(1536), '1.5 KiB')
    assert.equal(formatBytes(Infinity), 'unlimited')
  })
})
