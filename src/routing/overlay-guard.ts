/**
 * Peers of different overlays refuse each other. A swarm runs one overlay
 * (config `overlay`); a peer of the other one that connects (a bootstrap
 * entry, a contact of a mixed-up swarm) would otherwise stay connected
 * without ever being routed to: half-joined. Once identify shows that a
 * peer speaks another overlay's protocol and not ours, it is named in one
 * log line and disconnected. Chord does this itself, for any peer without
 * Chord (see chord/index.ts: `onPeerRefused` hangs up); this guard is the
 * Kademlia side, where kad-dht silently ignores such peers.
 */
import type { IdentifyResult, Libp2p } from '@libp2p/interface'
import { DHT_PROTOCOL } from '../constants.ts'
import { CHORD_PROTOCOL } from './chord/constants.ts'
import type { OverlayName } from './index.ts'

/** The wire protocol of each overlay. */
export const OVERLAY_PROTOCOLS: Record<OverlayName, string> = {
  kademlia: DHT_PROTOCOL,
  chord: CHORD_PROTOCOL
}

/** Peers refused are remembered (to log each once) up to this many. */
const MAX_REMEMBERED = 1024

/** Which overlay a peer's identified protocols show, if any. */
export function overlayOf (protocols: string[]): OverlayName | undefined {
  for (const [name, protocol] of Object.entries(OVERLAY_PROTOCOLS)) {
    if (protocols.includes(protocol)) return name as OverlayName
  }
  return undefined
}

/**
 * Watches identify on a node of overlay `own`: a peer that runs another
 * overlay is logged once and handed to `refuse` (which hangs up).
 */
export function guardOverlay (node: Pick<Libp2p, 'addEventListener' | 'logger'>, own: OverlayName, refuse: (peer: string) => void): void {
  if (own === 'chord') return
  const log = node.logger.forComponent('shoal:overlay')
  const refused = new Set<string>()
  node.addEventListener('peer:identify', (event: CustomEvent<IdentifyResult>) => {
    const { peerId, protocols } = event.detail
    if (protocols.includes(OVERLAY_PROTOCOLS[own])) return
    const theirs = overlayOf(protocols)
    if (theirs == null) return
    const peer = peerId.toString()
    if (!refused.has(peer)) {
      if (refused.size >= MAX_REMEMBERED) refused.delete(refused.values().next().value as string)
      refused.add(peer)
      log.error('refusing peer %s: it runs the %s overlay (%s), this peer runs %s (config "overlay"); disconnected', peer, theirs, OVERLAY_PROTOCOLS[theirs], own)
    }
    refuse(peer)
  })
}
