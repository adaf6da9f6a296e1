/** Errors of the lab (network namespaces, links, faults). */
import { InvalidInputError, ShoalError } from '../../errors.ts'

/**
 * The lab cannot run here: not Linux, no root or CAP_NET_ADMIN, no `ip`.
 * Exit 2: what is missing is the caller's to provide, nothing was made.
 */
export class LabUnavailableError extends InvalidInputError {
  static name = 'LabUnavailableError'
}

/** A command the lab ran to build or change its network failed. */
export class LabCommandError extends ShoalError {
  static name = 'LabCommandError'
}

/** A lab command on a swarm that is not a lab swarm, or a layout it cannot serve. Exit 2. */
export class NotALabSwarmError extends InvalidInputError {
  static name = 'NotALabSwarmError'
}
