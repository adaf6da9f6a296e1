/**
 * V8 settings for processes that move bulk data: the daemon, a swarm host
 * and the benchmarks' raw-stream processes (so the fetch's ceiling is
 * measured the same way). What each costs and saves is measured in
 * docs/benchmarks.md (Fetch).
 *
 * --external-memory-accounted-in-global-limit: by default V8 starts a full
 * mark-compact each time some tens of MB of ArrayBuffer memory (socket
 * reads, Noise frames, blocks) have been allocated, however little of it is
 * alive, so a transfer kept collecting a heap that barely changed. With the
 * flag, ArrayBuffer memory counts toward V8's global heap limit, which
 * grows with what survives, and the short-lived buffers go with the young
 * generation's scavenges.
 *
 * --no-incremental-marking (one peer per process only, see DAEMON_V8_FLAGS):
 * V8 otherwise starts an incremental mark-compact whenever a transfer's
 * ArrayBuffers cross its soft limit and runs it alongside on helper
 * threads, with the marking write barrier on the main thread. Without it V8
 * collects only at the hard limit, in one short pause of a daemon's small
 * heap. Not for a swarm host: its heap holds tens of peers, and one pause
 * of a heap that size would stall all of them.
 */
import v8 from 'node:v8'

export const BULK_TRANSFER_V8_FLAGS: readonly string[] = ['--external-memory-accounted-in-global-limit']

/** For a process that runs one peer: the daemon (and the raw-stream processes measured against it). */
export const DAEMON_V8_FLAGS: readonly string[] = [...BULK_TRANSFER_V8_FLAGS, '--no-incremental-marking']

/**
 * Applies `flags` (BULK_TRANSFER_V8_FLAGS by default) to this process. V8
 * reads these each time it sets a heap limit or decides how to collect, so
 * setting them once the process runs takes effect; call it first thing,
 * before the heap has grown. (Flags that change how the collector is built,
 * such as --single-threaded-gc, cannot be set this way: V8 aborts.)
 */
export function useBulkTransferV8Flags (flags: readonly string[] = BULK_TRANSFER_V8_FLAGS): void {
  for (const flag of flags) v8.setFlagsFromString(flag)
}
