/**
 * Every error Shoal raises on purpose is a named class here. Tests assert on
 * `err.name`; the CLI maps `exitCode` to the process exit status:
 * 1 = the operation failed (not found, timeout, network, busy),
 * 2 = bad usage or bad input.
 */

export class ShoalError extends Error {
  static name = 'ShoalError'
  readonly exitCode: 1 | 2 = 1

  constructor (message: string, options?: ErrorOptions) {
    super(message, options)
    this.name = (this.constructor as { name: string }).name
  }
}

/** Bad input from the user: a wrong flag value, a malformed file. Exit 2. */
export class InvalidInputError extends ShoalError {
  static name = 'InvalidInputError'
  override readonly exitCode = 2 as const
}

/** The CID names a DAG that is not a UnixFS file (e.g. a directory). */
export class NotAFileError extends InvalidInputError {
  static name = 'NotAFileError'
}

/** The repo path exists but is not a directory. */
export class RepoNotDirectoryError extends InvalidInputError {
  static name = 'RepoNotDirectoryError'
}

/** No repo has been initialised at the path. */
export class RepoNotInitializedError extends ShoalError {
  static name = 'RepoNotInitializedError'
}

/** Another daemon holds the repo lock. */
export class RepoLockedError extends ShoalError {
  static name = 'RepoLockedError'
}

/** config.json does not parse or a field fails validation. */
export class InvalidConfigError extends InvalidInputError {
  static name = 'InvalidConfigError'
}

/** The identity key file is unreadable or not a private key. */
export class InvalidIdentityError extends InvalidInputError {
  static name = 'InvalidIdentityError'
}

/** A listen or API address is already taken by another process. */
export class AddressInUseError extends ShoalError {
  static name = 'AddressInUseError'
}

/** A command needs the daemon's API and no daemon answers. */
export class DaemonNotRunningError extends ShoalError {
  static name = 'DaemonNotRunningError'
}

/** The daemon answered with an error status. */
export class ApiError extends ShoalError {
  static name = 'ApiError'
  readonly status: number
  override readonly exitCode: 1 | 2
  /** The daemon's name for the error (e.g. "QuotaExceededError"), if it sent one. */
  readonly remoteName?: string

  constructor (message: string, status: number, exitCode: 1 | 2 = 1, remoteName?: string, options?: ErrorOptions) {
    super(message, options)
    this.status = status
    this.exitCode = exitCode
    this.remoteName = remoteName
  }
}

/** A local swarm did not become routable, or a peer in it failed. */
export class SwarmError extends ShoalError {
  static name = 'SwarmError'
}

/** No swarm.json in the swarm directory. */
export class SwarmNotFoundError extends ShoalError {
  static name = 'SwarmNotFoundError'
}

/** This peer knows no other peer to ask (an empty routing table). */
export class NoPeersError extends ShoalError {
  static name = 'NoPeersError'
}

/** Something that was waited for did not happen in time. */
export class TimeoutError extends ShoalError {
  static name = 'TimeoutError'
}

/**
 * The CID names a file DAG that breaks Shoal's bounds or contradicts
 * itself: too many links in a node, too deep, more pieces than its size
 * allows, or sizes that disagree (a child's size against its parent's
 * blockSizes, a leaf's bytes against the size its parent gives). Such a DAG
 * is refused before it costs memory; nothing is stored for it. Exit 1.
 */
export class InvalidDagError extends ShoalError {
  static name = 'InvalidDagError'
}

export function isShoalError (err: unknown): err is ShoalError {
  return err instanceof ShoalError
}
