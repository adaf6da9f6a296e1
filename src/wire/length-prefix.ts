/**
 * Shoal's message framing: every message on a Shoal stream is its length as
 * an unsigned varint, then that many bytes.
 */

/** `body` behind its length: one message on a Shoal stream. */
export function lengthPrefixed (body: Uint8Array): Uint8Array {
  const prefix: number[] = []
  pushVarint(prefix, body.length)
  const message = new Uint8Array(prefix.length + body.length)
  message.set(prefix)
  message.set(body, prefix.length)
  return message
}

/** Appends `value` as an unsigned varint (7 bits a byte, low bits first). */
export function pushVarint (out: number[], value: number): void {
  while (value >= 0x80) {
    out.push((value % 128) | 0x80)
    value = Math.floor(value / 128)
  }
  out.push(value)
}
