/**
 * A host's link: its rates as tbf qdiscs on the two ends of its veth, its
 * delay through its link file (read by the delay stage in its daemon).
 *
 * tbf counts whole Ethernet frames, so TCP's payload gets a few percent less
 * than the rate (its headers). Its two knobs decide how exact the cap is:
 * - burst: bytes that may leave at once after an idle spell. It must cover
 *   what arrives between two timer ticks or the rate falls short, and
 *   every byte of it is sent above the rate: TBF_BURST_MS of the rate (at
 *   least TBF_MIN_BURST_BYTES, a few full frames).
 * - queue: how long a packet may wait before it is dropped (tbf's
 *   `latency`). Too short and TCP loses packets it could have kept the
 *   link busy with; too long and every packet waits behind a full queue.
 */
import fs from 'node:fs/promises'
import path from 'node:path'
import { writeFileAtomic } from '../../peer/repo.ts'
import type { LinkFile } from '../../transport/link-delay.ts'
import { formatBytes } from '../../utils/bytes.ts'
import { mapConcurrent } from '../../utils/wait.ts'
import { batch } from './ip.ts'
import type { LabHost, LabRecord, LinkSpec } from './index.ts'

export const TBF_BURST_MS = 5
export const TBF_MIN_BURST_BYTES = 4 * 1024
export const TBF_QUEUE_MS = 20
/** Highest rate tc takes (its 64-bit rates are bytes/s). */
export const MAX_LINK_RATE = 2 ** 40
export const MAX_LATENCY_MS = 10_000

/** The tc words of a tbf qdisc for this rate in bytes/s. */
export function tbfSpec (rate: number): string {
  const burst = Math.max(TBF_MIN_BURST_BYTES, Math.ceil(rate * TBF_BURST_MS / 1000))
  return `tbf rate ${rate * 8}bit burst ${burst} latency ${TBF_QUEUE_MS}ms`
}

/** The tc line that sets (or, with no rate, removes) a device's cap. */
function capLine (dev: string, rate: number | null): string {
  return rate == null ? `qdisc del dev ${dev} root` : `qdisc replace dev ${dev} root ${tbfSpec(rate)}`
}

/**
 * Puts each host's link in place: uplink on its eth0, downlink on its
 * switch port, latency in its link file. Removing a cap that is not there
 * is not an error (`-force`).
 */
export async function applyLinks (lab: LabRecord, hosts: LabHost[], signal?: AbortSignal): Promise<void> {
  await mapConcurrent(hosts, 8, async (h) => {
    await writeLinkFile(h.linkFile, { latencyMs: h.link.latencyMs })
    await batch('tc', [capLine('eth0', h.link.uplink)], { netns: h.namespace, force: h.link.uplink == null, signal })
      .catch(err => { if (h.link.uplink != null) throw err })
  })
  const downCaps = hosts.filter(h => h.link.downlink != null)
  const downFree = hosts.filter(h => h.link.downlink == null)
  await batch('tc', downCaps.map(h => capLine(h.port, h.link.downlink)), { netns: lab.switchNamespace, signal })
  await batch('tc', downFree.map(h => capLine(h.port, null)), { netns: lab.switchNamespace, force: true, signal }).catch(() => {})
}

export async function writeLinkFile (file: string, link: LinkFile): Promise<void> {
  await fs.mkdir(path.dirname(file), { recursive: true })
  await writeFileAtomic(file, JSON.stringify(link) + '\n', 0o644)
}

/** "16.0 MiB/s up, unlimited down, 25 ms" */
export function describeLink (link: LinkSpec): string {
  const rate = (r: number | null): string => r == null ? 'uncapped' : `${formatBytes(r)}/s`
  return `up ${rate(link.uplink)}, down ${rate(link.downlink)}, latency ${link.latencyMs} ms`
}
