/**
 * `shoal routing`: the daemon's routing state as its overlay arranges it
 * (`GET /api/v1/routing`): Kademlia's k-buckets, or Chord's predecessor,
 * successor list and fingers. Also how far a peer is from a key, as each
 * overlay measures it (`shoal lookup` prints it per hop).
 */
import type { Command } from 'commander'
import { ApiClient } from '../../api/client.ts'
import type { RoutingResponse } from '../../api/routing-routes.ts'
import type { OverlayName } from '../../routing/index.ts'
import { globals, output } from '../context.ts'

export function registerRouting (program: Command): void {
  program.command('routing')
    .description('the daemon\'s routing state: k-buckets (Kademlia), or predecessor, successor list and fingers (Chord)')
    .action(async (_opts, command: Command) => {
      const g = globals(command)
      const routing = await (await ApiClient.fromRepo(g.repo)).routing()
      output(g, routing, routingText)
    })
}

function routingText (r: RoutingResponse): string {
  if (r.overlay === 'kademlia') {
    const peers = r.buckets.reduce((n, b) => n + b.peers.length, 0)
    return [
      `kademlia routing table of ${r.self}: ${peers} peers in ${r.buckets.length} buckets`,
      ...r.buckets.flatMap(b => [`  bucket ${String(b.prefix).padStart(3)} (shares ${b.prefix} leading bits): ${b.peers.length} peers`, ...b.peers.map(p => `    ${p}`)])
    ].join('\n')
  }
  return [
    `chord ring state of ${r.self}`,
    `  predecessor  ${r.predecessor ?? '(none yet)'}`,
    `  successors (${r.successors.length}, nearest first):`,
    ...r.successors.map((p, i) => `    ${String(i + 1).padStart(2)}. ${p}`),
    `  fingers (${r.fingers.length} distinct; finger i = successor of self + 2^i):`,
    ...r.fingers.map(f => `    ${String(f.index).padStart(3)}  ${f.peerId}`)
  ].join('\n')
}

/**
 * How far each peer is from `key`, as the overlay measures it: Kademlia,
 * the XOR distance as a power of two ("xor 2^250": 255 - the exponent
 * leading bits shared with the key); Chord, where the peer sits on the ring
 * relative to the key, as a share of the ring ("at key+0.000120": just past
 * the key, where its successor is; "at key-0.240177": before it, where a
 * lookup's hops are).
 */
export async function distanceText (overlay: OverlayName, key: Uint8Array): Promise<(peerId: string) => string> {
  const { peerIdFromString } = await import('@libp2p/peer-id')
  const { idOfKey, idOfPeer } = await import('../../routing/key-space.ts')
  const target = BigInt('0x' + Buffer.from(idOfKey(key)).toString('hex'))
  const position = (peerId: string): bigint => BigInt('0x' + Buffer.from(idOfPeer(peerIdFromString(peerId))).toString('hex'))
  const ring = 1n << 256n
  if (overlay === 'kademlia') {
    return peerId => {
      const d = position(peerId) ^ target
      return d === 0n ? 'xor 0' : `xor 2^${d.toString(2).length - 1}`
    }
  }
  const share = (d: bigint): string => (Number(d * 1_000_000n / ring) / 1_000_000).toFixed(6)
  return peerId => {
    const past = ((position(peerId) - target) % ring + ring) % ring
    return past < ring / 2n ? `at key+${share(past)}` : `at key-${share(ring - past)}`
  }
}
