/**
 * The fetch's output file on a real disk: whole aligned blocks from pool
 * buffers go through the O_DIRECT handle, the rest (a short last block, a
 * buffer that does not start on a page boundary) through the page cache,
 * and the file holds exactly the bytes written either way.
 */
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import fs from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { BufferPool } from '../../src/content/buffer-pool.ts'
import { OutputFile } from '../../src/exchange/output-file.ts'

const KiB = 1024

describe('output file', () => {
  let dir: string
  before(async () => { dir = await fs.mkdtemp(path.join(os.tmpdir(), 'shoal-output-')) })
  after(async () => { await fs.rm(dir, { recursive: true, force: true }) })

  it('writes blocks at their offsets, direct or through the page cache, and renames the file when finished', async () => {
    const block = 64 * KiB
    const data = randomBytes(5 * block + 1234)
    const target = path.join(dir, 'out.bin')
    const out = await OutputFile.prepare(target, 'bafytest', false)
    await out.open(data.length)
    const pool = new BufferPool(block)
    const pieces = [4, 1, 3, 0, 2, 5].map(i => ({ offset: i * block, bytes: data.subarray(i * block, Math.min(data.length, (i + 1) * block)) }))
    for (const [n, { offset, bytes }] of pieces.entries()) {
      let buf: Uint8Array
      if (n === 2) {
        // one byte into its memory: not tried with O_DIRECT, written through the page cache
        buf = new Uint8Array(new SharedArrayBuffer(bytes.length + 1), 1, bytes.length)
      } else if (n === 3) {
        // memory where malloc put it: O_DIRECT refuses it (EINVAL), the page cache takes it
        buf = new Uint8Array(new SharedArrayBuffer(bytes.length))
      } else {
        buf = pool.acquire().subarray(0, bytes.length)
      }
      buf.set(bytes)
      await out.write(offset, buf)
      pool.release(buf)
    }
    await out.finish()
    assert.ok((await fs.readFile(target)).equals(data))
    await assert.rejects(fs.access(out.partPath), { code: 'ENOENT' })
  })

  it('keeps the temporary file with what was written when given up, and a new open resumes it', async () => {
    const data = randomBytes(3 * 16 * KiB)
    const target = path.join(dir, 'resumed.bin')
    const pool = new BufferPool(16 * KiB)
    const first = await OutputFile.prepare(target, 'bafyresume', false)
    await first.open(data.length)
    const buf = pool.acquire()
    buf.set(data.subarray(0, 16 * KiB))
    await first.write(0, buf)
    await first.sync()
    await first.abandon()
    const second = await OutputFile.prepare(target, 'bafyresume', false)
    await second.open(data.length)
    for (const i of [1, 2]) {
      buf.set(data.subarray(i * 16 * KiB, (i + 1) * 16 * KiB))
      await second.write(i * 16 * KiB, buf)
    }
    await second.finish()
    assert.ok((await fs.readFile(target)).equals(data))
  })
})
