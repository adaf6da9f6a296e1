/**
 * V8 settings for processes that move bulk data: the daemon, a swarm host
 * and the benchmarks' raw-stream processes (so the fetch's ceiling is
 * measured the same way).
 *
 * --external-memory-accounted-in-global-limit: by default V8 starts a full
 * mark-compact every time some tens of MB of ArrayBuffer memory (every socket
 * read, Noise frame, block) have been allocated, however little of it is
 * alive: in a daemon, whose heap holds libp2p, the DHT and the API (~28 MB),
 * that was a ~30 ms mark-compact every ~100 ms of a fetch, ~2.3 CPU-s per
 * GiB on each side. With the flag, ArrayBuffer memory counts toward V8's
 * global heap limit, which grows with what survives, and the short-lived
 * buffers are freed by the young generation's scavenges. Measured on a
 * 1-holder fetch of 256 MiB among 3 daemons (docs/benchmarks.md): holder +
 * fetcher 13.6 -> 8.3 CPU-s per GiB, 130 -> ~200 MiB/s.
 *
 * --no-incremental-marking (one peer per process only, see DAEMON_V8_FLAGS):
 * V8 still started an incremental mark-compact whenever a transfer's
 * ArrayBuffers crossed its soft limit, and ran it alongside on helper
 * threads: 18 on a holder over three 256 MiB fetches, the helpers ~1.2
 * CPU-s per GiB on each side, the marking write barrier on the main thread
 * on top. Without incremental marking V8 collects only at the hard limit,
 * in one pause: 1 mark-compact instead of 18, each 22-48 ms on a daemon's
 * ~20 MB heap. Measured in interleaved rounds of 256 MiB fetches among
 * daemons: 4 holders 140-152 -> 177-204 MiB/s (holders + fetcher 12-12.8 ->
 * 8.7-9.7 CPU-s per GiB), 1 holder 219-248 -> 247-272 MiB/s. Not for a
 * swarm host: its heap holds tens of peers, and one pause of a heap that
 * size would stall all of them.
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
