/**
 * The xfer streams of one fetch, one per peer (xfer-client.ts): opened on
 * first use, shared by everything the fetch asks that peer (have lists, DAG
 * nodes, the scheduler's wants), opened again after a failure, and closed
 * when the fetch ends. Blocks arrive straight into the fetch's pooled
 * buffers of shared memory, which the hash worker reads in place and the
 * output file writes with O_DIRECT.
 */
import type { Logger } from '@libp2p/interface'
import type { BufferPool } from '../content/buffer-pool.ts'
import type { FetchConnection } from './index.ts'
import { XferSession } from './xfer-client.ts'

export interface SessionPoolComponents {
  connection: Pick<FetchConnection, 'dialProtocol'>
}

export interface SessionPoolInit {
  /** Logs why a peer's stream was dropped. */
  log: Logger
  /** Names the fetch in those lines. */
  name: string
}

export class SessionPool {
  private readonly components: SessionPoolComponents
  private readonly init: SessionPoolInit
  private readonly sessions = new Map<string, Promise<XferSession>>()
  /** Block buffers of the file's leaf size, once the layout is known. */
  private buffers?: BufferPool

  constructor (components: SessionPoolComponents, init: SessionPoolInit) {
    this.components = components
    this.init = init
  }

  /** Blocks up to `pool.size` bytes land in its buffers from now on. */
  useBuffers (pool: BufferPool): void {
    this.buffers = pool
  }

  /** Peers with a stream open or opening. */
  peers (): string[] {
    return [...this.sessions.keys()]
  }

  /** The stream to `peer`: the open one, else a new one. */
  async get (peer: string, signal: AbortSignal): Promise<XferSession> {
    let s = this.sessions.get(peer)
    if (s != null) {
      const live = await s.catch(() => undefined)
      if (live != null && live.failed == null) return live
      this.sessions.delete(peer)
    }
    s = XferSession.open(this.components.connection, peer, {
      signal,
      // blocks land in shared memory the hash worker reads in place, reused from block to block
      allocate: size => {
        const pool = this.buffers
        return pool != null && size <= pool.size ? pool.acquire().subarray(0, size) : Buffer.from(new SharedArrayBuffer(size))
      },
      release: buf => { this.buffers?.release(buf) }
    })
    this.sessions.set(peer, s)
    s.catch(() => { if (this.sessions.get(peer) === s) this.sessions.delete(peer) })
    return s
  }

  /** Resets the stream to `peer` (it failed us); a later `get` opens a new one. */
  drop (peer: string, why: string): void {
    const s = this.sessions.get(peer)
    this.sessions.delete(peer)
    this.init.log('source %s of %s: %s', peer, this.init.name, why)
    void s?.then(live => { live.abort(new Error(why)) }, () => {}) // a stream that never opened has nothing to reset
  }

  /** Closes every stream (gracefully where nothing is owed). */
  async close (): Promise<void> {
    await Promise.all([...this.sessions.values()].map(async s => {
      const live = await s.catch(() => undefined) // one that never opened needs no closing
      await live?.close()
    }))
  }
}
