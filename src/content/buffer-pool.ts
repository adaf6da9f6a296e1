/**
 * Chunk buffers for imports, reused: a fresh 1 MiB buffer per chunk makes
 * the kernel fault in and zero as many new pages as the import has bytes
 * (system time, docs/benchmarks.md); a handful of recycled buffers cost
 * nothing after the first use. They are shared
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

  /** A buffer over page-aligned SharedArrayBuffer memory: a worker reads it in place, O_DIRECT writes it. */
  acquire (): Buffer {
    return this.free.pop() ?? alignedSharedBuffer(this.size)
  }

  /** Hands a buffer back; the caller must not touch it afterwards. */
  release (buf: Uint8Array): void {
    if (buf.buffer.byteLength !== wasmPagesBytes(this.size) || this.free.length >= this.max) return
    this.free.push(Buffer.from(buf.buffer, 0, this.size))
  }
}

const WASM_PAGE = 65536
const wasmPagesBytes = (size: number): number => Math.max(1, Math.ceil(size / WASM_PAGE)) * WASM_PAGE

// this project's TypeScript setup types WebAssembly as a namespace only
const WasmMemory = (globalThis as unknown as { WebAssembly: { Memory: new (d: { initial: number, maximum: number, shared: boolean }) => { buffer: SharedArrayBuffer } } }).WebAssembly.Memory

/**
 * `size` bytes of SharedArrayBuffer memory that starts on a page boundary:
 * the memory of a shared WebAssembly.Memory (a plain SharedArrayBuffer
 * starts wherever malloc put it, and O_DIRECT refuses it with EINVAL).
 */
function alignedSharedBuffer (size: number): Buffer {
  const pages = wasmPagesBytes(size) / WASM_PAGE
  return Buffer.from(new WasmMemory({ initial: pages, maximum: pages, shared: true }).buffer, 0, size)
}
