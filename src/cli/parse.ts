/** Option parsers: a bad value becomes commander's invalid-argument error (exit 2). */
import { InvalidArgumentError } from 'commander'
import { parseCid } from '../content/cid.ts'
import { InvalidInputError } from '../errors.ts'
import { parseByteSize } from '../utils/bytes.ts'

export function collect<T> (parse: (value: string) => T): (value: string, previous: T[]) => T[] {
  return (value, previous) => [...previous, parse(value)]
}

/**
 * Multiaddr flags are checked in the command's action, not as they are
 * parsed: the multiaddr parser is slow to load, and every command
 * would pay for it at start-up (a parser must be synchronous, an import in
 * an action need not). A bad one is bad input: one line, exit 2.
 */
export async function checkMultiaddrs (flag: string, values: string[], withPeerId = false): Promise<void> {
  if (values.length === 0) return
  const { multiaddrProblem } = await import('../peer/multiaddrs.ts')
  for (const value of values) {
    const problem = multiaddrProblem(value, withPeerId)
    if (problem != null) throw new InvalidInputError(`${flag} ${problem}`)
  }
}

export function intOption (flag: string, min: number, max: number): (value: string) => number {
  return value => {
    const n = Number(value)
    if (!/^\d+$/.test(value.trim()) || !Number.isSafeInteger(n) || n < min || n > max) {
      throw new InvalidArgumentError(`${flag} must be an integer from ${min} to ${max}, got "${value}"`)
    }
    return n
  }
}

/** A byte size: "1048576", "256KiB", "1MiB", within [min, max]. */
export function sizeOption (flag: string, min: number, max: number): (value: string) => number {
  return value => {
    const n = parseByteSize(value)
    if (n == null || n < min || n > max) {
      throw new InvalidArgumentError(`${flag} must be a size from ${min} to ${max} bytes (e.g. "256KiB", "1MiB"), got "${value}"`)
    }
    return n
  }
}

/** A CID argument, checked before the daemon is asked (exit 2 if malformed). */
export function cidArgument (value: string): string {
  return parseCid(value).toString()
}
