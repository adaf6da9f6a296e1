/**
 * Hostile peers on /shoal/xfer/1.0.0, against real Shoal peers (in-process,
 * real TCP, real repos): a scripted libp2p node asks for blocks and then
 * does not read them, trickles, falls silent, opens too many streams, or
 * sends lists far over the limits. The memory budgets are derived from the
 * constants that bound them.
 */
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import fs from 'node:fs/promises'
import path from 'node:path'
import { logger } from '@libp2p/logger'
import type { Stream } from '@libp2p/interface'
import type { CID } from 'multiformats/cid'
import { MAX_INBOUND_XFER_STREAMS, MAX_XFER_STREAMS_PER_PEER, READ_AHEAD_BYTES_PER_PEER, XferServer } from '../../src/exchange/xfer-server.ts'
import type { ShoalPeer } from '../../src/peer/peer.ts'
import { createTestSwarm, type TestSwarm } from '../../src/swarm/test-swarm.ts'
import { sleep } from '../../src/utils/wait.ts'
import { MAX_LIST_MESSAGE_BYTES } from '../../src/wire/limits.ts'
import { XFER_PROTOCOL, XferRequestCodec } from '../../src/wire/xfer-messages.ts'
import { Attacker, formatMiB, isResetWithin, liveBytes, MiB, note, peakGrowth, sendMessage } from './attacker.ts'

/** Room for what the measurement itself and the test's own buffers add (GC timing, TCP buffers). */
const SLACK_BYTES = 16 * MiB

describe('hostile peers on the xfer protocol', function () {
  this.timeout(120_000)
  let swarm: TestSwarm
  let attacker: Attacker
  let daemon: ShoalPeer
  /** A file of eight 4 MiB blocks on the daemon. */
  let root: CID
  let leaves: CID[]
  before(async () => {
    swarm = await createTestSwarm(4)
    attacker = await Attacker.start()
    daemon = swarm.peers[0]
    const file = path.join(swarm.dir, 'big')
    await fs.writeFile(file, randomBytes(32 * MiB))
    root = (await daemon.content.shareFile(file, { chunkSize: 4 * MiB })).cid
    leaves = (await daemon.content.dagCids(root)).filter(c => !c.equals(root))
    assert.equal(leaves.length, 8)
  })
  after(async () => {
    await attacker?.stop()
    await swarm?.destroy()
  })

  /** A Request for `cids`, as bytes. */
  const want = (cids: CID[]): Uint8Array => XferRequestCodec.encode({ want: cids.map(c => c.bytes), have: [], cancel: [] })

  /** Swaps the daemon's xfer handler for `server` while `fn` runs. */
  async function withServer (server: XferServer, fn: () => Promise<void>): Promise<void> {
    await daemon.libp2p.unhandle(XFER_PROTOCOL)
    await daemon.libp2p.handle(XFER_PROTOCOL, server.handle, { maxInboundStreams: MAX_INBOUND_XFER_STREAMS, maxOutboundStreams: 64 })
    try {
      await fn()
    } finally {
      await daemon.libp2p.unhandle(XFER_PROTOCOL)
      const own = new XferServer({ content: daemon.content, log: logger('shoal:xfer'), limiter: daemon.uploadLimiter })
      await daemon.libp2p.handle(XFER_PROTOCOL, own.handle, { maxInboundStreams: MAX_INBOUND_XFER_STREAMS, maxOutboundStreams: 64 })
    }
  }

  it('8 paused streams asking for 4 MiB blocks hold only their peer\'s share of read-ahead memory, and an honest fetch completes within 5 s', async () => {
    const before = liveBytes()
    // two connections of four streams: as many as one peer may have
    const connections = [await attacker.connect(daemon), await attacker.connect(daemon)]
    const streams: Stream[] = []
    for (const c of connections) for (let i = 0; i < MAX_INBOUND_XFER_STREAMS; i++) streams.push(await c.newStream(XFER_PROTOCOL))
    assert.equal(streams.length, MAX_XFER_STREAMS_PER_PEER)
    try {
      for (const stream of streams) {
        stream.pause()
        // every block four times over: far more than any read-ahead
        sendMessage(stream, want([...leaves, ...leaves, ...leaves, ...leaves]))
      }
      // the daemon reads ahead as far as it may within a second or so; give it three
      await sleep(3_000)
      const growth = liveBytes() - before
      // one peer's share of blocks read ahead or being sent; each paused stream holds a yamux window (256 KiB) of a block already counted
      const budget = READ_AHEAD_BYTES_PER_PEER + SLACK_BYTES
      note(`8 paused streams: memory grew ${formatMiB(growth)} (budget ${formatMiB(budget)})`)
      assert.ok(growth <= budget, `memory grew ${formatMiB(growth)}, over the budget of ${formatMiB(budget)}`)

      const fetcher = swarm.peers[1]
      const started = performance.now()
      const result = await fetcher.fetcher.fetch(root, { timeoutMs: 30_000 })
      const ms = performance.now() - started
      assert.equal(result.size, 32 * MiB)
      note(`honest 32 MiB fetch: ${Math.round(ms)} ms`)
      assert.ok(ms < 5_000, `the honest fetch took ${Math.round(ms)} ms`)
    } finally {
      for (const c of connections) await c.close().catch(() => {})
    }
  })

  it('resets a peer\'s streams beyond MAX_XFER_STREAMS_PER_PEER, however many connections it opens', async () => {
    const connections = [await attacker.connect(daemon), await attacker.connect(daemon), await attacker.connect(daemon)]
    try {
      const streams: Stream[] = []
      for (const c of connections) for (let i = 0; i < MAX_INBOUND_XFER_STREAMS; i++) streams.push(await c.newStream(XFER_PROTOCOL))
      const reset = await Promise.all(streams.map(async s => isResetWithin(s, 2_000)))
      assert.equal(reset.filter(r => r).length, streams.length - MAX_XFER_STREAMS_PER_PEER, `${reset.filter(r => r).length} of ${streams.length} streams reset`)
    } finally {
      for (const c of connections) await c.close().catch(() => {})
    }
  })

  it('resets a silent stream after the idle timeout, and a reader that trickles below the floor, giving back its read-ahead', async () => {
    // the daemon's server with timeouts short enough for a test
    const server = new XferServer({
      content: daemon.content,
      log: logger('shoal:test:xfer-server'),
      limits: { idleTimeoutMs: 1_000, slowRead: { windowMs: 1_500, minBytes: MiB } }
    })
    await withServer(server, async () => {
      const silent = await attacker.open(daemon, XFER_PROTOCOL)
      assert.ok(await isResetWithin(silent, 4_000), 'a stream that never asks is reset')

      // a have answered, then silence: idle again
      const quiet = await attacker.open(daemon, XFER_PROTOCOL)
      sendMessage(quiet, XferRequestCodec.encode({ want: [], have: [root.bytes], cancel: [] }))
      assert.ok(await isResetWithin(quiet, 4_000), 'a stream silent after its answers is reset')

      // takes about 256 KiB a second (one yamux window each time it resumes): under the floor of 1 MiB per 1.5 s
      const trickle = await attacker.open(daemon, XFER_PROTOCOL)
      trickle.pause()
      sendMessage(trickle, want(leaves))
      const dribble = setInterval(() => {
        if (trickle.status !== 'open') return
        trickle.resume()
        trickle.pause()
      }, 1_000)
      try {
        assert.ok(await isResetWithin(trickle, 8_000), 'the trickling reader is reset')
      } finally {
        clearInterval(dribble)
      }
      const deadline = Date.now() + 2_000
      while (server.stats.readAheadBytes > 0 && Date.now() < deadline) await sleep(20)
      assert.equal(server.stats.readAheadBytes, 0, 'the blocks it had read ahead are given back')
    })
  })

  it('a 4 MiB cancel, want or have list resets the stream before it is decoded, with bounded memory, and the peer serves others', async () => {
    /** A Request of one field repeated with one-byte "CIDs", `bytes` long, written by hand. */
    const list = (field: number, bytes: number): Uint8Array => {
      const entries = Math.floor(bytes / 3)
      const out = Buffer.alloc(entries * 3)
      for (let i = 0; i < out.length; i += 3) { out[i] = (field << 3) | 2; out[i + 1] = 0x01 }
      return out
    }
    for (const field of [3, 1, 2]) {
      for (const bytes of [4 * MiB, MAX_LIST_MESSAGE_BYTES]) {
        // the second size is within the message limit: only the count of entries can refuse it
        const body = list(field, bytes)
        let reset = false
        const growth = await peakGrowth(async () => {
          const stream = await attacker.open(daemon, XFER_PROTOCOL)
          sendMessage(stream, body)
          reset = await isResetWithin(stream, 5_000)
        })
        const what = `${['', 'want', 'have', 'cancel'][field]} list of ${formatMiB(body.length)}`
        note(`${what}: peak growth ${formatMiB(growth)}`)
        assert.ok(reset, `${what}: the stream is reset`)
        // at most one request within the limit is held by the daemon; the attacker holds its own message twice (and the prefixed copy)
        const budget = MAX_LIST_MESSAGE_BYTES + 2 * body.length + SLACK_BYTES
        assert.ok(growth <= budget, `${what}: memory grew ${formatMiB(growth)} at its peak, over the budget of ${formatMiB(budget)}`)
      }
    }
    // still serving
    const result = await swarm.peers[2].fetcher.fetch(root, { timeoutMs: 30_000 })
    assert.equal(result.size, 32 * MiB)
  })
})
