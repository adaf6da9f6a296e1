/**
 * The block scheduler against scripted peers (block sources whose answers
 * the test decides): the cases whose order of events a real swarm cannot
 * pin down; and its parts on their own, rarest-first choice and a peer's
 * pipeline depth, on scripted numbers.
 */
import assert from 'node:assert/strict'
import type { CID } from 'multiformats/cid'
import { cidOf, RAW_CODE } from '../../src/content/cid.ts'
import { PeerPipeline } from '../../src/exchange/peer-pipeline.ts'
import { PieceState, RarestFirst } from '../../src/exchange/rarest-first.ts'
import { BlockScheduler, type Piece } from '../../src/exchange/scheduler.ts'
import type { BlockSource } from '../../src/exchange/block-source.ts'

const noLog = Object.assign(() => {}, { enabled: false, error: () => {}, trace: () => {}, newScope: () => noLog }) as never

/** A peer whose answers the test decides. */
class ScriptedPeer implements BlockSource {
  readonly peerId: string
  lastByteAt = performance.now()
  readonly asked: string[] = []
  readonly cancelled: string[] = []
  aborted?: Error
  private readonly waiting = new Map<string, (b: Uint8Array | undefined) => void>()
  answer: (cid: CID) => Uint8Array | 'hold'

  constructor (peerId: string, answer: (cid: CID) => Uint8Array | 'hold') {
    this.peerId = peerId
    this.answer = answer
  }

  async want (cid: CID): Promise<Uint8Array | undefined> {
    this.asked.push(cid.toString())
    const a = this.answer(cid)
    if (a !== 'hold') return a
    return new Promise(resolve => { this.waiting.set(cid.toString(), resolve) })
  }

  cancel (cid: CID): void {
    this.cancelled.push(cid.toString())
    this.waiting.get(cid.toString())?.(undefined)
  }

  abort (err: Error): void { this.aborted = err }
}

function pieces (n: number): { list: Piece[], data: Uint8Array[] } {
  const data = Array.from({ length: n }, (_, i) => Uint8Array.from([i, 1, 2, 3]))
  return { list: data.map(d => ({ cid: cidOf(RAW_CODE, d), size: d.length })), data }
}

describe('block scheduler', () => {
  it('asks again, elsewhere, for blocks whose verification failed, even when other peers came meanwhile', async () => {
    const { list, data } = pieces(4)
    const good = (cid: CID): Uint8Array => data[list.findIndex(p => p.cid.equals(cid))]
    const verdicts: Array<(ok: boolean) => void> = []
    let holdVerdicts = true
    const delivered: number[] = []
    const scheduler = new BlockScheduler({
      pieces: list,
      have: list.map(() => false),
      recycle: () => {},
      verify: async (cid, bytes) => holdVerdicts
        ? new Promise<boolean>(resolve => verdicts.push(resolve))
        : Buffer.from(bytes).equals(Buffer.from(good(cid))),
      deliver: async i => { delivered.push(i) },
      log: noLog
    })
    const liar = new ScriptedPeer('liar', () => Uint8Array.from([9, 9, 9, 9]))
    const honest = new ScriptedPeer('honest', cid => good(cid))
    const running = scheduler.run()
    scheduler.addPeer(liar, [0, 1, 2, 3])
    await new Promise(resolve => setImmediate(resolve))
    assert.equal(verdicts.length, 4, 'the liar answered all four; their verification is pending')
    scheduler.addPeer(honest, [0, 1, 2, 3])
    assert.deepEqual(honest.asked, [], 'nothing to ask while the blocks are being verified')
    holdVerdicts = false
    for (const v of verdicts) v(false)
    await running
    assert.deepEqual(delivered.sort(), [0, 1, 2, 3])
    assert.equal(honest.asked.length, 4)
    assert.ok(liar.aborted != null, 'the liar stream is reset')
    assert.ok(scheduler.isBanned('liar'))
    assert.match(scheduler.peerReports().liar.dropped ?? '', /does not match/)
    assert.equal(scheduler.peerReports().honest.bytes, 16)
  })

  it('races the last blocks held up by a slow peer on an idle one (endgame) and cancels the losers', async () => {
    const { list, data } = pieces(3)
    const good = (cid: CID): Uint8Array => data[list.findIndex(p => p.cid.equals(cid))]
    const scheduler = new BlockScheduler({
      pieces: list,
      have: list.map(() => false),
      recycle: () => {},
      verify: async (cid, bytes) => Buffer.from(bytes).equals(Buffer.from(good(cid))),
      deliver: async () => {},
      log: noLog
    })
    const slow = new ScriptedPeer('slow', () => 'hold')
    const fast = new ScriptedPeer('fast', cid => good(cid))
    const running = scheduler.run()
    scheduler.addPeer(slow, [0, 1, 2])
    assert.equal(slow.asked.length, 3, 'the first peer is asked for everything')
    scheduler.addPeer(fast, [0, 1, 2])
    await running
    assert.equal(fast.asked.length, 3, 'the idle peer raced every outstanding block')
    assert.deepEqual(slow.cancelled.sort(), list.map(p => p.cid.toString()).sort(), 'the slow copies are cancelled')
    assert.equal(scheduler.peerReports().fast.bytes, 12)
    assert.equal(scheduler.wasted, 0)
  })

  it('keeps a blocks-in-flight bound per peer and overall', async () => {
    const { list } = pieces(100)
    const scheduler = new BlockScheduler({
      pieces: list,
      have: list.map(() => false),
      recycle: () => {},
      verify: async () => true,
      deliver: async () => {},
      log: noLog,
      maxPendingBytes: 6 * 4
    })
    const a = new ScriptedPeer('a', () => 'hold')
    const b = new ScriptedPeer('b', () => 'hold')
    void scheduler.run().catch(() => {})
    scheduler.addPeer(a, list.map((_, i) => i))
    scheduler.addPeer(b, list.map((_, i) => i))
    assert.equal(a.asked.length, 4, 'a new peer starts with a pipeline of 4')
    assert.equal(b.asked.length, 2, 'then only what the overall bound (6 blocks here) leaves')
    scheduler.stop()
  })
})

describe('rarest-first piece choice', () => {
  const all = (n: number): number[] => Array.from({ length: n }, (_, i) => i)

  it('takes a piece held by one peer at once, the rarest only within the next 64 candidates, and the priority range first', () => {
    const picker = new RarestFirst(new Array(100).fill(false))
    const a = new Uint8Array(100)
    const b = new Uint8Array(100)
    picker.gained(a, all(100))
    picker.gained(b, all(50))
    assert.equal(picker.pick(a), 50, 'piece 50 is the first only a holds')
    picker.gained(b, all(70))
    assert.equal(picker.pick(a), 0, 'pieces 70+ lie past the 64 looked at: the first of the equally common')
    picker.prioritize(10, 12)
    assert.equal(picker.pick(a), 10)
    picker.requested(10)
    assert.equal(picker.pick(a), 11, 'a piece asked for already is not picked again')
    picker.prioritize(0, 0)
    for (let i = 0; i < 64; i++) picker.setState(i, PieceState.VERIFIED)
    assert.equal(picker.pick(a), 70, 'verified pieces are passed: piece 70 is the rarest in the next window')
    assert.equal(picker.pick(b), 64)
  })

  it('lists the missing pieces nobody holds, and counts holders down as peers leave or turn out not to hold', () => {
    const picker = new RarestFirst([true, false, false, false])
    const a = new Uint8Array(4)
    picker.gained(a, [1, 2])
    assert.deepEqual(picker.needed(), [1, 2, 3])
    assert.deepEqual(picker.orphans(), [3])
    picker.lost(a, 2)
    assert.deepEqual(picker.orphans(), [2, 3])
    picker.left(a)
    assert.deepEqual(picker.orphans(), [1, 2, 3])
    assert.equal(picker.anyUnasked(), false, 'nothing anyone holds is left unasked: endgame')
  })
})

describe('a peer pipeline', () => {
  const MiB = 1024 * 1024

  it('holds 4 requests before its rate is known, then about 250 ms of data: 2 to 8 blocks', () => {
    const source = new ScriptedPeer('p', () => 'hold')
    const fast = new PeerPipeline(source, 10)
    assert.equal(fast.depth(MiB), 4)
    fast.measure(MiB, fast.request(0, MiB, 0), 10) // 100 MiB/s: 25 blocks' worth
    assert.equal(fast.depth(MiB), 8)
    assert.equal(fast.bytesPerSecond(), 100 * MiB)
    const slow = new PeerPipeline(source, 10)
    slow.measure(MiB, slow.request(0, MiB, 0), 1000) // 1 MiB/s: a quarter block
    assert.equal(slow.depth(MiB), 2)
    const medium = new PeerPipeline(source, 10)
    medium.measure(MiB, medium.request(0, MiB, 0), 50) // 20 MiB/s: 5 blocks
    assert.equal(medium.depth(MiB), 5)
  })

  it('calls a request stalled 3 times past what its rate predicts, and a peer silent from its oldest owed request', () => {
    const source = new ScriptedPeer('p', () => 'hold')
    const peer = new PeerPipeline(source, 10)
    peer.measure(MiB, peer.request(0, MiB, 0), 100) // 10 MiB/s
    assert.ok(peer.release(0, peer.inflight.get(0)!, MiB))
    const request = peer.request(1, 2 * MiB, 1000) // 200 ms predicted, 600 ms allowed, at least 1 s
    assert.equal(request.expectedBy, 2000)
    assert.equal(peer.stalled(1999), false)
    assert.equal(peer.stalled(2000), true)
    source.lastByteAt = 1500
    assert.equal(peer.silentFor(4000), 2500)
    assert.equal(peer.release(1, { sentAt: 1000, expectedBy: 2000 }, 2 * MiB), false, 'another request object is not taken back')
    assert.equal(peer.inflightBytes, 2 * MiB)
  })
})
