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
 */
import v8 from 'node:v8'

export const BULK_TRANSFER_V8_FLAGS: readonly string[] = ['--external-memory-accounted-in-global-limit']

/**
 * Applies BULK_TRANSFER_V8_FLAGS to this process. V8 reads this flag each
 * time it sets a heap limit, so setting it once the process runs takes
 * effect; call it first thing, before the heap has grown.
 */
export function useBulkTransferV8Flags (): void {
  for (const flag of BULK_TRANSFER_V8_FLAGS) v8.setFlagsFromString(flag)
}
