/** Errors of Shoal's Kademlia lookup protocol. */
import { ShoalError } from '../../errors.ts'

/** A peer sent a message that breaks /shoal/kad/find/1.0.0 (its stream is reset; as an answer, the query failed). */
export class MalformedFindMessageError extends ShoalError {
  static name = 'MalformedFindMessageError'
}

/** The peer does not speak /shoal/kad/find/1.0.0 (an older Shoal): it is asked over kad-dht's FIND_NODE. */
export class FindUnsupportedError extends ShoalError {
  static name = 'FindUnsupportedError'
}
