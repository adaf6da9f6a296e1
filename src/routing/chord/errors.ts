/** Errors of the Chord overlay. */
import { InvalidInputError, ShoalError } from '../../errors.ts'

/** A peer sent a message that breaks /shoal/chord/1.0.0 (its stream is reset). */
export class MalformedMessageError extends ShoalError {
  static name = 'MalformedMessageError'
}

/** A lookup ran out of live peers to ask before it found the key's successor. */
export class LookupFailedError extends ShoalError {
  static name = 'LookupFailedError'
}

/** No responsible peer took a provider record. */
export class ProvideFailedError extends ShoalError {
  static name = 'ProvideFailedError'
}

/** The overlay is not started (or has left the ring). */
export class ChordNotRunningError extends ShoalError {
  static name = 'ChordNotRunningError'
}

/** A lookup asked for a k outside 1 .. the most a lookup may return. */
export class InvalidReplicasError extends InvalidInputError {
  static name = 'InvalidReplicasError'
}
