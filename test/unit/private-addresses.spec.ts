import assert from 'node:assert/strict'
import { isPrivateAddress, privateAddressesAllowed } from '../../src/routing/private-addresses.ts'

describe('private addresses', () => {
  it('loopback, private, shared, link-local and unspecified ranges are private; auto follows the peer\'s own addresses', () => {
    for (const a of ['/ip4/127.0.0.1/tcp/1', '/ip4/10.1.2.3/tcp/1', '/ip4/192.168.1.1/tcp/1', '/ip4/172.20.0.1/tcp/1',
      '/ip4/100.64.0.1/tcp/1', '/ip4/169.254.1.1/tcp/1', '/ip4/0.0.0.0/tcp/1', '/ip6/::1/tcp/1', '/ip6/fd00::1/tcp/1',
      '/ip6/fe80::1/tcp/1', '/ip6/::ffff:127.0.0.1/tcp/1']) assert.equal(isPrivateAddress(a), true, a)
    for (const a of ['/ip4/8.8.8.8/tcp/1', '/ip4/203.0.113.7/tcp/1', '/ip6/2001:db8::1/tcp/1', '/dns4/example.com/tcp/1']) assert.equal(isPrivateAddress(a), false, a)
    assert.equal(privateAddressesAllowed('auto', ['/ip4/127.0.0.1/tcp/0']), true)
    assert.equal(privateAddressesAllowed('auto', ['/ip4/10.0.0.2/tcp/4101']), true)
    assert.equal(privateAddressesAllowed('auto', ['/ip4/0.0.0.0/tcp/4101']), false, 'a wildcard listens on public interfaces too')
    assert.equal(privateAddressesAllowed('auto', ['/ip4/10.0.0.2/tcp/4101'], ['/ip4/8.8.8.8/tcp/4101']), false, 'a public announce address')
    assert.equal(privateAddressesAllowed(false, ['/ip4/127.0.0.1/tcp/0']), false)
    assert.equal(privateAddressesAllowed(true, ['/ip4/0.0.0.0/tcp/0']), true)
  })
})
