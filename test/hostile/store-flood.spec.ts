/**
 * Hostile and greedy peers on /shoal/store/1.0.0, against a real 8-peer
 * swarm (in-process, real TCP, real repos): a scripted libp2p node speaks
 * the protocol by hand. Each test states the limit it relies on; the
 * memory budgets are derived from the constants that bound them.
 */
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { logger } from '@libp2p/logger'
import type { CID } from 'multiformats/cid'
import { cidOf, RAW_CODE } from '../../src/content/cid.ts'
import { closestByXor } from '../../src/routing/kademlia/kad-distance.ts'
import type { ShoalPeer } from '../../src/peer/peer.ts'
import { isHeld, PUT_WINDOW, StoreSession } from '../../src/placement/store-client.ts'
import { MAX_RANKED_REPLICAS } from '../../src/constants.ts'
import {
  MAX_BUFFERED_BYTES_PER_PEER, MAX_INBOUND_STORE_STREAMS, MAX_STORE_STREAMS_PER_PEER, StoreServer
} from '../../src/placement/store-server.ts'
import { createTestSwarm, type TestSwarm } from '../../src/swarm/test-swarm.ts'
import { sleep } from '../../src/utils/wait.ts'
import { lengthPrefixed, pushVarint } from '../../src/wire/length-prefix.ts'
import { MAX_MESSAGE_BYTES, MUXER_MAX_WINDOW_BYTES, RESERVE_TIMEOUT_MS, SLOW_READ_WINDOW_MS, UNREAD_HIGH_WATER_BYTES } from '../../src/wire/limits.ts'
import { STORE_PROTOCOL, StoreRequestCodec, StoreResponseCodec, StoreStatus } from '../../src/wire/store-messages.ts'
import { Attacker, formatMiB, isResetWithin, KiB, liveBytes, MiB, note, peakGrowth, sendMessage } from './attacker.ts'

/** Room for what the measurement itself and the test's own buffers add (GC timing, TCP buffers, the honest put). */
const SLACK_BYTES = 16 * MiB

describe('hostile peers on the store protocol', function () {
  this.timeout(120_000)
  let swarm: TestSwarm
  let attacker: Attacker
  before(async () => {
    swarm = await createTestSwarm(8)
    attacker = await Attacker.start()
  })
  after(async () => {
    await attacker?.stop()
    await swarm?.destroy()
  })

  const ids = (): string[] => swarm.peers.map(p => p.peerId.toString())

  /** A block of `size` random bytes whose key `peer` ranks among its `within` closest (so it accepts it for k=3). */
  function blockNear (peer: ShoalPeer, size: number, within = 6): { cid: CID, data: Buffer } {
    while (true) {
      const data = randomBytes(size)
      const cid = cidOf(RAW_CODE, data)
      const closest = closestByXor(cid.multihash.bytes, swarm.peers.map(p => p.peerId), within).map(String)
      if (closest.includes(peer.peerId.toString())) return { cid, data }
    }
  }

  it('a peer that stops reading and sends paced 4 MiB puts holds only its share: an honest 4 MiB put is stored within 5 s, and the share comes back when its streams are cut off', async () => {
    const daemon = swarm.peers[0]
    const honest = swarm.peers[1]
    const block = blockNear(daemon, 4 * MiB)
    const put = StoreRequestCodec.encode({ put: { cid: block.cid.bytes, data: block.data, replicas: 3 } })
    // 1024 CIDs that do not decode: answered (DONT_HAVE) without touching the store, ~1 KiB per answer
    const has = StoreRequestCodec.encode({ has: { cids: Array.from({ length: 1024 }, () => Uint8Array.of(0)) } })
    const honestBlock = blockNear(daemon, 4 * MiB)
    const before = liveBytes()

    // as many store streams as one peer may have
    const attackStarted = performance.now()
    const connections = [await attacker.connect(daemon)]
    const streams = await Promise.all(Array.from({ length: MAX_STORE_STREAMS_PER_PEER }, async () => connections[0].newStream(STORE_PROTOCOL)))
    const hasAnswerBytes = lengthPrefixed(StoreResponseCodec.encode({ statuses: new Array(1024).fill(StoreStatus.DONT_HAVE), message: '' })).length
    for (const stream of streams) {
      // never read: no window updates, so the daemon's answers stop once what its window allows is out (yamux's
      // first 256 KiB, or more if it grew while the stream was set up): its writer is stuck on one more answer
      // than fits, and the puts that follow wait in its queue
      stream.pause()
      const window = (stream as unknown as { recvWindowCapacity: number }).recvWindowCapacity
      for (let i = 0; i <= window / hasAnswerBytes; i++) sendMessage(stream, has)
    }
    // paced puts: the next one as soon as the last has left (the attacker keeps no pile of its own)
    let attacking = true
    const pacing = Promise.all(streams.map(async stream => {
      while (attacking && stream.status === 'open') {
        if (stream.writeBufferLength === 0) sendMessage(stream, put)
        await sleep(20)
      }
    }))
    try {
      const server = daemon.placement.server
      const deadline = Date.now() + 5_000
      while (server.stats.bufferedBytes < MAX_BUFFERED_BYTES_PER_PEER - MAX_MESSAGE_BYTES && Date.now() < deadline) await sleep(50)
      const held = server.stats.bufferedBytes
      assert.ok(held > 0, 'the attacker\'s puts are held, unanswered')
      assert.ok(held <= MAX_BUFFERED_BYTES_PER_PEER, `the attacker holds at most its share (${formatMiB(held)})`)

      const growth = liveBytes() - before
      // its share of received blocks, and per stream what yamux lets a sender push into a paused stream plus what the reader keeps unasked
      const budget = MAX_BUFFERED_BYTES_PER_PEER + streams.length * (MUXER_MAX_WINDOW_BYTES + UNREAD_HIGH_WATER_BYTES) + SLACK_BYTES
      note(`attacker holds ${formatMiB(held)} of received blocks; memory grew ${formatMiB(growth)} (budget ${formatMiB(budget)})`)
      assert.ok(growth <= budget, `memory grew ${formatMiB(growth)}, over the budget of ${formatMiB(budget)}`)

      const session = await StoreSession.open(honest.libp2p, daemon.peerId.toString())
      const started = performance.now()
      const answer = await session.put(honestBlock.cid, honestBlock.data, 3)
      const ms = performance.now() - started
      await session.close()
      assert.equal(answer.status, StoreStatus.STORED, answer.message)
      note(`honest 4 MiB put: ${Math.round(ms)} ms`)
      assert.ok(ms < 5_000, `the honest put took ${Math.round(ms)} ms`)

      // the daemon's answers have waited on the attacker since the start: the slow-read floor cuts both streams
      // off (before their waits for room would: RESERVE_TIMEOUT_MS is longer)
      const cutOffBy = SLOW_READ_WINDOW_MS + 7_000
      assert.ok(cutOffBy < RESERVE_TIMEOUT_MS)
      const cutOff = await Promise.all(streams.map(async s => isResetWithin(s, Math.max(0, attackStarted + cutOffBy - performance.now()))))
      note(`streams cut off ${Math.round((performance.now() - attackStarted) / 1000)} s after the attack began`)
      assert.deepEqual(cutOff, streams.map(() => true), `the streams that stopped reading are reset within ${cutOffBy / 1000} s`)
      const released = Date.now() + 5_000
      while (server.stats.bufferedBytes > 0 && Date.now() < released) await sleep(50)
      assert.equal(server.stats.bufferedBytes, 0, 'everything the attacker\'s streams held is given back')
    } finally {
      attacking = false
      await pacing
      for (const c of connections) await c.close().catch(() => {})
    }
  })

  it('a pipeline of 16 back-to-back 4 MiB puts is stored whole and never reset, PUT_WINDOW deep or deeper than the receiver reads ahead', async () => {
    const sender = swarm.peers[2]
    const receiver = swarm.peers[3]
    const blocks = Array.from({ length: 16 }, () => blockNear(receiver, 4 * MiB))
    for (const window of [PUT_WINDOW, 16]) {
      const session = await StoreSession.open(sender.libp2p, receiver.peerId.toString())
      const statuses: number[] = []
      await session.putMany(blocks.map(b => ({ cid: b.cid, load: async () => b.data })), 3, (i, status) => { statuses[i] = status }, undefined, window)
      assert.equal(session.failed, undefined, `window ${window}: the stream is still open`)
      await session.close()
      assert.equal(statuses.filter(isHeld).length, 16, `window ${window}: every block is held (${statuses.join(',')})`)
    }
    for (const b of blocks) assert.ok(await receiver.content.hasBlock(b.cid))
  })

  it('a peer over its rate of replicas is answered BUSY, not reset; an honest sender backs off and every block is stored', async () => {
    const sender = swarm.peers[4]
    const receiver = swarm.peers[5]
    const refused: number[] = []
    // the daemon's own server, with a rate small enough to reach in a test
    const server = new StoreServer({
      content: receiver.content,
      rankOf: key => receiver.overlay.rank(key, receiver.peerId.toString(), receiver.overlay.knownPeers()),
      log: logger('shoal:test:store-server'),
      // a rate slow enough that no loaded machine refills the bucket while the greedy puts arrive
      peerReplicaBytes: { perSecond: MiB, burst: 4 * MiB },
      onRefused: status => { refused.push(status) }
    })
    await receiver.libp2p.unhandle(STORE_PROTOCOL)
    await receiver.libp2p.handle(STORE_PROTOCOL, server.handle, { maxInboundStreams: MAX_INBOUND_STORE_STREAMS })
    try {
      // ignoring BUSY: raw puts, all at once
      await attacker.connect(receiver)
      const greedy = await StoreSession.open(attacker.node, receiver.peerId.toString())
      const greedyBlocks = Array.from({ length: 8 }, () => blockNear(receiver, MiB))
      const started = performance.now()
      const statuses = (await Promise.all(greedyBlocks.map(async b => greedy.put(b.cid, b.data, 3)))).map(r => r.status)
      const seconds = (performance.now() - started) / 1000
      assert.ok(statuses.includes(StoreStatus.BUSY), `BUSY once over the rate (${statuses.join(',')})`)
      const stored = statuses.filter(s => s === StoreStatus.STORED).length
      assert.ok(stored <= 4 + Math.floor(seconds), `no more than the burst and the rate allow is stored (${stored} in ${seconds.toFixed(2)} s)`)
      assert.equal(greedy.failed, undefined, 'the greedy stream is not reset')
      await greedy.close()

      // honest: backs off as asked, and every block ends up stored
      const blocks = Array.from({ length: 12 }, () => blockNear(receiver, MiB))
      const session = await StoreSession.open(sender.libp2p, receiver.peerId.toString())
      const results: number[] = []
      refused.length = 0
      await session.putMany(blocks.map(b => ({ cid: b.cid, load: async () => b.data })), 3, (i, status) => { results[i] = status })
      await session.close()
      assert.ok(refused.includes(StoreStatus.BUSY), 'the honest sender was over the rate too')
      assert.equal(results.filter(isHeld).length, 12, `every block stored (${results.join(',')})`)
    } finally {
      await receiver.libp2p.unhandle(STORE_PROTOCOL)
      await receiver.libp2p.handle(STORE_PROTOCOL, receiver.placement.server.handle, { maxInboundStreams: MAX_INBOUND_STORE_STREAMS })
    }
  })

  it('ranks a put against the k its sender claims, never below its own replica count nor above MAX_RANKED_REPLICAS', async () => {
    const sender = swarm.peers[6]
    // a block whose farthest peer (rank 7 of 8) is not the sender: beyond k=3 + its margin of 3, within k=6 + 3
    let far: { cid: CID, data: Buffer, peer: ShoalPeer }
    while (true) {
      const data = randomBytes(4 * KiB)
      const cid = cidOf(RAW_CODE, data)
      const order = closestByXor(cid.multihash.bytes, swarm.peers.map(p => p.peerId), 8).map(String)
      const peer = swarm.peers[ids().indexOf(order[7])]
      if (peer !== sender) { far = { cid, data, peer }; break }
    }
    let session = await StoreSession.open(sender.libp2p, far.peer.peerId.toString())
    const claimedThree = await session.put(far.cid, far.data, 3)
    assert.equal(claimedThree.status, StoreStatus.NOT_CLOSEST, claimedThree.message)
    const claimedSix = await session.put(far.cid, far.data, 6)
    await session.close()
    assert.equal(claimedSix.status, StoreStatus.STORED, claimedSix.message)
    assert.equal(await far.peer.content.hasBlock(far.cid), true)

    // and the other way: a peer ranked 4th accepts a block offered for k=1 (it keeps its own k=3 + a margin)
    let near: { cid: CID, data: Buffer, peer: ShoalPeer }
    while (true) {
      const data = randomBytes(4 * KiB)
      const cid = cidOf(RAW_CODE, data)
      const order = closestByXor(cid.multihash.bytes, swarm.peers.map(p => p.peerId), 8).map(String)
      const peer = swarm.peers[ids().indexOf(order[4])]
      if (peer !== sender) { near = { cid, data, peer }; break }
    }
    session = await StoreSession.open(sender.libp2p, near.peer.peerId.toString())
    const claimedOne = await session.put(near.cid, near.data, 1)
    await session.close()
    assert.equal(claimedOne.status, StoreStatus.STORED, claimedOne.message)

    // the cap: a claim of 64 ranks as MAX_RANKED_REPLICAS (+ the own k as margin), whatever the network's size
    let rank = 0
    const server = new StoreServer({ content: swarm.peers[0].content, rankOf: () => rank, log: logger('test'), replicas: 3 })
    const key = near.cid.multihash.bytes
    rank = MAX_RANKED_REPLICAS + 2
    assert.equal(server.isCloseEnough(key, 64), true)
    rank = MAX_RANKED_REPLICAS + 3
    assert.equal(server.isCloseEnough(key, 64), false)
    rank = 5
    assert.equal(server.isCloseEnough(key, 1), true)
    rank = 6
    assert.equal(server.isCloseEnough(key, 1), false)
  })

  it('a 4 MiB has query resets the stream before it is decoded, with bounded memory, and the peer serves others', async () => {
    const daemon = swarm.peers[7]
    // 1.4 million one-byte "CIDs", written by hand (an encoder would take the attacker longer than the daemon)
    const entries = Math.floor((4 * MiB - 16) / 3)
    const inner = Buffer.alloc(entries * 3)
    for (let i = 0; i < inner.length; i += 3) { inner[i] = 0x0a; inner[i + 1] = 0x01 }
    const header: number[] = [0x12]
    pushVarint(header, inner.length)
    const body = Buffer.concat([Buffer.from(header), inner])
    assert.ok(body.length <= MAX_MESSAGE_BYTES, 'within the message limit: only the has limits can refuse it')
    let reset = false
    const growth = await peakGrowth(async () => {
      const stream = await attacker.open(daemon, STORE_PROTOCOL)
      sendMessage(stream, body)
      reset = await isResetWithin(stream, 5_000)
    })
    note(`4 MiB has: peak growth ${formatMiB(growth)}`)
    assert.ok(reset, 'the stream is reset')
    // the message itself (held while it is read and scanned) twice over, and the attacker's own copies of it
    const budget = 2 * MAX_MESSAGE_BYTES + 2 * body.length + SLACK_BYTES
    assert.ok(growth <= budget, `memory grew ${formatMiB(growth)} at its peak, over the budget of ${formatMiB(budget)}`)

    const b = blockNear(daemon, 64 * KiB)
    const session = await StoreSession.open(swarm.peers[0].libp2p, daemon.peerId.toString())
    assert.equal((await session.put(b.cid, b.data, 3)).status, StoreStatus.STORED)
    assert.deepEqual(await session.has([b.cid]), [true])
    await session.close()
  })
})
