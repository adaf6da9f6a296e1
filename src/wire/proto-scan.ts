/**
 * Walks a protobuf message's fields without decoding them: no strings, no
 * arrays, no sub-messages are built. Requests are scanned first, so their
 * lists are counted and sized against the protocol's limits before a
 * decoder allocates anything for them.
 */
import { WireProtocolError } from './errors.ts'

/** Wire type 2: a length-delimited field (bytes, a string, a message, a packed list). */
export const LENGTH_DELIMITED = 2

/**
 * Calls `visit` for each field of `bytes`, in order: its number, wire type,
 * and where its value lies. Throws WireProtocolError on anything malformed.
 */
export function scanFields (bytes: Uint8Array, visit: (field: number, wireType: number, start: number, end: number) => void): void {
  let at = 0
  while (at < bytes.length) {
    const tag = readVarint(bytes, at)
    at = varintEnd
    const field = Math.floor(tag / 8)
    const wireType = tag & 7
    if (field === 0) throw new WireProtocolError('a field numbered 0')
    let start = at
    let end: number
    switch (wireType) {
      case 0: readVarint(bytes, at); end = varintEnd; break
      case 1: end = at + 8; break
      case 5: end = at + 4; break
      case LENGTH_DELIMITED: {
        const length = readVarint(bytes, at)
        start = varintEnd
        end = start + length
        break
      }
      default: throw new WireProtocolError(`wire type ${wireType} (field ${field})`)
    }
    if (end > bytes.length) throw new WireProtocolError(`field ${field} runs past the message`)
    visit(field, wireType, start, end)
    at = end
  }
}

/**
 * How many times each of `fields` (length-delimited) occurs in `bytes`;
 * throws when one occurs with another wire type, or more often than its
 * limit (`limits[i]` for `fields[i]`).
 */
export function countFields (bytes: Uint8Array, fields: number[], limits: number[], what: string[]): number[] {
  const counts = fields.map(() => 0)
  scanFields(bytes, (field, wireType) => {
    const i = fields.indexOf(field)
    if (i < 0) return
    if (wireType !== LENGTH_DELIMITED) throw new WireProtocolError(`${what[i]} with wire type ${wireType}`)
    if (++counts[i] > limits[i]) throw new WireProtocolError(`more than ${limits[i]} ${what[i]} in one message`)
  })
  return counts
}

/** Where the last readVarint stopped (saves allocating a pair per varint). */
let varintEnd = 0

function readVarint (bytes: Uint8Array, at: number): number {
  let value = 0
  let scale = 1
  for (let i = 0; i < 10; i++) {
    if (at + i >= bytes.length) throw new WireProtocolError('a varint runs past the message')
    const byte = bytes[at + i]
    value += (byte & 0x7f) * scale
    if (byte < 0x80) {
      varintEnd = at + i + 1
      return value
    }
    scale *= 128
  }
  throw new WireProtocolError('a varint longer than 10 bytes')
}
