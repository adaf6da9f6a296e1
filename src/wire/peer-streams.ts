/**
 * Open streams of one protocol per remote peer, over all its connections:
 * libp2p caps inbound streams per connection, and a peer may open several
 * connections.
 */
export class PeerStreams {
  readonly maxPerPeer: number
  private readonly open = new Map<string, number>()

  constructor (maxPerPeer: number) {
    this.maxPerPeer = maxPerPeer
  }

  /** Streams open now, over all peers. */
  get total (): number {
    let n = 0
    for (const count of this.open.values()) n += count
    return n
  }

  /** Counts a new stream of `peer` in; false (and not counted) when it already has its most. */
  add (peer: string): boolean {
    const count = this.open.get(peer) ?? 0
    if (count >= this.maxPerPeer) return false
    this.open.set(peer, count + 1)
    return true
  }

  remove (peer: string): void {
    const count = (this.open.get(peer) ?? 0) - 1
    if (count > 0) this.open.set(peer, count)
    else this.open.delete(peer)
  }
}
