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

  describe('a temporary file planted by someone else', () => {
    const refused = async (out: OutputFile, why: RegExp): Promise<void> => {
      await assert.rejects(out.open(100), (err: Error) => {
        assert.equal(err.name, 'InvalidPathError')
        assert.match(err.message, /^refusing to write .*: its temporary file .*\.part /)
        assert.match(err.message, why)
        return true
      })
    }

    it('refuses a .part that is a symbolic link, and leaves the file it points to alone', async () => {
      const victim = path.join(dir, 'victim')
      await fs.writeFile(victim, 'precious')
      const out = await OutputFile.prepare(path.join(dir, 'sym.bin'), 'bafysym', false)
      await fs.symlink(victim, out.partPath)
      await refused(out, /is a symbolic link/)
      assert.equal(await fs.readFile(victim, 'utf8'), 'precious')
      // a dangling link is no better: nothing is created where it points
      const dangling = await OutputFile.prepare(path.join(dir, 'dangling.bin'), 'bafysym', false)
      await fs.symlink(path.join(dir, 'created-through-link'), dangling.partPath)
      await refused(dangling, /is a symbolic link/)
      await assert.rejects(fs.access(path.join(dir, 'created-through-link')))
    })

    it('refuses a .part that is a hard link to another file, not a regular file, or another user\'s', async () => {
      const victim = path.join(dir, 'victim-hard')
      await fs.writeFile(victim, 'precious')
      const hard = await OutputFile.prepare(path.join(dir, 'hard.bin'), 'bafyhard', false)
      await fs.link(victim, hard.partPath)
      await refused(hard, /has 2 names/)
      assert.equal(await fs.readFile(victim, 'utf8'), 'precious')

      const folder = await OutputFile.prepare(path.join(dir, 'folder.bin'), 'bafyfolder', false)
      await fs.mkdir(folder.partPath)
      await assert.rejects(folder.open(100), (err: Error) => err.name === 'InvalidPathError')

      const theirs = await OutputFile.prepare(path.join(dir, 'theirs.bin'), 'bafytheirs', false)
      await fs.writeFile(theirs.partPath, 'theirs')
      if (process.getuid?.() === 0) {
        await fs.chown(theirs.partPath, 12345, 12345)
        await refused(theirs, /belongs to another user \(uid 12345\)/)
      }
    })

    it('still resumes its own .part', async () => {
      const out = await OutputFile.prepare(path.join(dir, 'own.bin'), 'bafyown', false)
      await fs.writeFile(out.partPath, Buffer.from('abc'))
      await out.open(3)
      await out.finish()
      assert.equal(await fs.readFile(path.join(dir, 'own.bin'), 'utf8'), 'abc')
    })
  })
})
