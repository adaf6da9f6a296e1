/** Byte counts as people write and read them. */

const UNITS: Record<string, number> = {
  b: 1,
  k: 1e3, kb: 1e3, kib: 1024,
  m: 1e6, mb: 1e6, mib: 1024 ** 2,
  g: 1e9, gb: 1e9, gib: 1024 ** 3,
  t: 1e12, tb: 1e12, tib: 1024 ** 4
}

/** "1048576", "512KiB", "1.5 GB" → bytes; undefined when it does not parse. */
export function parseByteSize (text: string): number | undefined {
  const match = /^\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*$/.exec(text)
  if (match == null) return undefined
  const unit = UNITS[match[2].toLowerCase() === '' ? 'b' : match[2].toLowerCase()]
  if (unit == null) return undefined
  const value = Math.floor(Number(match[1]) * unit)
  return Number.isSafeInteger(value) ? value : undefined
}

export function formatBytes (n: number): string {
  if (!Number.isFinite(n)) return 'unlimited'
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB']
  let value = n
  let unit = 0
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024
    unit++
  }
  return `${unit === 0 ? value : value.toFixed(1)} ${units[unit]}`
}

/**
 * Copies `source[from, to)` into `target` at `at` as one memmove; returns
 * the bytes copied. Not `target.set(source.subarray(...), at)`: into shared
 * memory (the block pools are shared) V8 copies with relaxed atomic loads
 * and stores, several times slower than Buffer's copy (docs/benchmarks.md,
 * Fetch).
 */
export function copyBytes (source: Uint8Array, target: Uint8Array, at: number, from = 0, to = source.length): number {
  return (Buffer.prototype.copy as (this: Uint8Array, target: Uint8Array, targetStart: number, sourceStart: number, sourceEnd: number) => number).call(source, target, at, from, to)
}
