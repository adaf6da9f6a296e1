/**
 * The hash worker: the same sha2-256 digests before its thread is running
 * (computed on the caller's thread) and after (on the worker), for shared
 * and ordinary memory, and after it was closed (on the caller's thread).
 */
import assert from 'node:assert/strict'
import { createHash, randomBytes } from 'node:crypto'
import { HashWorker } from '../../src/content/hash-worker.ts'
import { waitFor } from '../../src/utils/wait.ts'

const sha256 = (bytes: Uint8Array): string => createHash('sha256').update(bytes).digest('hex')
const hex = (digest: Uint8Array): string => Buffer.from(digest).toString('hex')

describe('hash worker', () => {
  it('gives the right digest while its thread starts, once it runs, and after a close', async () => {
    const hasher = new HashWorker()
    const blocks = Array.from({ length: 40 }, (_, i) => {
      const bytes = randomBytes(64 * 1024 + i)
      if (i % 2 === 0) return bytes
      const shared = Buffer.from(new SharedArrayBuffer(bytes.length))
      bytes.copy(shared)
      return shared
    })
    try {
      // at once: the first ones before the thread is up
      const early = await Promise.all(blocks.map(async b => hasher.digest(b)))
      assert.deepEqual(early.map(hex), blocks.map(sha256))
      // and once its thread runs (the flag digest() reads to send work to it)
      await waitFor(() => hasher['online'], { timeoutMs: 30_000, intervalMs: 10, message: () => 'the hash worker thread did not come online' })
      const late = await Promise.all(blocks.map(async b => hasher.digest(b)))
      assert.deepEqual(late.map(hex), blocks.map(sha256))
      await hasher.close()
      assert.equal(hex(await hasher.digest(blocks[1])), sha256(blocks[1]), 'a closed hasher still digests')
      assert.equal(hasher['worker'], undefined, 'on the caller\'s thread: a closed hasher starts no thread nobody would stop')
    } finally {
      await hasher.close()
    }
  })
})
