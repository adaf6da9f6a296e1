/**
 * `shoal lookup KEY|CID`: one lookup through the daemon's overlay, hop by
 * hop, and the k peers responsible for the key (`GET /api/v1/lookup`).
 */
import type { Command } from 'commander'
import { ApiClient } from '../../api/client.ts'
import { keyBytes, type LookupResponse } from '../../api/routing-routes.ts'
import { globals, output } from '../context.ts'
import { intOption } from '../parse.ts'
import { distanceText } from './routing.ts'

export function registerLookup (program: Command): void {
  program.command('lookup')
    .description('look a key up through the overlay: the path hop by hop and the k responsible peers')
    .argument('<key>', 'a CID (looked up under its multihash, as its block is placed) or hex of the key bytes')
    .option('--replicas <k>', 'how many responsible peers (default: config "replicas")', intOption('--replicas', 1, 64))
    .action(async (key: string, opts: { replicas?: number }, command: Command) => {
      const g = globals(command)
      const result = await (await ApiClient.fromRepo(g.repo)).lookup(key, { replicas: opts.replicas })
      const distance = g.json ? undefined : await distanceText(result.overlay, keyBytes(result.key))
      output(g, result, r => lookupText(r, distance!))
    })
}

function lookupText (r: LookupResponse, distance: (peerId: string) => string): string {
  const width = Math.max(...r.path.map(h => h.peerId.length), 0)
  return [
    `${r.overlay} lookup of ${r.key}: ${r.hops} hops, ${r.messages} messages, ${Math.round(r.ms)} ms`,
    ...r.path.map(h => `  hop ${String(h.hop).padStart(2)}  ${h.peerId.padEnd(width)}  ${distance(h.peerId)}  ${h.ok ? `answered at ${Math.round(h.ms)} ms` : `FAILED at ${Math.round(h.ms)} ms`}`),
    `responsible (${r.responsible.length}, ${r.overlay === 'chord' ? 'the key\'s successor first' : 'closest first'}):`,
    ...r.responsible.map((id, i) => `  ${i + 1}. ${id}  ${distance(id)}`)
  ].join('\n')
}
