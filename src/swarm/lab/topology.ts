/**
 * The lab's network: names and addresses (planned from the swarm folder and
 * the process layout), building it, and taking it down.
 */
import { createHash } from 'node:crypto'
import { readdirSync, readlinkSync, realpathSync, statSync } from 'node:fs'
import path from 'node:path'
import { mapConcurrent } from '../../utils/wait.ts'
import { LabCommandError } from './errors.ts'
import { batch, run } from './ip.ts'
import { LAB_SUBNET, LAB_SUBNET_PREFIX_LENGTH, type LabHost, type LabRecord, type LinkSpec } from './index.ts'

/** `ip` commands in flight at once while building or shaping hosts. */
const IP_CONCURRENCY = 8

/** The lab id of a swarm folder: the same folder always gets the same names. */
export function labId (dir: string): string {
  let real = path.resolve(dir)
  try { real = realpathSync(real) } catch {}
  return createHash('sha256').update(real).digest('hex').slice(0, 8)
}

export function switchNamespaceName (id: string): string {
  return `shoal-${id}-sw`
}

export function hostNamespaceName (id: string, host: number): string {
  return `shoal-${id}-h${host}`
}

/** Peer i's address: 10.77.0.1 for peer 0, counting up through the /16. */
export function peerAddress (index: number): string {
  const n = index + 1
  if (n >= 65_535) throw new RangeError(`no lab address for peer ${index}`)
  return `10.77.${n >> 8}.${n & 255}`
}

/**
 * The lab for a swarm folder whose processes run these groups of peers
 * (one group per process). Nothing is made.
 */
export function planLab (dir: string, processGroups: number[][], link: (host: number) => LinkSpec): LabRecord {
  const id = labId(dir)
  const hosts: LabHost[] = processGroups.map((peers, h) => ({
    index: h,
    namespace: hostNamespaceName(id, h),
    port: `h${h}`,
    peers,
    addresses: peers.map(peerAddress),
    link: link(h),
    linkFile: path.join(path.resolve(dir), 'lab', `host-${h}.link.json`)
  }))
  return { id, subnet: LAB_SUBNET, switchNamespace: switchNamespaceName(id), bridge: 'br0', hosts, partition: null }
}

/**
 * Builds it: the switch namespace with its bridge, then every host's
 * namespace, veth pair and addresses. No namespace of it may exist yet.
 */
export async function createLab (lab: LabRecord, signal?: AbortSignal): Promise<void> {
  const sw = lab.switchNamespace
  await batch('ip', [`netns add ${sw}`, ...lab.hosts.map(h => `netns add ${h.namespace}`)], { signal })
  await batch('ip', [
    'link set lo up',
    // no spanning tree and no forwarding delay: a port forwards as soon as it is up
    `link add ${lab.bridge} type bridge stp_state 0 forward_delay 0`,
    `link set ${lab.bridge} up`
  ], { netns: sw, signal })
  await batch('ip', lab.hosts.map(h => `link add ${h.port} netns ${sw} type veth peer name eth0 netns ${h.namespace}`), { signal })
  await batch('ip', lab.hosts.flatMap(h => [`link set ${h.port} master ${lab.bridge}`, `link set ${h.port} up`]), { netns: sw, signal })
  await mapConcurrent(lab.hosts, IP_CONCURRENCY, async (h) => {
    await batch('ip', [
      'link set lo up',
      ...h.addresses.map(a => `addr add ${a}/${LAB_SUBNET_PREFIX_LENGTH} dev eth0`),
      'link set eth0 up'
    ], { netns: h.namespace, signal })
  })
}

/** Network namespaces that exist now (`ip netns list`). */
export async function listNamespaces (): Promise<Set<string>> {
  const out = await run('ip', ['netns', 'list'])
  return new Set(out.split('\n').map(line => line.split(' ')[0]).filter(name => name !== ''))
}

/** Every namespace name of a lab, recorded or derived. */
export function labNamespaces (lab: Pick<LabRecord, 'switchNamespace' | 'hosts'>): string[] {
  return [...lab.hosts.map(h => h.namespace), lab.switchNamespace]
}

/** The namespaces present whose names say they belong to this lab id (also ones swarm.json does not list). */
export async function namespacesOfLab (id: string): Promise<string[]> {
  return [...await listNamespaces()].filter(name => name.startsWith(`shoal-${id}-`))
}

/**
 * Pids of the live processes inside a network namespace (what `ip netns
 * pids` does, without a process per namespace): a process whose
 * /proc/PID/ns/net is the namespace's file. A zombie has left its
 * namespaces and is not listed.
 */
export function pidsInNamespace (namespace: string): number[] {
  let target: string
  try {
    target = namespaceInode(`/var/run/netns/${namespace}`)
  } catch {
    return []
  }
  const pids: number[] = []
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue
    try {
      if (readlinkSync(`/proc/${entry}/ns/net`) === target) pids.push(Number(entry))
    } catch {}
  }
  return pids
}

/** `net:[INODE]` of a namespace file (a bind mount of the namespace), as /proc/PID/ns/net names it. */
function namespaceInode (file: string): string {
  return `net:[${statSync(file, { bigint: true }).ino}]`
}

/**
 * Deletes the namespaces (their veths, bridges and qdiscs go with them).
 * What is already gone is skipped; throws if any is still there after.
 */
export async function deleteNamespaces (names: string[]): Promise<void> {
  if (names.length === 0) return
  await batch('ip', names.map(n => `netns del ${n}`), { force: true }).catch(() => {})
  const left = [...await listNamespaces()].filter(n => names.includes(n))
  if (left.length > 0) {
    // a second try for a name whose bind mount was busy a moment ago
    await batch('ip', left.map(n => `netns del ${n}`), { force: true }).catch(() => {})
    const still = [...await listNamespaces()].filter(n => names.includes(n))
    if (still.length > 0) {
      throw new LabCommandError(`could not delete network namespace(s) ${still.join(', ')} (run "shoal swarm down" again, or "ip netns del NAME")`)
    }
  }
}
