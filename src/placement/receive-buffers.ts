/**
 * Where the store server joins a received put: shared memory from pools
 * reused from put to put (as the fetch's block buffers), so a leaf worker
 * reads the block in place and no fresh buffer per block burdens the
 * garbage collector or faults in new pages. One pool per power of two of
 * the message's size.
 */
import { BufferPool } from '../content/buffer-pool.ts'

/** Idle buffers kept per pool, in bytes. */
export const POOLED_RECEIVE_BYTES = 32 * 1024 * 1024
const MIN_BUFFER_BYTES = 64 * 1024

export class ReceiveBuffers {
  private readonly pools = new Map<number, BufferPool>()

  /** A buffer of at least `size` bytes. */
  acquire (size: number): Uint8Array {
    return this.poolOf(2 ** Math.ceil(Math.log2(Math.max(size, MIN_BUFFER_BYTES)))).acquire()
  }

  /** True for a view of a buffer from `acquire`. */
  owns (view: Uint8Array): boolean {
    return view.buffer instanceof SharedArrayBuffer && this.pools.has(view.buffer.byteLength)
  }

  /** Gives back the buffer `view` lies in; nothing may use it afterwards. */
  release (view: Uint8Array): void {
    this.pools.get(view.buffer.byteLength)?.release(view)
  }

  private poolOf (size: number): BufferPool {
    let pool = this.pools.get(size)
    if (pool == null) {
      pool = new BufferPool(size, Math.max(2, Math.floor(POOLED_RECEIVE_BYTES / size)))
      this.pools.set(size, pool)
    }
    return pool
  }
}
