import assert from 'node:assert/strict'
import { defaultConfig, parseApiAddress, validateConfig } from '../../src/peer/config.ts'

describe('config validation', () => {
  it('accepts the defaults and fills missing sections from them', () => {
    assert.deepEqual(validateConfig(defaultConfig(), 'c.json'), defaultConfig())
    const partial = validateConfig({ replicas: 5 }, 'c.json')
    assert.equal(partial.replicas, 5)
    assert.deepEqual(partial.dht, defaultConfig().dht)
    assert.equal(partial.overlay, 'kademlia')
    assert.deepEqual(validateConfig({ overlay: 'chord', chord: { successorListLength: 8 } }, 'c.json').chord, { successorListLength: 8 })
    assert.deepEqual(validateConfig({ storage: { quota: '20GiB' } }, 'c.json').storage, { quota: '20GiB', replicaQuota: 'auto', sync: true })
    assert.deepEqual(validateConfig({ storage: { quota: 1000, sync: false } }, 'c.json').storage, { quota: 1000, replicaQuota: 'auto', sync: false })
    assert.deepEqual(validateConfig({ storage: { replicaQuota: '1GiB' } }, 'c.json').storage, { quota: 'auto', replicaQuota: '1GiB', sync: true })
    assert.deepEqual(defaultConfig().connections.allow, [], 'no address is exempt from the inbound limits by default')
    assert.deepEqual(validateConfig({ connections: { allow: ['/ip4/127.0.0.1', '/ip4/10.0.0.0/ipcidr/8'] } }, 'c.json').connections.allow, ['/ip4/127.0.0.1', '/ip4/10.0.0.0/ipcidr/8'])
  })

  const bad: Array<[string, unknown, RegExp]> = [
    ['a non-integer replica count', { replicas: 'three' }, /field "replicas" must be an integer/],
    ['a bad listen multiaddr', { listen: ['/ip4/nope/tcp/1'] }, /field "listen\[0\]" is not a valid multiaddr/],
    ['a bootstrap address without a peer ID', { bootstrap: ['/ip4/127.0.0.1/tcp/4101'] }, /field "bootstrap\[0\]" must end in \/p2p/],
    ['a public API host', { api: '0.0.0.0:5101' }, /field "api".*loopback/],
    ['an unknown field', { replica: 3 }, /field "replica" is not a known setting/],
    ['an unknown nested field', { dht: { k: 3 } }, /field "dht.k" is not a known setting/],
    ['a k-bucket size out of range', { dht: { kBucketSize: 1 } }, /field "dht.kBucketSize" must be an integer from 2/],
    ['an array at the root', [], /field "\(root\)" must be a JSON object/],
    ['an overlay Shoal does not have', { overlay: 'pastry' }, /field "overlay" must be "kademlia" or "chord", got "pastry"/],
    ['a successor list out of range', { chord: { successorListLength: 0 } }, /field "chord.successorListLength" must be an integer from 1 to 64, got 0/],
    ['a quota that is not a size', { storage: { quota: 'lots' } }, /field "storage.quota" must be "auto", a byte count or a size like "20GiB", got "lots"/],
    ['a replica quota that is not a size', { storage: { replicaQuota: 'lots' } }, /field "storage.replicaQuota" must be "auto", a byte count or a size/],
    ['a negative quota', { storage: { quota: -1 } }, /field "storage.quota" must be "auto"/],
    ['an allow entry that is not an IP range', { connections: { allow: ['/ip4/127.0.0.1/tcp/4101'] } }, /field "connections.allow\[0\]" must be an address or range/],
    ['a privateAddresses setting that is neither a boolean nor "auto"', { connections: { privateAddresses: 'yes' } }, /field "connections.privateAddresses" must be true, false or "auto"/],
    ['a low connection watermark above the high one', { connections: { highWater: 10, lowWater: 20 } }, /field "connections.lowWater" must not be above connections.highWater \(10\), got 20/],
    ['a negative grace period', { connections: { gracePeriodSeconds: -1 } }, /field "connections.gracePeriodSeconds" must be an integer from 0/],
    ['a sync flag that is not a boolean', { storage: { sync: 'yes' } }, /field "storage.sync" must be true or false/]
  ]
  for (const [what, raw, message] of bad) {
    it(`refuses ${what}, naming the file and the field`, () => {
      assert.throws(() => validateConfig(raw, '/r/config.json'), (err: Error) => {
        assert.equal(err.name, 'InvalidConfigError')
        assert.match(err.message, /^invalid config \/r\/config.json: /)
        assert.match(err.message, message)
        assert.equal(err.message.includes('\n'), false)
        return true
      })
    })
  }

  it('parses loopback API addresses only', () => {
    assert.deepEqual(parseApiAddress('127.0.0.1:0'), { host: '127.0.0.1', port: 0 })
    assert.deepEqual(parseApiAddress('[::1]:5101'), { host: '::1', port: 5101 })
    assert.throws(() => parseApiAddress('192.168.1.2:5101'), /loopback/)
    assert.throws(() => parseApiAddress('127.0.0.1'), /HOST:PORT/)
    assert.throws(() => parseApiAddress('127.0.0.1:70000'), /out of range/)
  })
})
