/**
 * The block scheduler against scripted peers (block sources whose answers
 * the test decides): the cases whose order of events a real swarm cannot
 * pin down.
 */
import assert from 'node:assert/strict'
import type { CID } from 'multiformats/cid'
import { cidOf, RAW_CODE } from '../../src/content/cid.ts'
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
