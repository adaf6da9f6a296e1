/**
 * Peers of other overlays (or none) refused: a peer whose identify shows no
 * /shoal/chord/1.0.0, or that refused a Chord request, never enters the
 * ring. Each is reported once (a log line and `onPeerRefused`); one refused
 * for a failed request is reported once identify shows what it runs, or
 * after REFUSAL_EXPLAIN_MS without it. A peer whose identify later shows
 * Chord is admitted again.
 */
import type { IdentifyResult, Logger } from '@libp2p/interface'
import { CHORD_PROTOCOL, MAX_REFUSED_PEERS, REFUSAL_EXPLAIN_MS } from './constants.ts'
import { DHT_PROTOCOL } from '../../constants.ts'

export interface RefusalsInit {
  self: string
  /** A peer was just refused: take it out of the routing state. */
  drop: (peer: string) => void
  onPeerRefused?: (peerId: string, reason: string) => void
  log: Logger
}

export class Refusals {
  private readonly init: RefusalsInit
  private readonly refused = new Set<string>()
  /** Peers refused for a failed request, not reported yet: identify will say what they run. */
  private readonly unexplained = new Map<string, ReturnType<typeof setTimeout>>()

  constructor (init: RefusalsInit) {
    this.init = init
  }

  has (peer: string): boolean {
    return this.refused.has(peer)
  }

  /** The `peer:identify` listener. */
  readonly onIdentify = (event: CustomEvent<IdentifyResult>): void => {
    const { peerId, protocols } = event.detail
    const peer = peerId.toString()
    if (protocols.includes(CHORD_PROTOCOL)) {
      this.refused.delete(peer)
      clearTimeout(this.unexplained.get(peer))
      this.unexplained.delete(peer)
      return
    }
    const reason = protocols.includes(DHT_PROTOCOL)
      ? `it runs the kademlia overlay (${DHT_PROTOCOL}), this peer runs chord (config "overlay")`
      : `identify shows it does not speak ${CHORD_PROTOCOL}`
    const pending = this.unexplained.get(peer)
    if (pending != null) {
      // refused already by a failed request: identify says why
      clearTimeout(pending)
      this.unexplained.delete(peer)
      this.report(peer, reason)
      return
    }
    this.refuse(peer, reason)
  }

  /** Refuses a peer; `explained` false: it refused a request, identify may yet say why. */
  refuse (peer: string, reason: string, explained = true): void {
    if (this.refused.has(peer) || peer === this.init.self) return
    if (this.refused.size >= MAX_REFUSED_PEERS) this.refused.delete(this.refused.values().next().value as string)
    this.refused.add(peer)
    this.init.drop(peer)
    if (explained) {
      this.report(peer, reason)
      return
    }
    const timer = setTimeout(() => {
      this.unexplained.delete(peer)
      this.report(peer, reason)
    }, REFUSAL_EXPLAIN_MS)
    timer.unref?.()
    this.unexplained.set(peer, timer)
  }

  /** Stops the pending reports (the overlay stops). */
  clearPending (): void {
    for (const timer of this.unexplained.values()) clearTimeout(timer)
    this.unexplained.clear()
  }

  private report (peer: string, reason: string): void {
    this.init.log.error('refusing peer %s: %s; not added to the ring, disconnected', peer, reason)
    try {
      this.init.onPeerRefused?.(peer, reason)
    } catch (err) {
      this.init.log.error('onPeerRefused failed - %e', err)
    }
  }
}
