/**
 * The lab: a swarm whose peers sit on separate hosts joined by links with a
 * capped rate and a delay, which can be cut into partitions, killed and
 * restarted (`shoal swarm up --netns`, docs/lab.md).
 *
 *   host netns shoal-<id>-h0          switch netns shoal-<id>-sw         host netns shoal-<id>-h1
 *   ┌──────────────────────┐         ┌──────────────────────────┐        ┌──────────────────────┐
 *   │ daemon (peer 0)      │         │          br0             │        │ daemon (peer 1)      │
 *   │ 10.77.0.1:4001       │  veth   │   ┌──────┴──────┐        │  veth  │ 10.77.0.2:4001       │
 *   │ eth0 ──tbf (uplink)──┼─────────┼─ h0            h1 ──tbf ─┼────────┼─ eth0                │
 *   │ <repo>/api.sock      │         │ (downlink tbf on each    │        │ <repo>/api.sock      │
 *   └──────────────────────┘         │  port, toward its host)  │        └──────────────────────┘
 *                                    └──────────────────────────┘
 *
 * - A host is one network namespace holding one daemon process: a peer of
 *   its own (the default up to 20 peers), or a swarm host process with
 *   several peers, which then share the host's link, each with its own
 *   address on it. Kill, start and churn act on processes, so they need a
 *   process per peer.
 * - The bridge sits in a namespace of its own with no address: nothing of
 *   the lab is in the machine's own network namespace, no namespace has a
 *   route out of 10.77.0.0/16, and nothing the lab sends can leave the
 *   machine. Two swarms never share a namespace or a bridge: the names
 *   derive from the swarm folder (`<id>`).
 * - Rates: a tbf qdisc on each end of a host's veth, the host's egress for
 *   its uplink, the switch port's egress for its downlink (links.ts).
 *   Delay: the kernel has no netem, so Shoal's TCP transport holds each
 *   received chunk for the host's latency (src/transport/link-delay.ts),
 *   following the host's link file.
 * - Partitions: each group's ports move to a bridge of its own (partition.ts):
 *   frames between groups have nowhere to go, as with a cut cable between
 *   two switches.
 * - The CLI and API reach each peer through `<repo>/api.sock`, a pathname
 *   socket, which works across network namespaces.
 * - swarm.json records every namespace before it is made, so `down` finds
 *   all of them even after the processes were SIGKILLed or a `down` died
 *   midway; it also kills whatever still runs inside them.
 */

/** The lab's addresses; only ever configured inside the lab's namespaces. */
export const LAB_SUBNET = '10.77.0.0/16'
export const LAB_SUBNET_PREFIX_LENGTH = 16
/** libp2p's allow-list entry for lab peers (no inbound rate limit among them). */
export const LAB_SUBNET_MULTIADDR = '/ip4/10.77.0.0/ipcidr/16'
/** Every lab peer listens on its own address at this port, so a restart keeps its multiaddr. */
export const LAB_PEER_PORT = 4001

/** One host's link: bytes per second each way (null: not capped) and one-way delay. */
export interface LinkSpec {
  /** What the host may send (its egress), bytes/s. */
  uplink: number | null
  /** What the host may receive (the switch's egress toward it), bytes/s. */
  downlink: number | null
  /** Added to every byte the host receives, ms. */
  latencyMs: number
}

export const UNLIMITED_LINK: LinkSpec = { uplink: null, downlink: null, latencyMs: 0 }

/** A lab host as swarm.json records it. */
export interface LabHost {
  index: number
  /** Its network namespace. */
  namespace: string
  /** Its veth's end in the switch namespace (a bridge port). */
  port: string
  /** Indexes of the peers it runs. */
  peers: number[]
  /** Each peer's address, in the order of `peers`. */
  addresses: string[]
  link: LinkSpec
  /** The file its delay stage follows (`{ latencyMs }`). */
  linkFile: string
}

/** swarm.json's `lab` section. */
export interface LabRecord {
  /** From the swarm folder's path: part of every namespace name. */
  id: string
  subnet: string
  switchNamespace: string
  /** The bridge every port is on when no partition is in place. */
  bridge: string
  hosts: LabHost[]
  /** Peer indexes of each group while a partition is in place, else null. */
  partition: number[][] | null
}

export { LabUnavailableError, LabCommandError, NotALabSwarmError } from './errors.ts'
