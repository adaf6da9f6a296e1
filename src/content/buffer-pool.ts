/**
 * Chunk buffers for imports, reused. Measured: allocating a fresh 1 MiB
 * buffer per chunk made the kernel fault in and zero 1 GiB of new pages per
 * GiB imported (~1 CPU-s of system time per GiB on this machine); a handful
 * of recycled buffers cost nothing after the first use. They are shared
 * memory so a leaf worker (src/store/leaf-workers.ts) reads them in place.
 */
export class BufferPool {
  private readonly free: Buffer[] = []
  readonly size: number
  private readonly max: number

  /** Buffers of `size` bytes; keeps at most `max` idle ones. */
  constructor (size: number, max = 16) {
    this.size = size
    this.max = max
  }

  /** A buffer over SharedArrayBuffer memory, so a hash worker reads it in place. */
  acquire (): Buffer {
    return this.free.pop() ?? Buffer.from(new SharedArrayBuffer(this.size))
  }

  /** Hands a buffer back; the caller must not touch it afterwards. */
  release (buf: Uint8Array): void {
    if (buf.buffer.byteLength !== this.size || this.free.length >= this.max) return
    this.free.push(Buffer.from(buf.buffer, 0, this.size))
  }
}
