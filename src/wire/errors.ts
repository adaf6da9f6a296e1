/** Errors of Shoal's wire protocols: why a stream was reset. */
import { ShoalError } from '../errors.ts'

/**
 * A peer broke a protocol: a malformed, oversized or unexpected message, or
 * more requests than the protocol allows. Its stream is reset.
 */
export class WireProtocolError extends ShoalError {
  static name = 'WireProtocolError'
}

/**
 * A stream was reset for what it held on to, not for what it said: silent
 * too long, reading too slowly, one stream too many for its peer, or
 * waiting too long for room in a shared budget.
 */
export class StreamLimitError extends ShoalError {
  static name = 'StreamLimitError'
}
