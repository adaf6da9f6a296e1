/**
 * Arithmetic on the identifier ring: positions are 256-bit unsigned integers
 * (sha2-256 of a peer ID's multihash bytes or of a key, read big-endian),
 * and everything wraps around at 2^256. "Clockwise from a to b" is the
 * direction of increasing positions, past 2^256 - 1 back to 0.
 *
 * A key's successor is the first peer at or clockwise after it; the peers
 * responsible for it are its successor and the k-1 peers after that, which
 * is the order `clockwiseFrom` sorts into.
 */
import { RING_BITS } from './constants.ts'

export const RING_SIZE = 1n << BigInt(RING_BITS)
const RING_MASK = RING_SIZE - 1n

/** A 32-byte identifier as a position on the ring. */
export function toPosition (id: Uint8Array): bigint {
  if (id.length !== RING_BITS / 8) throw new RangeError(`a ring identifier is ${RING_BITS / 8} bytes, got ${id.length}`)
  return BigInt('0x' + Buffer.from(id.buffer, id.byteOffset, id.byteLength).toString('hex'))
}

/** A position as its 32 bytes, big-endian. */
export function fromPosition (position: bigint): Uint8Array {
  return Uint8Array.from(Buffer.from((position & RING_MASK).toString(16).padStart(RING_BITS / 4, '0'), 'hex'))
}

/** How far clockwise `to` is from `from`: 0 when equal, else 1 .. 2^256 - 1. */
export function clockwise (from: bigint, to: bigint): bigint {
  return (to - from) & RING_MASK
}

/**
 * x in the open arc (a, b) going clockwise from a. When a = b the arc is
 * the whole ring but a itself (a ring of one: everything lies between a
 * peer and its own successor).
 */
export function inOpen (a: bigint, x: bigint, b: bigint): boolean {
  if (a === b) return x !== a
  const span = clockwise(a, b)
  const d = clockwise(a, x)
  return d > 0n && d < span
}

/** x in the half-open arc (a, b]: when a = b, the whole ring. */
export function inHalfOpen (a: bigint, x: bigint, b: bigint): boolean {
  if (a === b) return true
  const d = clockwise(a, x)
  return d > 0n && d <= clockwise(a, b)
}

/** Where finger i starts: self + 2^i, around the ring. */
export function fingerStart (self: bigint, index: number): bigint {
  return (self + (1n << BigInt(index))) & RING_MASK
}

/**
 * `items` sorted clockwise from `origin`: an item at the origin first, then
 * in increasing clockwise distance. For a key, that is responsibility order.
 */
export function clockwiseFrom<T> (origin: bigint, items: Iterable<T>, positionOf: (item: T) => bigint): T[] {
  return [...items]
    .map(item => ({ item, d: clockwise(origin, positionOf(item)) }))
    .sort((x, y) => (x.d < y.d ? -1 : x.d > y.d ? 1 : 0))
    .map(entry => entry.item)
}
