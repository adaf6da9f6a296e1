/** The codec numbers src/content/cid.ts writes out, against the libraries that define them. */
import assert from 'node:assert/strict'
import * as dagPb from '@ipld/dag-pb'
import * as raw from 'multiformats/codecs/raw'
import { sha256 } from 'multiformats/hashes/sha2'
import { DAG_PB_CODE, MalformedCidError, RAW_CODE, SHA256_CODE, UnsupportedCidError, cidOf, parseCid } from '../../src/content/cid.ts'

describe('CID codes and parsing', () => {
  it('uses the multicodec numbers of raw, dag-pb and sha2-256', () => {
    assert.equal(RAW_CODE, raw.code)
    assert.equal(DAG_PB_CODE, dagPb.code)
    assert.equal(SHA256_CODE, sha256.code)
  })

  it('parses what it makes, and refuses malformed and unsupported CIDs', async () => {
    const bytes = new TextEncoder().encode('shoal')
    const cid = cidOf(RAW_CODE, bytes)
    assert.ok(parseCid(` ${cid.toString()} `).equals(cid))
    assert.equal(cid.code, raw.code)
    assert.equal(cid.multihash.code, sha256.code)
    assert.ok(Buffer.from(cid.multihash.digest).equals((await sha256.digest(bytes)).digest))
    assert.throws(() => parseCid('not-a-cid'), MalformedCidError)
    // identity hash (0x00) of "shoal", codec raw
    assert.throws(() => parseCid('bafkqabltnbxwc3a'), UnsupportedCidError)
  })
})
