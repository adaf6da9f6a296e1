/** Errors of the local content store. */
import { InvalidInputError, ShoalError } from '../errors.ts'

/** The store does not have a block it was asked for. */
export class BlockNotFoundError extends ShoalError {
  static name = 'BlockNotFoundError'
}

/** No holding and no blocks for a CID on this peer. */
export class ContentNotFoundError extends ShoalError {
  static name = 'ContentNotFoundError'
}

/** Storing a block would take the store past its quota. */
export class QuotaExceededError extends ShoalError {
  static name = 'QuotaExceededError'
}

/** The store was closed (the peer is stopping): nothing more is written. */
export class StoreClosedError extends ShoalError {
  static name = 'StoreClosedError'
}

/** The disk itself is full (ENOSPC). */
export class DiskFullError extends ShoalError {
  static name = 'DiskFullError'
}

/** A path to import is missing, unreadable, a directory, or not a file. */
export class InvalidPathError extends InvalidInputError {
  static name = 'InvalidPathError'
}

/** The output path exists and --force was not given. */
export class OutputExistsError extends InvalidInputError {
  static name = 'OutputExistsError'
}

/** A leaf worker failed to store a chunk; `code` is the system error's (ENOSPC...). */
export class LeafWorkerError extends ShoalError {
  static name = 'LeafWorkerError'
  code?: string

  constructor (message: string, code?: string) {
    super(message)
    if (code != null) this.code = code
  }
}
