// Positions in Shoal's 256-bit identifier space, as the overlays compute
// them (src/routing/index.ts): a peer is sha2-256 of its peer ID's
// multihash bytes, a key is sha2-256 of the key bytes (a CID's multihash).
const B58 = '123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz'
const B32 = 'abcdefghijklmnopqrstuvwxyz234567'

function base58 (text) {
  const bytes = [0]
  for (const ch of text) {
    let carry = B58.indexOf(ch)
    if (carry < 0) throw new Error(`not base58: ${text}`)
    for (let i = 0; i < bytes.length; i++) {
      carry += bytes[i] * 58
      bytes[i] = carry & 0xff
      carry >>= 8
    }
    while (carry > 0) { bytes.push(carry & 0xff); carry >>= 8 }
  }
  for (const ch of text) { if (ch !== '1') break; bytes.push(0) }
  return Uint8Array.from(bytes.reverse())
}

function base32 (text) {
  const out = []
  let bits = 0
  let value = 0
  for (const ch of text) {
    value = (value << 5) | B32.indexOf(ch)
    bits += 5
    if (bits >= 8) { out.push((value >>> (bits - 8)) & 0xff); bits -= 8 }
  }
  return Uint8Array.from(out)
}

function varint (bytes, at) {
  let value = 0
  let shift = 0
  for (;;) {
    const b = bytes[at++]
    value += (b & 0x7f) * 2 ** shift
    if (b < 0x80) return [value, at]
    shift += 7
  }
}

/** The key bytes a lookup key stands for: hex bytes, or a CID's multihash. */
export function keyBytes (key) {
  if (/^(?:[0-9a-f]{2})+$/i.test(key)) return Uint8Array.from(key.match(/../g).map(h => parseInt(h, 16)))
  if (key.startsWith('Qm')) return base58(key)
  if (key.startsWith('b')) {
    const bytes = base32(key.slice(1))
    const [, afterVersion] = varint(bytes, 0)
    const [, afterCodec] = varint(bytes, afterVersion)
    return bytes.slice(afterCodec)
  }
  throw new Error(`cannot read key ${key}`)
}

const cache = new Map()

async function sha256 (bytes) {
  return new Uint8Array(await crypto.subtle.digest('SHA-256', bytes))
}

/** 32-byte position of a peer ID (base58btc, as Shoal prints them). */
export async function peerPosition (peerId) {
  let found = cache.get(peerId)
  if (found == null) {
    found = sha256(base58(peerId))
    cache.set(peerId, found)
  }
  return found
}

export async function keyPosition (key) {
  return sha256(keyBytes(key))
}

/** Leading bits two positions share (Kademlia's bucket index from this peer's side). */
export function commonPrefix (a, b) {
  for (let i = 0; i < a.length; i++) {
    const x = a[i] ^ b[i]
    if (x !== 0) return i * 8 + Math.clz32(x) - 24
  }
  return a.length * 8
}

/** The position as a fraction of the ring, 0 to 1 (its first 32 bits). */
export function fraction (pos) {
  return ((pos[0] << 24 >>> 0) + (pos[1] << 16) + (pos[2] << 8) + pos[3]) / 2 ** 32
}

/** True when a is closer to target than b by XOR. */
export function xorCloser (a, b, target) {
  for (let i = 0; i < target.length; i++) {
    const da = a[i] ^ target[i]
    const db = b[i] ^ target[i]
    if (da !== db) return da < db
  }
  return false
}
