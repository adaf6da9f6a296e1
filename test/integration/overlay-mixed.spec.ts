/**
 * A Kademlia peer and a Chord peer refuse each other: each names the
 * other in one log line and disconnects, neither routes to the other.
 */
import assert from 'node:assert/strict'
import fs from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { format } from 'node:util'
import type { ComponentLogger, Logger } from '@libp2p/interface'
import { ShoalPeer } from '../../src/peer/peer.ts'
import { Repo } from '../../src/peer/repo.ts'
import type { OverlayName } from '../../src/routing/index.ts'
import { waitFor } from '../../src/utils/wait.ts'

/** A logger that keeps every error line (the level refusals are logged at). */
function errorLines (): { logger: ComponentLogger, lines: string[] } {
  const lines: string[] = []
  const make = (): Logger => Object.assign(() => {}, {
    enabled: false,
    error: (fmt: unknown, ...args: unknown[]) => { lines.push(format(String(fmt), ...args)) },
    trace: () => {},
    newScope: (): Logger => make()
  })
  return { logger: { forComponent: () => make() }, lines }
}

describe('peers of different overlays', function () {
  this.timeout(60_000)
  let dir: string
  const peers: ShoalPeer[] = []
  before(async () => { dir = await fs.mkdtemp(path.join(os.tmpdir(), 'shoal-mixed-')) })
  after(async () => {
    for (const peer of peers.reverse()) await peer.stop()
    await fs.rm(dir, { recursive: true, force: true })
  })

  const start = async (overlay: OverlayName, bootstrap: string[]): Promise<{ peer: ShoalPeer, lines: string[] }> => {
    const repo = path.join(dir, overlay)
    await Repo.init(repo, { overlay, listen: ['/ip4/127.0.0.1/tcp/0'], api: '127.0.0.1:0' })
    const { logger, lines } = errorLines()
    const peer = await ShoalPeer.open(repo, { bootstrap, metrics: false, logger })
    peers.push(peer)
    await peer.start()
    return { peer, lines }
  }

  it('refuse each other with one log line each and never route to each other', async () => {
    const kad = await start('kademlia', [])
    const chord = await start('chord', kad.peer.multiaddrs())
    const kadId = kad.peer.peerId.toString()
    const chordId = chord.peer.peerId.toString()
    const about = (lines: string[], id: string): string[] => lines.filter(line => line.includes(`refusing peer ${id}`))
    await waitFor(() => about(kad.lines, chordId).length > 0 && about(chord.lines, kadId).length > 0, {
      timeoutMs: 30_000, intervalMs: 50, message: () => `refusals logged: kademlia ${JSON.stringify(kad.lines)}, chord ${JSON.stringify(chord.lines)}`
    })
    assert.deepEqual(about(kad.lines, chordId), [
      `refusing peer ${chordId}: it runs the chord overlay (/shoal/chord/1.0.0), this peer runs kademlia (config "overlay"); disconnected`
    ])
    assert.deepEqual(about(chord.lines, kadId), [
      `refusing peer ${kadId}: it runs the kademlia overlay (/shoal/kad/1.0.0), this peer runs chord (config "overlay"); not added to the ring, disconnected`
    ])
    await waitFor(() => kad.peer.libp2p.getConnections().length === 0, { timeoutMs: 10_000, intervalMs: 50, message: () => 'still connected' })
    assert.deepEqual(kad.peer.routingTablePeers(), [])
    assert.deepEqual(chord.peer.routingTablePeers(), [])
  })
})
