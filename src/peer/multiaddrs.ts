import { multiaddr } from '@multiformats/multiaddr'

/**
 * What is wrong with a multiaddr string, as the end of a sentence
 * ("is not a valid multiaddr: ..."), or undefined when it is fine.
 * Shared by config validation and the CLI's flag parsing.
 */
export function multiaddrProblem (value: string, needsPeerId = false): string | undefined {
  try {
    const ma = multiaddr(value)
    if (needsPeerId && ma.getComponents().find(c => c.name === 'p2p') == null) {
      return `must end in /p2p/<peer id>, got "${value}"`
    }
    return undefined
  } catch {
    return `is not a valid multiaddr: "${value}"`
  }
}
