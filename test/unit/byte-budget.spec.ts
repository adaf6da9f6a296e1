/**
 * ByteBudget: a bound over all peers and a share per peer; grants in
 * arrival order, except that a peer at its share does not hold up others.
 */
import assert from 'node:assert/strict'
import { ByteBudget } from '../../src/wire/byte-budget.ts'

const settled = async (p: Promise<unknown>): Promise<boolean> => {
  let done = false
  p.then(() => { done = true }, () => { done = true })
  await new Promise(resolve => setImmediate(resolve))
  return done
}

describe('byte budget', () => {
  it('holds one peer to its share while others still get room', async () => {
    const budget = new ByteBudget(100, 40)
    const a1 = await budget.reserve('a', 30)
    const a2 = budget.reserve('a', 30)
    assert.equal(await settled(a2), false, 'a is at its share')
    const b = await budget.reserve('b', 40)
    assert.equal(budget.heldBy('b'), 40, 'b is not held up behind a')
    a1.release()
    assert.equal(await settled(a2), true)
    assert.equal(budget.heldBy('a'), 30)
    assert.equal(budget.inUseBytes, 70)
    b.release()
    ;(await a2).release()
    assert.equal(budget.inUseBytes, 0)
  })

  it('grants in arrival order over all peers, so a large reservation is not starved by small ones', async () => {
    const budget = new ByteBudget(100, 100)
    const first = await budget.reserve('a', 90)
    const big = budget.reserve('b', 50)
    const small = budget.reserve('c', 5)
    assert.equal(await settled(small), false, 'the small one waits behind the big one')
    first.release()
    assert.equal(await settled(big), true)
    assert.equal(await settled(small), true)
  })

  it('grants a reservation larger than a bound when nothing is held against it', async () => {
    const budget = new ByteBudget(10, 5)
    const r = await budget.reserve('a', 50)
    assert.equal(r.bytes, 50)
    r.release()
  })

  it('gives back what a reservation no longer needs, once, and forgets an aborted wait', async () => {
    const budget = new ByteBudget(100, 100)
    const r = await budget.reserve('a', 100)
    const controller = new AbortController()
    const waiting = budget.reserve('b', 10, controller.signal)
    controller.abort(new Error('gone'))
    await assert.rejects(waiting, /gone/)
    r.shrink(40)
    assert.equal(budget.inUseBytes, 40)
    r.release()
    r.release()
    assert.equal(budget.inUseBytes, 0)
    assert.equal(budget.heldBy('a'), 0)
  })
})
