/** Helpers for Shoal's protocol streams. */

/** True when a read failed only because the other side closed or reset the stream. */
export function isEndOfStream (err: unknown): boolean {
  const name = (err as Error | undefined)?.name
  return name === 'UnexpectedEOFError' || name === 'StreamClosedError' || name === 'StreamResetError' || name === 'StreamStateError'
}
