/**
 * The peer's upload rate limit (config `transfer.maxUploadRate`), shared by
 * every xfer stream it serves. A virtual clock: each send books its
 * transmission time after the previous one's, and waits only when the
 * booking runs more than a short burst ahead of now, so steady sends are
 * paced without a timer per byte.
 */
import { sleep } from '../utils/wait.ts'

/** How far ahead of real time sends may run before they wait (ms). */
const BURST_MS = 50

export class UploadLimiter {
  private bytesPerMs: number
  private bookedUntil = 0

  /** `bytesPerSecond` 0 means no limit. */
  constructor (bytesPerSecond: number) {
    this.bytesPerMs = bytesPerSecond / 1000
  }

  /** Changes the limit from now on (0: none). */
  setRate (bytesPerSecond: number): void {
    this.bytesPerMs = bytesPerSecond / 1000
    this.bookedUntil = 0
  }

  get limited (): boolean {
    return this.bytesPerMs > 0
  }

  /** Resolves when `bytes` may be sent. */
  async take (bytes: number, signal?: AbortSignal): Promise<void> {
    if (this.bytesPerMs <= 0) return
    const now = performance.now()
    const cost = bytes / this.bytesPerMs
    this.bookedUntil = Math.max(now, this.bookedUntil) + cost
    const wait = this.bookedUntil - now - BURST_MS
    if (wait <= 0) return
    try {
      await sleep(wait, signal)
    } catch (err) {
      // never sent: give its time back, or the sends after it would wait for nothing
      this.bookedUntil -= cost
      throw err
    }
  }
}
