/**
 * Partitions: `--groups "0-9|10-19"` cuts the lab so that peers of one group
 * reach each other and no peer of another.
 *
 * How: group g's switch ports move onto bridge `br<g>` of their own (group
 * 0 stays on br0). A frame for a host of another group finds no port to
 * leave by, as if the cable between two switches were pulled: nothing is
 * reset or refused. A new connection across the cut times out (its peer's
 * address no longer resolves, so after a few seconds the kernel reports the
 * host unreachable); an open one stalls, its data retransmitted until the
 * cut heals or TCP (or libp2p) gives up on it. `heal` puts every port back
 * on br0 and deletes the other bridges; stalled connections resume at
 * their next retransmission.
 */
import { InvalidInputError } from '../../errors.ts'
import { NotALabSwarmError } from './errors.ts'
import { batch, run } from './ip.ts'
import type { LabRecord } from './index.ts'

/**
 * "0-9|10-19" → [[0..9], [10..19]]. Each group is a comma-separated list of
 * indexes and ranges; peers no group names form one more group. Every group
 * must hold whole hosts (the peers of one process share its link).
 */
export function parseGroups (text: string, peerCount: number, lab?: LabRecord): number[][] {
  const groups: number[][] = []
  const seen = new Map<number, number>()
  const parts = text.split('|')
  parts.forEach((part, g) => {
    const members: number[] = []
    for (const item of part.split(',').map(s => s.trim())) {
      const match = /^(\d+)(?:-(\d+))?$/.exec(item)
      if (match == null) throw new InvalidInputError(`--groups: "${item}" is not a peer index or a range like 0-9 (groups are separated by "|", e.g. "0-9|10-19")`)
      const from = Number(match[1])
      const to = match[2] != null ? Number(match[2]) : from
      if (to < from) throw new InvalidInputError(`--groups: range ${item} runs backwards`)
      if (to >= peerCount) throw new InvalidInputError(`--groups: peer ${to} does not exist (the swarm has peers 0 to ${peerCount - 1})`)
      for (let i = from; i <= to; i++) {
        const other = seen.get(i)
        if (other != null && other !== g) throw new InvalidInputError(`--groups: peer ${i} is in two groups`)
        if (other == null) members.push(i)
        seen.set(i, g)
      }
    }
    groups.push(members)
  })
  const rest = Array.from({ length: peerCount }, (_, i) => i).filter(i => !seen.has(i))
  if (rest.length > 0) groups.push(rest)
  if (groups.filter(g => g.length > 0).length < 2) throw new InvalidInputError('--groups: a partition needs at least two groups of peers')
  if (lab != null) {
    for (const host of lab.hosts) {
      const hostGroups = new Set(host.peers.map(p => seen.get(p) ?? parts.length))
      if (hostGroups.size > 1) {
        throw new NotALabSwarmError(`--groups: peers ${host.peers[0]}-${host.peers.at(-1)} share one host process and its link; put them in the same group (or start the swarm with --peers-per-process 1)`)
      }
    }
  }
  return groups.filter(g => g.length > 0)
}

/** The bridge of group g. */
function bridgeOf (lab: LabRecord, g: number): string {
  return g === 0 ? lab.bridge : `br${g}`
}

/** Moves every host's port onto its group's bridge (a partition already in place is replaced). */
export async function applyPartition (lab: LabRecord, groups: number[][], signal?: AbortSignal): Promise<void> {
  const groupOfPeer = new Map<number, number>()
  groups.forEach((members, g) => { members.forEach(p => groupOfPeer.set(p, g)) })
  const lines: string[] = []
  for (let g = 1; g < groups.length; g++) {
    lines.push(`link add ${bridgeOf(lab, g)} type bridge stp_state 0 forward_delay 0`, `link set ${bridgeOf(lab, g)} up`)
  }
  for (const host of lab.hosts) lines.push(`link set ${host.port} master ${bridgeOf(lab, groupOfPeer.get(host.peers[0]) ?? 0)}`)
  await removeGroupBridges(lab, signal)
  await batch('ip', lines, { netns: lab.switchNamespace, signal })
}

/** Every port back on the main bridge; the group bridges go. */
export async function healPartition (lab: LabRecord, signal?: AbortSignal): Promise<void> {
  await batch('ip', lab.hosts.map(h => `link set ${h.port} master ${lab.bridge}`), { netns: lab.switchNamespace, signal })
  await removeGroupBridges(lab, signal)
}

/** Deletes every bridge of the switch but the main one (also ones a partition that died midway left). */
async function removeGroupBridges (lab: LabRecord, signal?: AbortSignal): Promise<void> {
  const out = await run('ip', ['-o', 'link', 'show', 'type', 'bridge'], { netns: lab.switchNamespace, signal })
  const bridges = out.split('\n').map(line => /^\d+:\s+([^:@\s]+)/.exec(line)?.[1]).filter((name): name is string => name != null && name !== lab.bridge)
  await batch('ip', bridges.map(name => `link del ${name}`), { netns: lab.switchNamespace, signal })
}
