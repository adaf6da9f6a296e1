/**
 * Private addresses: loopback, the private and shared ranges, link-local,
 * unspecified. A peer on the public network has no business dialling them
 * because a remote peer said so: a hostile DHT reply naming
 * `/ip4/127.0.0.1/tcp/22` or a router on the LAN would otherwise make the
 * daemon connect there (libp2p's peer store keeps every address a reply
 * names, and dials them when a lookup reaches those peers).
 *
 * Config `connections.privateAddresses`:
 * - true: peers' private addresses are kept and dialled (a LAN, a local
 *   swarm, the lab);
 * - false: they are dropped from the peer store, left out of DHT replies
 *   and routing-table admission, and never dialled (bootstrap entries
 *   included);
 * - 'auto' (default): true when every listen and announce address of this
 *   peer is itself private, i.e. the peer can only ever talk to a private
 *   network (test swarms, `swarm up` and the lab listen on such addresses);
 *   false as soon as it listens on a public or wildcard address
 *   (`0.0.0.0`, the default) or announces a public one.
 */
import { BlockList } from 'node:net'
import { multiaddr, type Multiaddr } from '@multiformats/multiaddr'

export type PrivateAddressesSetting = 'auto' | boolean

const PRIVATE = new BlockList()
for (const [net, prefix] of [
  ['0.0.0.0', 8], ['10.0.0.0', 8], ['100.64.0.0', 10], ['127.0.0.0', 8],
  ['169.254.0.0', 16], ['172.16.0.0', 12], ['192.168.0.0', 16]
] as const) PRIVATE.addSubnet(net, prefix, 'ipv4')
for (const [net, prefix] of [
  ['::', 128], ['::1', 128], ['fc00::', 7], ['fe80::', 10]
] as const) PRIVATE.addSubnet(net, prefix, 'ipv6')

/** The IP host of a multiaddr (`/ip4`, `/ip6`), or undefined (DNS names, other transports). */
function ipHost (ma: Multiaddr): { host: string, family: 'ipv4' | 'ipv6' } | undefined {
  const first = ma.getComponents()[0]
  if (first?.value == null) return undefined
  if (first.name === 'ip4') return { host: first.value, family: 'ipv4' }
  if (first.name === 'ip6') {
    // an IPv4-mapped IPv6 address is the IPv4 address
    const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(first.value)
    return mapped != null ? { host: mapped[1], family: 'ipv4' } : { host: first.value, family: 'ipv6' }
  }
  return undefined
}

/** True for an IP multiaddr in a loopback, private, shared, link-local or unspecified range. */
export function isPrivateAddress (ma: Multiaddr | string): boolean {
  const ip = ipHost(typeof ma === 'string' ? multiaddr(ma) : ma)
  return ip != null && PRIVATE.check(ip.host, ip.family)
}

function isUnspecified (ma: Multiaddr): boolean {
  const ip = ipHost(ma)
  return ip != null && (ip.host === '0.0.0.0' || ip.host === '::')
}

/** Resolves the setting for a peer listening on `listen` and announcing `announce`. */
export function privateAddressesAllowed (setting: PrivateAddressesSetting, listen: string[], announce: string[] = []): boolean {
  if (setting !== 'auto') return setting
  const own = [...listen, ...announce].map(a => multiaddr(a))
  return own.length > 0 && own.every(ma => isPrivateAddress(ma) && !isUnspecified(ma))
}
