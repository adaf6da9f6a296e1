/**
 * A fetch whose only holder is neither among the fetcher's connected peers
 * nor among the peers it would ask for a block: the fetcher finds it through
 * the root's provider records in the overlay and gets the exact bytes from
 * it, on each overlay (kad-dht's provider records; Chord's, kept by the
 * root's k responsible peers). Without the provider lookup the same fetch finds
 * nobody (that case stubs the overlay out, so it runs on Kademlia only).
 *
 * In a small swarm every peer soon reconnects to every other (the overlay
 * keeps its routing table connected), so the holder is hidden from the
 * fetch's view of the connections (its `connection` component) rather
 * than hung up on; the fetch still opens its streams to it through libp2p.
 */
import assert from 'node:assert/strict'
import fs from 'node:fs/promises'
import path from 'node:path'
import { defaultLogger } from '@libp2p/logger'
import type { CID } from 'multiformats/cid'
import { Fetcher, type FetchConnection, type FetchOverlay } from '../../src/exchange/index.ts'
import type { ShoalPeer } from '../../src/peer/peer.ts'
import { OVERLAY_NAMES } from '../../src/routing/index.ts'
import { createTestSwarm, type TestSwarm } from '../../src/swarm/test-swarm.ts'
import { shareOn } from '../helpers/swarm.ts'

const KiB = 1024

for (const overlayName of OVERLAY_NAMES) {
  describe(`fetch from a holder found only through provider records, on ${overlayName}`, function () {
    this.timeout(120_000)
    let swarm: TestSwarm
    before(async () => { swarm = await createTestSwarm(6, { overlay: overlayName }) })
    after(async () => { await swarm?.destroy() })

    /**
     * A Fetcher on `peer` whose planner names nobody (so no block's
     * responsible peers are asked) and whose provider lookup is the peer's
     * own overlay's, or none; the providers it yields are recorded.
     */
    function fetcherWith (peer: ShoalPeer, hidden: ShoalPeer, providers: 'overlay' | 'none'): { fetcher: Fetcher, found: string[] } {
      const found: string[] = []
      const overlay: FetchOverlay = {
        planner: () => ({ plan: async keys => ({ responsible: keys.map(() => []), lookups: 0, ms: 0 }), exclude: () => {} }),
        provide: async () => {},
        findProviders: async function * (key: CID, options) {
          if (providers === 'none') return
          for await (const id of peer.overlay.findProviders(key, options)) {
            found.push(id)
            yield id
          }
        }
      }
      const connection: FetchConnection = {
        peerId: peer.libp2p.peerId,
        getPeers: () => peer.libp2p.getPeers().filter(p => !p.equals(hidden.peerId)),
        dialProtocol: peer.libp2p.dialProtocol.bind(peer.libp2p)
      }
      return { fetcher: new Fetcher({ content: peer.content, connection, overlay, logger: defaultLogger() }), found }
    }

    it('finds the only holder by the root\'s provider records and fetches the exact bytes', async () => {
      const [, seeder, , , , fetcherPeer] = swarm.peers
      const { root, data } = await shareOn([seeder], { dir: swarm.dir, size: 700 * KiB, chunkSize: 256 * KiB })
      const { fetcher, found } = fetcherWith(fetcherPeer, seeder, 'overlay')
      try {
        const target = path.join(swarm.dir, 'by-providers.bin')
        const result = await fetcher.fetch(root, { output: { path: target }, timeoutMs: 30_000 })
        assert.ok((await fs.readFile(target)).equals(data), 'byte for byte the shared file')
        assert.ok(found.includes(seeder.peerId.toString()), `the provider lookup named the seeder (it named ${JSON.stringify(found)})`)
        assert.deepEqual(Object.keys(result.peers), [seeder.peerId.toString()])
        assert.equal(result.peers[seeder.peerId.toString()], data.length)
      } finally {
        await fetcher.stop()
      }
    })

    // no overlay in it at all: once is enough
    if (overlayName === 'kademlia') it('without the provider lookup, the same kind of fetch finds nobody', async () => {
      const [, , seeder, , fetcherPeer] = swarm.peers
      const { root } = await shareOn([seeder], { dir: swarm.dir, size: 700 * KiB, chunkSize: 256 * KiB })
      const { fetcher } = fetcherWith(fetcherPeer, seeder, 'none')
      try {
        await assert.rejects(fetcher.fetch(root, { output: { path: path.join(swarm.dir, 'never.bin') }, timeoutMs: 3_000 }), (err: Error) => {
          assert.equal(err.name, 'ContentNotFoundError')
          assert.equal(err.message, `no holder of ${root.toString()} answered within 3 s`)
          return true
        })
      } finally {
        await fetcher.stop()
      }
    })
  })
}
