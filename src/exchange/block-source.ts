/**
 * What the block scheduler needs of a peer it downloads from: wants and
 * cancels on one stream, a way to end it, and how recently the peer sent
 * anything. XferSession (the /shoal/xfer client) is one; the scheduler's
 * unit tests script their own.
 */
import type { CID } from 'multiformats/cid'

export interface BlockSource {
  readonly peerId: string
  /** When the peer last sent any byte (performance.now()): alive even mid-way through a large block. */
  readonly lastByteAt: number
  /**
   * The block's bytes (not verified), or undefined when the peer does not
   * hold it or the want was cancelled; rejects when the stream fails.
   */
  want: (cid: CID) => Promise<Uint8Array | undefined>
  /** Withdraws a want: its promise resolves undefined. */
  cancel: (cid: CID) => void
  /** Ends the stream now (the peer is dropped from the fetch). */
  abort: (err: Error) => void
}
