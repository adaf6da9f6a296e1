/**
 * The dashboard's events stream (src/api/ui-events.ts) when a first
 * payload fails (the peer stopping under it): the stream is ended and
 * dropped, and the sources it watched are let go.
 */
import assert from 'node:assert/strict'
import { EventEmitter } from 'node:events'
import type { ServerResponse } from 'node:http'
import type { Logger } from '@libp2p/interface'
import { UiEvents } from '../../src/api/ui-events.ts'
import type { ShoalPeer } from '../../src/peer/peer.ts'

class FakeStream extends EventEmitter {
  writableEnded = false
  readonly written: string[] = []
  write (chunk: string): boolean { this.written.push(chunk); return true }
  end (): this {
    this.writableEnded = true
    queueMicrotask(() => { this.emit('close') })
    return this
  }
}

describe('dashboard events stream', () => {
  it('ends and drops a stream whose first payload throws, and stops watching', async () => {
    const watching = new Set<string>()
    const off = (name: string) => () => { watching.delete(name) }
    const peer = {
      isStarted: true,
      repo: { path: '/nonexistent/repo' },
      status: () => ({ started: true }),
      peers: () => [],
      content: { list: async () => { throw new Error('the store is closing') }, usage: () => ({}) },
      overlay: { routing: () => ({}), onChange: () => { watching.add('routing'); return off('routing') } },
      onHoldingsChange: () => { watching.add('holdings'); return off('holdings') },
      libp2p: {
        addEventListener: (type: string) => { watching.add(type) },
        removeEventListener: (type: string) => { watching.delete(type) }
      }
    } as unknown as ShoalPeer
    const errors: string[] = []
    const log = Object.assign(() => {}, { error: (format: string) => { errors.push(format) }, trace: () => {}, enabled: false }) as unknown as Logger
    const events = new UiEvents(peer, { address: () => '127.0.0.1:1', log })
    const stream = new FakeStream()
    await events.subscribe(stream as unknown as ServerResponse)
    assert.equal(stream.writableEnded, true)
    assert.deepEqual(stream.written.map(w => w.split('\n')[0]), ['event: status', 'event: peers'])
    assert.deepEqual([...watching], [], 'no source watched once the only stream is gone')
    assert.equal(errors.length, 1)
    assert.match(errors[0], /first payload failed/)
    // nothing more is written to it
    events.progress({ id: 'share:1', kind: 'share' })
    assert.equal(stream.written.length, 2)
    events.close()
  })
})
