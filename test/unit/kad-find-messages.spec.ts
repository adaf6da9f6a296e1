/**
 * The checks an answer of /shoal/kad/find/1.0.0 goes through before a
 * lookup sees it (find-messages.ts), and the KadAddressBook's rule that a
 * peer's own announced addresses are never replaced by hearsay.
 */
import assert from 'node:assert/strict'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import type { PeerId } from '@libp2p/interface'
import { multiaddr } from '@multiformats/multiaddr'
import { KadAddressBook } from '../../src/routing/kademlia/address-book.ts'
import { checkRequest, decodeResponse, encodePeer, FindResponseCodec } from '../../src/routing/kademlia/find-messages.ts'

const newPeer = async (): Promise<PeerId> => peerIdFromPrivateKey(await generateKeyPair('Ed25519'))

describe('kad find messages', () => {
  it('decodes an answer\'s peers with their addresses ending in /p2p/<id>', async () => {
    const [from, a, b] = await Promise.all([newPeer(), newPeer(), newPeer()])
    const bytes = FindResponseCodec.encode({ closer: [encodePeer({ id: a, multiaddrs: [multiaddr('/ip4/127.0.0.1/tcp/4001')] }), encodePeer({ id: b, multiaddrs: [] })] })
    const peers = decodeResponse(FindResponseCodec.decode(bytes), 3, from.toString())
    assert.deepEqual(peers.map(p => p.id.toString()), [a.toString(), b.toString()])
    assert.deepEqual(peers[0].multiaddrs.map(String), [`/ip4/127.0.0.1/tcp/4001/p2p/${a}`])
    assert.deepEqual(peers[1].multiaddrs, [])
  })

  it('refuses an answer with more peers than asked, naming the answerer, a bad peer ID or another peer\'s address', async () => {
    const [from, a, b] = await Promise.all([newPeer(), newPeer(), newPeer()])
    const addr = multiaddr('/ip4/127.0.0.1/tcp/4001')
    const cases: Array<[string, Parameters<typeof decodeResponse>[0], number]> = [
      ['more than asked', { closer: [encodePeer({ id: a, multiaddrs: [] }), encodePeer({ id: b, multiaddrs: [] })] }, 1],
      ['the answerer itself', { closer: [encodePeer({ id: from, multiaddrs: [] })] }, 3],
      ['a peer ID that does not decode', { closer: [{ id: Uint8Array.from([1, 2, 3]), addrs: [] }] }, 3],
      ['an empty peer ID', { closer: [{ id: new Uint8Array(0), addrs: [] }] }, 3],
      ['another peer\'s address', { closer: [{ id: a.toMultihash().bytes, addrs: [addr.encapsulate(`/p2p/${b}`).bytes] }] }, 3],
      ['an address that does not decode', { closer: [{ id: a.toMultihash().bytes, addrs: [Uint8Array.from([0xff, 0xff])] }] }, 3],
      ['too many addresses', { closer: [{ id: a.toMultihash().bytes, addrs: Array.from({ length: 9 }, () => addr.bytes) }] }, 3]
    ]
    for (const [name, response, asked] of cases) {
      assert.throws(() => decodeResponse(response, asked, from.toString()), { name: 'MalformedFindMessageError' }, name)
    }
  })

  it('checks a request\'s key length and count', () => {
    assert.doesNotThrow(() => checkRequest({ key: new Uint8Array(32), count: 32 }))
    assert.throws(() => checkRequest({ key: new Uint8Array(31), count: 3 }), { name: 'MalformedFindMessageError' })
    assert.throws(() => checkRequest({ key: new Uint8Array(32), count: 0 }), { name: 'MalformedFindMessageError' })
    assert.throws(() => checkRequest({ key: new Uint8Array(32), count: 33 }), { name: 'MalformedFindMessageError' })
  })
})

describe('KadAddressBook', () => {
  it('keeps what a peer announced over what others say of it, and reads the peer store once on a miss', async () => {
    const [a, b] = await Promise.all([newPeer(), newPeer()])
    let reads = 0
    const book = new KadAddressBook({
      get: async (peerId) => {
        reads++
        if (peerId.equals(b)) return { addresses: [{ multiaddr: multiaddr('/ip4/10.0.0.2/tcp/2'), isCertified: false }] } as never
        throw Object.assign(new Error('not found'), { name: 'NotFoundError' })
      }
    })
    book.announced(a.toString(), [multiaddr('/ip4/127.0.0.1/tcp/1')])
    book.heard(a.toString(), [multiaddr('/ip4/6.6.6.6/tcp/666')])
    assert.deepEqual(book.get(a.toString()).map(String), [`/ip4/127.0.0.1/tcp/1/p2p/${a}`])
    assert.deepEqual((await book.resolve(b)).map(String), [`/ip4/10.0.0.2/tcp/2/p2p/${b}`])
    assert.deepEqual((await book.resolve(b)).map(String), [`/ip4/10.0.0.2/tcp/2/p2p/${b}`])
    assert.equal(reads, 1)
    // hearsay fills in only for a peer known by nothing better
    const c = await newPeer()
    assert.deepEqual(await book.resolve(c), [])
    book.heard(c.toString(), [multiaddr('/ip4/127.0.0.1/tcp/3')])
    assert.deepEqual(book.get(c.toString()).map(String), [`/ip4/127.0.0.1/tcp/3/p2p/${c}`])
  })

  it('forgets the least recently used peer past its size', async () => {
    const peers = await Promise.all([newPeer(), newPeer(), newPeer()])
    const book = new KadAddressBook({ get: async () => { throw Object.assign(new Error('not found'), { name: 'NotFoundError' }) } }, 2)
    for (const [i, p] of peers.entries()) book.announced(p.toString(), [multiaddr(`/ip4/127.0.0.1/tcp/${i + 1}`)])
    assert.equal(book.size, 2)
    assert.deepEqual(book.get(peers[0].toString()), [])
  })
})
