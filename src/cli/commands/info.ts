/** id, peers, status: read-only questions to the running daemon. */
import type { Command } from 'commander'
import { ApiClient } from '../../api/client.ts'
import { formatBytes } from '../../utils/bytes.ts'
import { globals, output } from '../context.ts'

export function registerInfo (program: Command): void {
  program.command('id')
    .description('peer ID and listen addresses of the running daemon')
    .action(async (_opts, command: Command) => {
      const g = globals(command)
      const id = await (await ApiClient.fromRepo(g.repo)).id()
      output(g, { peerId: id.peerId, multiaddrs: id.multiaddrs, agentVersion: id.agentVersion },
        r => [`peer ID ${r.peerId}`, ...r.multiaddrs].join('\n'))
    })

  program.command('peers')
    .description('peers the daemon is connected to')
    .action(async (_opts, command: Command) => {
      const g = globals(command)
      const peers = await (await ApiClient.fromRepo(g.repo)).peers()
      output(g, { peers }, r => r.peers.map(p => `${withPeerId(p.multiaddr, p.peerId)} (${p.direction})`).join('\n'))
    })

  program.command('status')
    .description('daemon status: peer ID, uptime, connections, routing table')
    .action(async (_opts, command: Command) => {
      const g = globals(command)
      const s = await (await ApiClient.fromRepo(g.repo)).status()
      output(g, s, r => [
        `peer ID        ${r.peerId}`,
        `version        ${r.version}`,
        `repo           ${r.repo}`,
        `uptime         ${r.uptimeSeconds} s`,
        `connections    ${r.connections}`,
        `DHT            ${r.dht.mode}, ${r.dht.routingTableSize} peers in routing table (${r.dht.protocol})`,
        `API            http://${r.api ?? '-'}`,
        `store          ${r.store.blocks} blocks, ${formatBytes(r.store.bytes)} of ${formatBytes(r.store.quotaBytes)} quota`,
        ...r.multiaddrs.map(ma => `listening      ${ma}`)
      ].join('\n'))
    })
}

function withPeerId (ma: string, peerId: string): string {
  return ma.includes('/p2p/') ? ma : `${ma}/p2p/${peerId}`
}
