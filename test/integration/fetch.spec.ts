/**
 * Parallel fetch on a real swarm (in-process peers, real TCP, real repos):
 * many holders at once, holders leaving mid-fetch, a peer that sends wrong
 * bytes, a peer that floods requests. The fetches that find their holders
 * through the overlay (its planner and provider records) run on both
 * overlays; the cases where the overlay plays no part (a stub overlay, the
 * raw xfer protocol, an error before any lookup, the bytes one holder
 * sends) run on Kademlia only.
 */
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import fs from 'node:fs/promises'
import path from 'node:path'
import { pbStream } from '@libp2p/utils'
import type { Stream } from '@libp2p/interface'
import { defaultLogger } from '@libp2p/logger'
import { MemoryDatastore } from 'datastore-core/memory'
import type { CID } from 'multiformats/cid'
import { Fetcher, type FetcherComponents, type FetchOverlay, type FetchStore } from '../../src/exchange/index.ts'
import type { OutputFileSystem } from '../../src/exchange/output-file.ts'
import { XferSession } from '../../src/exchange/xfer-client.ts'
import type { ShoalPeer } from '../../src/peer/peer.ts'
import { OVERLAY_NAMES } from '../../src/routing/index.ts'
import { FsBlockstore } from '../../src/store/blockstore.ts'
import { ContentStore } from '../../src/store/content-store.ts'
import { createTestSwarm, type TestSwarm } from '../../src/swarm/test-swarm.ts'
import { STREAM_LIMITS } from '../../src/wire/limits.ts'
import { shareOn as shareOnPeers } from '../helpers/swarm.ts'
import {
  MAX_PENDING_WANTS, Presence, XFER_PROTOCOL, XferRequestCodec, XferResponseCodec, packBits, unpackBits
} from '../../src/wire/xfer-messages.ts'

const KiB = 1024
const MiB = 1024 * KiB

for (const overlay of OVERLAY_NAMES) {
  describe(`parallel fetch in a 10-peer swarm on ${overlay}`, function () {
    this.timeout(120_000)
    let swarm: TestSwarm
    before(async () => { swarm = await createTestSwarm(10, { overlay }) })
    after(async () => { await swarm?.destroy() })
    /** A case in which the overlay plays no part: run once, on Kademlia. */
    const itOnOneOverlay = (title: string, fn: () => Promise<void>): void => { if (overlay === 'kademlia') it(title, fn) }

    /** The same bytes shared by each of `holders` (k = 0: kept there and announced), so each holds every block. */
    const shareOn = async (holders: ShoalPeer[], size: number, chunkSize = 256 * KiB): Promise<{ root: CID, data: Buffer }> =>
      shareOnPeers(holders, { dir: swarm.dir, size, chunkSize })

    const out = (name: string): string => path.join(swarm.dir, `${name}-${Math.random()}.out`)

    it('fetches from 8 holders at once: the exact bytes, from several peers, into a file renamed only when complete', async () => {
      const holders = swarm.peers.slice(0, 8)
      const { root, data } = await shareOn(holders, 8 * MiB + 123)
      const fetcher = swarm.peers[9]
      const target = out('eight')
      const result = await fetcher.fetcher.fetch(root, { output: { path: target }, timeoutMs: 30_000 })
      assert.ok((await fs.readFile(target)).equals(data), 'byte for byte the shared file')
      assert.equal(result.size, data.length)
      assert.equal(result.local, 0)
      assert.ok(result.timings.cpuMs != null && result.timings.cpuMs > 0, `the download's CPU time is reported (${result.timings.cpuMs})`)
      const used = Object.keys(result.peers)
      assert.ok(used.length >= 3, `blocks came from ${used.length} peers: ${JSON.stringify(result.peers)}`)
      for (const id of used) assert.ok(holders.some(h => h.peerId.toString() === id))
      assert.equal(Object.values(result.peers).reduce((a, b) => a + b, 0), data.length, 'every byte received once (no leaf was here)')
      assert.deepEqual((await fetcher.content.list(root)).map(h => h.reason), ['fetched'], 'the fetcher now holds it')
      const leftovers = (await fs.readdir(swarm.dir)).filter(f => f.endsWith('.part'))
      assert.deepEqual(leftovers, [], 'no temporary file left')

      // a second fetch of the same CID downloads nothing
      const again = await fetcher.fetcher.fetch(root, { output: { path: out('again') }, timeoutMs: 30_000 })
      assert.deepEqual(again.peers, {})
      assert.equal(again.localBytes, data.length)
    })

    it('fetches an empty file and a file of one block (its root is a raw leaf)', async () => {
      for (const size of [0, 100 * KiB]) {
        const { root, data } = await shareOn([swarm.peers[1], swarm.peers[2]], size)
        const target = out(`small-${size}`)
        const result = await swarm.peers[7].fetcher.fetch(root, { output: { path: target }, timeoutMs: 30_000 })
        assert.equal(result.size, size)
        assert.ok((await fs.readFile(target)).equals(data))
      }
    })

    itOnOneOverlay('refuses to overwrite an existing output file before fetching anything', async () => {
      const { root } = await shareOn([swarm.peers[0]], 300 * KiB)
      const target = out('exists')
      await fs.writeFile(target, 'keep me')
      await assert.rejects(swarm.peers[9].fetcher.fetch(root, { output: { path: target } }), { name: 'OutputExistsError' })
      assert.equal(await fs.readFile(target, 'utf8'), 'keep me')
      assert.equal(await swarm.peers[9].content.hasBlock(root), false, 'nothing fetched')
    })

    /** An overlay that finds nobody: a fetch built with it reaches its holders as connected peers. */
    const noOverlay: FetchOverlay = {
      planner: () => ({ plan: async keys => ({ responsible: keys.map(() => []), lookups: 0, ms: 0 }), exclude: () => {} }),
      provide: async () => {},
      findProviders: async function * () {}
    }

    /** A Fetcher of its own on `peer`'s connections, with the parts a test replaces; connected to `holders`. */
    async function fetcherOn (peer: ShoalPeer, holders: ShoalPeer[], parts: Partial<FetcherComponents>): Promise<Fetcher> {
      for (const h of holders) await peer.libp2p.dial(h.peerId)
      return new Fetcher({ content: peer.content, connection: peer.libp2p, overlay: noOverlay, logger: defaultLogger(), ...parts })
    }

    itOnOneOverlay('fails with "disk full" when the output cannot be written, keeps what it wrote, and resumes from it', async () => {
      const holders = [swarm.peers[0], swarm.peers[1]]
      const { root, data } = await shareOn(holders, 6 * MiB, 256 * KiB)
      const fetcher = swarm.peers[8]
      const target = out('full')
      const part = path.join(path.dirname(target), `.${path.basename(target)}.${root.toString()}.part`)
      // a disk that fills up after 3 MiB of the output file
      let written = 0
      const fillsUp: OutputFileSystem = {
        open: async (file, flags, mode) => {
          const handle = await fs.open(file, flags, mode)
          const write = handle.write.bind(handle) as (...args: unknown[]) => Promise<{ bytesWritten: number }>
          handle.write = (async (...args: unknown[]) => {
            if (written >= 3 * MiB) throw Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC' })
            const r = await write(...args)
            written += r.bytesWritten
            return r
          }) as typeof handle.write
          return handle
        }
      }
      const full = await fetcherOn(fetcher, holders, { files: fillsUp })
      try {
        await assert.rejects(full.fetch(root, { output: { path: target }, timeoutMs: 30_000 }), (err: Error) => {
          assert.equal(err.name, 'DiskFullError')
          assert.match(err.message, /^disk full while writing .*full.* \(what was fetched is kept in .*\.part/)
          return true
        })
      } finally {
        await full.stop()
      }
      assert.ok(written >= 3 * MiB, 'the output was written until the disk filled')
      await fs.access(part) // kept for the next fetch
      await assert.rejects(fs.access(target), { code: 'ENOENT' })
      // space again: the same fetch finishes, from what the first one kept
      const result = await fetcher.fetcher.fetch(root, { output: { path: target }, timeoutMs: 30_000 })
      assert.ok((await fs.readFile(target)).equals(data))
      assert.ok(result.localBytes > 0, 'the blocks written before the disk filled were kept')
      assert.equal(Object.values(result.peers).reduce((a, b) => a + b, 0), data.length - result.localBytes)
    })

    itOnOneOverlay('does not count on a block a GC that started before the fetch is deleting', async () => {
      const holder = swarm.peers[2]
      const { root, data } = await shareOn([holder], 2 * MiB, 256 * KiB)
      const leaf = (await holder.content.dagCids(root)).find(c => !c.equals(root))!
      // the fetch stores into a store of its own, whose GC stops just before deleting that leaf
      const reached = Promise.withResolvers<void>()
      const gate = Promise.withResolvers<void>()
      class GatedBlockstore extends FsBlockstore {
        override async delete (cid: CID): Promise<number> {
          if (cid.equals(leaf)) { reached.resolve(); await gate.promise }
          return super.delete(cid)
        }
      }
      const blockstore = new GatedBlockstore({}, { dir: path.join(swarm.dir, `gated-${Math.random()}`) })
      const store = new ContentStore({ datastore: new MemoryDatastore(), blockstore, logger: defaultLogger() })
      await store.open()
      // the fetch's store, telling when the fetch first waits to count on blocks here
      const waitsOnStore = Promise.withResolvers<void>()
      const content: FetchStore = {
        openFetch: () => {
          const session = store.openFetch()
          const kept = session.kept.bind(session)
          session.kept = async () => { waitsOnStore.resolve(); await kept() }
          return session
        },
        hasBlocks: store.hasBlocks.bind(store),
        readBlock: store.readBlock.bind(store)
      }
      const fetcher = await fetcherOn(swarm.peers[6], [holder], { content })
      try {
        // the leaf is in that store, held by nothing: GC's to delete
        await blockstore.put(leaf, await holder.content.readBlock(leaf))
        const gc = store.gc()
        await reached.promise
        // the fetch (into the store: no output file) starts while that GC is
        // between its decision and the delete; the GC goes on once the fetch waits on it
        const fetching = fetcher.fetch(root, { timeoutMs: 30_000 })
        fetching.catch(() => {})
        await waitsOnStore.promise
        gate.resolve()
        await gc
        await fetching
        const chunks: Uint8Array[] = []
        for await (const chunk of store.read(root)) chunks.push(chunk)
        assert.ok(Buffer.concat(chunks).equals(data), 'the fetched file is whole: the leaf the GC deleted was fetched again')
      } finally {
        gate.resolve()
        await fetcher.stop()
        await store.close()
      }
    })

    itOnOneOverlay('drops a peer that sends wrong bytes, re-fetches those blocks elsewhere, and writes the exact file', async () => {
      const liar = swarm.peers[4]
      const honest = swarm.peers.slice(5, 7)
      const { root, data } = await shareOn(honest, 4 * MiB, 256 * KiB)
      // the liar claims every block and answers every want with random bytes of about the right size
      await liar.libp2p.unhandle(XFER_PROTOCOL)
      let lies = 0
      await liar.libp2p.handle(XFER_PROTOCOL, async (stream: Stream) => {
        const pb = pbStream(stream, STREAM_LIMITS)
        try {
          while (true) {
            const request = await pb.read(XferRequestCodec)
            if (request.have.length > 0) {
              await pb.write({ cid: new Uint8Array(0), presence: Presence.HAVE_SET, data: new Uint8Array(0), bits: packBits(request.have.map(() => true)) }, XferResponseCodec)
            }
            for (const cid of request.want) {
              lies++
              await pb.write({ cid, presence: Presence.BLOCK, data: randomBytes(256 * KiB), bits: new Uint8Array(0) }, XferResponseCodec)
            }
          }
        } catch {
          stream.abort(new Error('liar done'))
        }
      })
      // slow honest holders: the liar's blocks arrive first and are verified,
      // instead of losing every race to blocks already in
      for (const h of honest) h.uploadLimiter.setRate(MiB)
      try {
        const fetcher = swarm.peers[8]
        const target = out('liar')
        const result = await fetcher.fetcher.fetch(root, { output: { path: target }, timeoutMs: 30_000 })
        assert.ok((await fs.readFile(target)).equals(data))
        const report = result.sources[liar.peerId.toString()]
        assert.ok(lies > 0, 'the liar was asked for blocks')
        assert.ok(report != null, 'the liar was used as a source')
        assert.match(report.dropped ?? '', /does not match its CID/)
        assert.equal(report.bytes, 0, 'no byte of the liar was kept')
        const verified = await fetcher.content.verify({ repair: false })
        assert.equal(verified.bad.length, 0, 'the store holds no bad block')
      } finally {
        for (const h of honest) h.uploadLimiter.setRate(0)
        // the liar serves nothing from now on: later fetches drop it as unreachable
        await liar.libp2p.unhandle(XFER_PROTOCOL)
      }
    })

    itOnOneOverlay('answers a have list with exactly what it holds, over more CIDs than one lookup slice; a CID that does not decode is not held', async () => {
      const holder = swarm.peers[0]
      const { root: shared } = await shareOn([holder], 300 * 16 * KiB, 16 * KiB)
      const held = (await holder.content.dagCids(shared)).map(cid => cid.bytes)
      assert.equal(held.length, 301)
      const { root: elsewhere } = await shareOn([swarm.peers[1]], 100 * KiB)
      // held, not held, and garbage, interleaved
      const asked = held.flatMap((cid, i) => i % 50 === 0 ? [cid, elsewhere.bytes, Uint8Array.from([0x01, 0x55, 0xff])] : [cid])
      const expected = asked.map(c => held.includes(c))
      const stream = await swarm.peers[3].libp2p.dialProtocol(holder.peerId, XFER_PROTOCOL)
      const pb = pbStream(stream, { ...STREAM_LIMITS, maxBufferSize: 64 * MiB })
      await pb.write({ want: [], have: asked, cancel: [] }, XferRequestCodec)
      const answer = await pb.read(XferResponseCodec)
      assert.equal(answer.presence, Presence.HAVE_SET)
      assert.deepEqual(unpackBits(answer.bits, asked.length), expected)
      await stream.close()
    })

    itOnOneOverlay('resets a stream that floods wants, and keeps serving on new streams', async () => {
      const holder = swarm.peers[0]
      const { root } = await shareOn([holder], 100 * KiB)
      const asker = swarm.peers[3]
      const stream = await asker.libp2p.dialProtocol(holder.peerId, XFER_PROTOCOL)
      const pb = pbStream(stream, { ...STREAM_LIMITS, maxBufferSize: 64 * MiB })
      const flood = Array.from({ length: MAX_PENDING_WANTS + 50 }, () => root.bytes)
      await pb.write({ want: flood, have: [], cancel: [] }, XferRequestCodec)
      // (StreamResetError when the reset meets a read, StreamStateError when it came before)
      await assert.rejects((async () => { while (true) await pb.read(XferResponseCodec) })(), (err: Error) => ['StreamResetError', 'StreamStateError'].includes(err.name), 'the holder resets the flooding stream')
      const session = await XferSession.open(asker.libp2p, holder.peerId.toString())
      try {
        const block = await session.want(root)
        assert.ok(block != null && block.byteLength === 100 * KiB, 'a fresh stream is served')
      } finally {
        await session.close()
      }
    })

    it('completes when 2 of its 3 holders stop in the middle of the fetch', async () => {
      const holders = swarm.peers.slice(0, 3)
      const { root, data } = await shareOn(holders, 12 * MiB, 256 * KiB)
      for (const h of holders) h.uploadLimiter.setRate(3 * MiB)
      const fetcher = swarm.peers[9]
      const target = out('leavers')
      let stopped: Promise<unknown> | undefined
      let bytesAtStop = 0
      const result = await fetcher.fetcher.fetch(root, {
        output: { path: target },
        timeoutMs: 30_000,
        onProgress: p => {
          if (stopped == null && p.bytes >= 3 * MiB) {
            bytesAtStop = p.bytes
            stopped = Promise.all([holders[0].stop(), holders[1].stop()])
          }
        }
      })
      await stopped
      assert.ok(bytesAtStop > 0 && bytesAtStop < data.length, `holders stopped mid-fetch (at ${bytesAtStop} bytes)`)
      assert.ok((await fs.readFile(target)).equals(data))
      // the stopping holders go on sending until their stop has taken hold
      // (longer on a loaded machine): the last holder sent whatever they did not
      const sent = (h: ShoalPeer): number => result.peers[h.peerId.toString()] ?? 0
      assert.ok(sent(holders[2]) >= data.length - sent(holders[0]) - sent(holders[1]), `the last holder sent the rest (${sent(holders[0])}, ${sent(holders[1])}, ${sent(holders[2])} bytes)`)
      assert.ok(sent(holders[2]) > data.length / 3, `the last holder took over the stopped holders' share (${sent(holders[2])} of ${data.length} bytes)`)
    })
  })
}
