/** Yields `bytes` in uneven pieces, as a socket, a file stream or an HTTP body would. */
export async function * pieces (bytes: Uint8Array): AsyncGenerator<Uint8Array> {
  let offset = 0
  let step = 1000
  while (offset < bytes.length) {
    yield bytes.subarray(offset, offset + step)
    offset += step
    step = step * 7 % 300_007 + 1
  }
}
