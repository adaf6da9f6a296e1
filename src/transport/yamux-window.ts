/**
 * yamux with window updates sent once half of a stream's receive window is
 * used, not after every data frame.
 *
 * @chainsafe/libp2p-yamux answers every data frame it receives with a
 * window-update frame: on a transfer that is one more frame, one more Noise
 * message and one more socket write on the receiver (and a read, a decrypt
 * and a decode on the sender) per data frame, which profiles of a replica
 * receiver showed as a large share of its CPU. go-yamux, rust-yamux
 * (libp2p/rust-yamux#109) and hashicorp/yamux send an update only once
 * half the window or more has been consumed: the sender still holds the
 * other half, so it never stalls for it, and window auto-tuning still sees
 * one update per half window.
 *
 * The muxer builds its streams itself, so the change is made on the stream
 * class's prototype, once per process, checked against the shape it
 * expects: if a yamux upgrade renames what it uses, the patch is not
 * applied and yamux keeps its own behaviour (test/unit/yamux-window.spec.ts
 * fails loudly).
 */
import { yamux } from '@chainsafe/libp2p-yamux'
import { StreamState, YamuxStream } from '@chainsafe/libp2p-yamux/stream'

interface WindowInternals {
  state: number
  recvWindow: number
  recvWindowCapacity: number
  sendWindowUpdate: () => void
}

const PATCHED = Symbol.for('shoal.yamux.halfWindowUpdates')

/** True once yamux streams send window updates per half window (see above). */
export function halfWindowUpdates (): boolean {
  const proto = YamuxStream.prototype as unknown as WindowInternals & { [PATCHED]?: true }
  if (proto[PATCHED] === true) return true
  const original = proto.sendWindowUpdate
  if (typeof original !== 'function' || StreamState?.Established == null) return false
  proto.sendWindowUpdate = function (this: WindowInternals): void {
    // A stream opening or answering (SYN/ACK flags to send), paused or
    // finished goes through yamux's own logic; an established stream (also
    // one just resumed) skips the update while more than half of its window
    // is still open: the sender has that half to go on with.
    if (this.state === StreamState.Established && typeof this.recvWindow === 'number' &&
      this.recvWindow - this.recvWindowCapacity < this.recvWindow / 2) return
    original.call(this)
  }
  Object.defineProperty(proto, PATCHED, { value: true })
  return true
}

/** The stream muxer every Shoal peer uses: yamux, with window updates per half window. */
export function shoalYamux (init?: Parameters<typeof yamux>[0]): ReturnType<typeof yamux> {
  halfWindowUpdates()
  return yamux(init)
}
