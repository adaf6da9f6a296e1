/**
 * When a peer that did not answer counts as dead. A peer nothing listens
 * for any more (the dial is refused: its process is gone) is dead at once.
 * Any other failure (the query timed out, the handshake did not finish,
 * the stream was reset) only makes it a suspect: on a loaded machine a
 * live peer answers late, and dropping it as dead was a change that sped
 * every peer's maintenance up, on a machine that was already behind, until
 * a 1,000-peer ring fell apart. A suspect is dead once SUSPECT_LIMIT
 * queries to it in a row failed without any answer in between; an answer
 * clears it (SWIM's suspicion, with the failed queries as its timer).
 */
import { MAX_SUSPECTS, SUSPECT_LIMIT } from './constants.ts'

/** Socket errors that say nothing listens at the address (the peer is gone), not that it is slow. */
const UNREACHABLE = new Set(['ECONNREFUSED', 'EHOSTUNREACH', 'ENETUNREACH', 'EHOSTDOWN'])

export class Suspects {
  private readonly limit: number
  /** Failed queries in a row, per suspect; oldest first. */
  private readonly failures = new Map<string, number>()

  constructor (limit = SUSPECT_LIMIT) {
    this.limit = limit
  }

  /** `peer` answered a query: it is no suspect. */
  answered (peer: string): void {
    this.failures.delete(peer)
  }

  /** A query to `peer` failed with `err`: resolves whether `peer` now counts as dead. */
  failed (peer: string, err: unknown): boolean {
    const count = (this.failures.get(peer) ?? 0) + 1
    this.failures.delete(peer)
    if (count >= this.limit || isUnreachable(err)) return true
    this.failures.set(peer, count)
    if (this.failures.size > MAX_SUSPECTS) this.failures.delete(this.failures.keys().next().value as string)
    return false
  }

  /** Forgets every suspect (the overlay stops). */
  clear (): void {
    this.failures.clear()
  }

  /** Suspects now (tests and stats). */
  get size (): number {
    return this.failures.size
  }
}

/** Whether `err` (or an error it wraps) says nothing listens where the peer was. */
export function isUnreachable (err: unknown, depth = 0): boolean {
  if (err == null || typeof err !== 'object' || depth > 4) return false
  const { code, cause, errors } = err as { code?: unknown, cause?: unknown, errors?: unknown }
  if (typeof code === 'string' && UNREACHABLE.has(code)) return true
  if (isUnreachable(cause, depth + 1)) return true
  // every address refused (AggregateError of a dial to several)
  return Array.isArray(errors) && errors.length > 0 && errors.every(e => isUnreachable(e, depth + 1))
}
