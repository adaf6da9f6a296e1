/**
 * A timeout from anywhere below (AbortSignal.timeout's DOMException, a
 * libp2p dial or DHT query that gave up, an abort whose cause was a
 * deadline) as Shoal's own TimeoutError, so the API answers 504 and the CLI
 * exits 1 with the reason, instead of an unknown error's 500.
 */
import { ShoalError, TimeoutError } from '../errors.ts'

/** `err` as a TimeoutError when it is a timeout of any origin; otherwise `err` itself. */
export function asTimeout (err: unknown, what?: string): unknown {
  if (err instanceof ShoalError || !(err instanceof Error || isErrorLike(err))) return err
  const e = err as Error & { cause?: unknown }
  const cause = e.cause as { name?: string } | undefined
  const timedOut = e.name === 'TimeoutError' || (e.name === 'AbortError' && cause?.name === 'TimeoutError')
  if (!timedOut) return err
  const reason = cause?.name === 'TimeoutError' && cause instanceof Error ? cause.message : e.message
  return new TimeoutError(what != null ? `${what}: ${reason}` : reason, { cause: err })
}

function isErrorLike (err: unknown): boolean {
  return typeof err === 'object' && err != null && typeof (err as { name?: unknown }).name === 'string' && typeof (err as { message?: unknown }).message === 'string'
}
