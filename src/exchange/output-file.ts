/**
 * The file a fetch writes: blocks land at their offsets in a temporary file
 * beside the target as they arrive (in any order), and the target name
 * appears only when every byte is there and on disk. The temporary name is
 * fixed for a (target, CID) pair, so an interrupted fetch finds it again;
 * it is kept when a fetch fails (disk full, timeout, crash).
 *
 * Whole 4 KiB-aligned blocks from page-aligned buffers (BufferPool) are
 * written through a second handle opened with O_DIRECT, straight to the
 * disk: the file is fsynced as it goes anyway, and the copy into the page
 * cache was one of the fetcher's largest costs on this VM, whose new pages
 * the hypervisor backs on first touch (docs/benchmarks.md). The rest (the
 * last block, other buffers, a filesystem that refuses O_DIRECT) goes
 * through the page cache as before. fsync works on the file, whichever
 * handle wrote.
 *
 * The temporary name is predictable and its folder may be shared, so it is
 * opened without following a symbolic link (O_NOFOLLOW), and a file found
 * there is reused only when it is a regular file of this user's with no
 * other name (not a hard link to someone else's file): else another user
 * could aim the daemon's writes at any file it can write.
 */
import { constants, type Stats } from 'node:fs'
import fs from 'node:fs/promises'
import path from 'node:path'
import { isCode, syncFolder } from '../utils/fs.ts'
import { DiskFullError, InvalidPathError, OutputExistsError } from '../store/errors.ts'

/** Bytes written between two background flushes of the output file. */
const FLUSH_EVERY_BYTES = 32 * 1024 * 1024
/** O_DIRECT needs the buffer's address, the offset and the length aligned to the device's block. */
const DIRECT_ALIGN = 4096
const O_DIRECT = constants.O_DIRECT ?? 0
/** The temporary file, reopened (r+) or created (wx), never through a symbolic link. */
const REOPEN_FLAGS = constants.O_RDWR | constants.O_NOFOLLOW
const CREATE_FLAGS = constants.O_RDWR | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW

/** How an output file opens its handles (tests give one whose disk fills up). */
export interface OutputFileSystem {
  open: (path: string, flags: string | number, mode?: number) => Promise<fs.FileHandle>
}

export const nodeFileSystem: OutputFileSystem = {
  open: async (file, flags, mode) => fs.open(file, flags, mode)
}

export class OutputFile {
  readonly target: string
  readonly partPath: string
  private readonly force: boolean
  private readonly files: OutputFileSystem
  private handle?: fs.FileHandle
  /** The same file opened with O_DIRECT, unless the filesystem refused it. */
  private direct?: fs.FileHandle
  /** Bytes written since the last flush was started. */
  private unflushed = 0
  private flushing?: Promise<void>

  private constructor (target: string, cid: string, force: boolean, files: OutputFileSystem) {
    this.target = target
    this.partPath = path.join(path.dirname(target), `.${path.basename(target)}.${cid}.part`)
    this.force = force
    this.files = files
  }

  /** Checks that `target` may be written (exit 2 if not) before any byte is fetched. */
  static async prepare (target: string, cid: string, force: boolean, files = nodeFileSystem): Promise<OutputFile> {
    if (!path.isAbsolute(target)) throw new InvalidPathError(`output path must be absolute, got ${target}`)
    const parent = await fs.stat(path.dirname(target)).catch(() => undefined)
    if (parent?.isDirectory() !== true) throw new InvalidPathError(`cannot write ${target}: folder ${path.dirname(target)} does not exist`)
    const out = new OutputFile(target, cid, force, files)
    await out.checkTarget()
    return out
  }

  private async checkTarget (): Promise<void> {
    const stat = await fs.lstat(this.target).catch(() => undefined)
    if (stat == null) return
    if (stat.isDirectory()) throw new InvalidPathError(`cannot write ${this.target}: it is a folder`)
    if (!this.force) throw new OutputExistsError(`${this.target} already exists (use --force to overwrite)`)
  }

  /** Opens (or reopens, keeping what it holds) the temporary file at its final size. */
  async open (size: number): Promise<void> {
    try {
      let created = false
      this.handle = await this.files.open(this.partPath, REOPEN_FLAGS).catch(async (err: unknown) => {
        if (isCode(err, 'ELOOP')) throw this.unsafePart('is a symbolic link')
        if (!isCode(err, 'ENOENT')) throw err
        created = true
        return this.files.open(this.partPath, CREATE_FLAGS, 0o644)
      })
      const stat = await this.handle.stat()
      this.checkPart(stat)
      // the name made durable: the leaves this file keeps are recorded as in it
      if (created) await syncFolder(path.dirname(this.partPath))
      if (stat.size !== size) await this.handle.truncate(size)
      if (O_DIRECT !== 0) {
        this.direct = await this.files.open(this.partPath, constants.O_WRONLY | O_DIRECT | constants.O_NOFOLLOW).catch((err: unknown) => {
          if (isCode(err, 'EINVAL')) return undefined
          if (isCode(err, 'ELOOP')) throw this.unsafePart('became a symbolic link')
          throw err
        })
        // the same file as the first handle, not one put in its place meanwhile
        if (this.direct != null && !sameFile(await this.direct.stat(), stat)) throw this.unsafePart('was replaced while it was opened')
      }
    } catch (err) {
      await this.closeHandles()
      throw this.fileError(err)
    }
  }

  /** A temporary file found here is reused only if it is a regular file of this user's, with no other name. */
  private checkPart (stat: Stats): void {
    if (!stat.isFile()) throw this.unsafePart('is not a regular file')
    const uid = process.getuid?.()
    if (uid != null && stat.uid !== uid) throw this.unsafePart(`belongs to another user (uid ${stat.uid})`)
    if (stat.nlink !== 1) throw this.unsafePart(`has ${stat.nlink} names (a hard link to another file)`)
  }

  private unsafePart (why: string): InvalidPathError {
    return new InvalidPathError(`refusing to write ${this.target}: its temporary file ${this.partPath} ${why}; remove it and fetch again`)
  }

  async write (offset: number, bytes: Uint8Array): Promise<void> {
    if (this.handle == null) throw new Error('output file is not open')
    try {
      if (!await this.writeDirect(offset, bytes)) await writeFully(this.handle, bytes, offset)
    } catch (err) {
      throw this.fileError(err)
    }
    // flush as we go, one flush at a time, so the final fsync has little
    // left to write and the disk works while the network does
    this.unflushed += bytes.length
    if (this.unflushed >= FLUSH_EVERY_BYTES && this.flushing == null) {
      this.unflushed = 0
      const handle = this.handle
      this.flushing = handle.datasync().catch(() => {}).finally(() => { this.flushing = undefined })
    }
  }

  /**
   * Writes `bytes` through the O_DIRECT handle when they can go that way;
   * false when they cannot (not aligned, no such handle, or EINVAL: a
   * buffer that does not start on a page boundary).
   */
  private async writeDirect (offset: number, bytes: Uint8Array): Promise<boolean> {
    if (this.direct == null || offset % DIRECT_ALIGN !== 0 || bytes.length % DIRECT_ALIGN !== 0 || bytes.byteOffset % DIRECT_ALIGN !== 0) return false
    try {
      await writeFully(this.direct, bytes, offset)
      return true
    } catch (err) {
      if (isCode(err, 'EINVAL')) return false
      throw err
    }
  }

  /** Makes every byte written so far durable (the name is still the temporary one). */
  async sync (): Promise<void> {
    if (this.handle == null) throw new Error('output file is not open')
    try {
      await this.handle.datasync()
    } catch (err) {
      throw this.fileError(err)
    }
  }

  /** Makes the bytes durable and gives the file its name. */
  async finish (): Promise<void> {
    if (this.handle == null) throw new Error('output file is not open')
    try {
      await this.flushing
      await this.handle.datasync()
      const written = await this.handle.stat()
      await this.closeHandles()
      await this.checkTarget()
      // the name still leads to the file written (not to one put in its place)
      const named = await fs.lstat(this.partPath).catch(() => undefined)
      if (named == null || !sameFile(named, written)) throw this.unsafePart('was replaced while it was written')
      await fs.rename(this.partPath, this.target)
      await syncFolder(path.dirname(this.target))
    } catch (err) {
      throw this.fileError(err)
    }
  }

  /** Closes the temporary file and leaves it for a later fetch to resume. */
  async abandon (): Promise<void> {
    await this.flushing
    await this.closeHandles()
  }

  private async closeHandles (): Promise<void> {
    await Promise.all([this.handle?.close(), this.direct?.close()].map(async c => { await c?.catch(() => {}) }))
    this.handle = undefined
    this.direct = undefined
  }

  private fileError (err: unknown): Error {
    if (isCode(err, 'ENOSPC')) return new DiskFullError(`disk full while writing ${this.target} (what was fetched is kept in ${this.partPath} and the store, for the next fetch)`)
    if (isCode(err, 'EACCES') || isCode(err, 'EROFS') || isCode(err, 'EISDIR')) return new InvalidPathError(`cannot write ${this.target}: ${(err as Error).message}`)
    return err as Error
  }
}

function sameFile (a: Stats, b: Stats): boolean {
  return a.dev === b.dev && a.ino === b.ino
}

async function writeFully (handle: fs.FileHandle, bytes: Uint8Array, offset: number): Promise<void> {
  let done = 0
  while (done < bytes.length) {
    const { bytesWritten } = await handle.write(bytes, done, bytes.length - done, offset + done)
    done += bytesWritten
  }
}
