/** anySignal: aborts with its first input's reason or a TimeoutError, and lets go on clear(). */
import assert from 'node:assert/strict'
import { TimeoutError } from '../../src/errors.ts'
import { anySignal } from '../../src/utils/signals.ts'

describe('anySignal', () => {
  it('aborts with the reason of the input that aborted', () => {
    const a = new AbortController()
    const signal = anySignal([a.signal, undefined])
    a.abort(new Error('first'))
    assert.equal(signal.aborted, true)
    assert.equal((signal.reason as Error).message, 'first')
  })

  it('is aborted at once by an input already aborted', () => {
    const signal = anySignal([AbortSignal.abort(new Error('before'))], { timeoutMs: 10 })
    assert.equal((signal.reason as Error).message, 'before')
  })

  it('aborts with a TimeoutError after timeoutMs, and not at all once cleared', async () => {
    const timed = anySignal([], { timeoutMs: 5, message: () => 'too slow' })
    const cleared = anySignal([], { timeoutMs: 5 })
    cleared.clear()
    const input = new AbortController()
    const detached = anySignal([input.signal])
    detached.clear()
    input.abort()
    await new Promise(resolve => setTimeout(resolve, 30))
    assert.ok(timed.reason instanceof TimeoutError)
    assert.equal((timed.reason as Error).message, 'too slow')
    assert.equal(cleared.aborted, false)
    assert.equal(detached.aborted, false, 'clear() removed its listener from the input')
  })
})
