/**
 * File-backed leaves: the raw leaves of a fetched file kept where the fetch
 * wrote them, inside the output file, instead of a second copy in the
 * blockstore (BitTorrent's way: the downloaded file is what is seeded).
 *
 * Why: every byte written to disk costs CPU (page cache, writeback, the
 * virtual disk), and a fetch that also stored each block would write every
 * byte twice; that, not the network, bounds a fetch on a loopback swarm
 * (docs/benchmarks.md).
 *
 * In the LevelDB datastore, per file (a root may be in several files):
 *   /shoal/file-leaves/files/<id>            {"root", "path", "final"}
 *   /shoal/file-leaves/leaves/<id>/<offset>  {"cid", "size"}
 * `path` is where the bytes are now (the fetch's `.part` file, then its
 * target); `final` is the name the file gets when the fetch completes, so a
 * crash between the rename and the record still finds it. A leaf is
 * recorded only after the file's bytes are on disk (the fetch fsyncs first).
 *
 * Every read is re-hashed: the file belongs to the user, who may change or
 * delete it. A leaf that no longer matches is forgotten; a file that is
 * gone is forgotten when the store opens.
 */
import { randomBytes } from 'node:crypto'
import fs from 'node:fs/promises'
import type { Logger } from '@libp2p/interface'
import { Key, type Datastore } from 'interface-datastore'
import { CID } from 'multiformats/cid'
import { cidKey, matchesCid } from '../content/cid.ts'
import { isCode } from '../utils/fs.ts'

const FILES = '/shoal/file-leaves/files'
const LEAVES = '/shoal/file-leaves/leaves'

export interface FileLeaf {
  cid: CID
  offset: number
  size: number
}

export interface LeafLocation {
  /** The file record's id. */
  file: string
  path: string
  offset: number
  size: number
}

/** A file that keeps leaves of a root. */
export interface KeptFile {
  /** Where it is now (a fetch's `.part` file, then its target). */
  path: string
  /** The name it gets when its fetch completes. */
  final: string
  /** Leaves recorded in it. */
  leaves: number
}

interface FileRecord {
  root: string
  path: string
  final: string
}

interface StoredLeaf {
  cid: string
  size: number
}

export class FileLeaves {
  private readonly datastore: Datastore
  private readonly log: Logger
  private readonly files = new Map<string, FileRecord>()
  /** File id → its leaves by offset. */
  private readonly byFile = new Map<string, Map<number, StoredLeaf>>()
  /** Leaf CID → the files and offsets where it is (read from any). */
  private readonly places = new Map<string, Array<{ file: string, offset: number }>>()

  constructor (datastore: Datastore, log: Logger) {
    this.datastore = datastore
    this.log = log
  }

  /** Loads the records; files that are gone (or shorter than their leaves) are forgotten. */
  async open (): Promise<void> {
    this.files.clear()
    this.byFile.clear()
    this.places.clear()
    for await (const { key, value } of this.datastore.query({ prefix: FILES + '/' })) {
      this.files.set(key.baseNamespace(), decode<FileRecord>(value))
    }
    const found = new Map<string, Array<{ offset: number, leaf: StoredLeaf }>>()
    for await (const { key, value } of this.datastore.query({ prefix: LEAVES + '/' })) {
      const file = key.parent().baseNamespace()
      let list = found.get(file)
      if (list == null) found.set(file, list = [])
      list.push({ offset: Number(key.baseNamespace()), leaf: decode<StoredLeaf>(value) })
    }
    for (const [id, record] of [...this.files]) {
      const list = found.get(id) ?? []
      const end = list.reduce((m, { offset, leaf }) => Math.max(m, offset + leaf.size), 0)
      const where = await firstFileOfAtLeast([record.path, record.final], end)
      if (where == null) {
        this.log('leaves of %s kept in %s forgotten: the file is gone', record.root, record.path)
        await this.deleteRecords(id, list.map(l => l.offset), true)
        this.files.delete(id)
        continue
      }
      if (where !== record.path) await this.setFile(id, { ...record, path: where })
      for (const { offset, leaf } of list) this.index(id, offset, leaf)
    }
  }

  has (cid: CID): boolean {
    return this.places.has(cidKey(cid))
  }

  locate (cid: CID): LeafLocation | undefined {
    const at = this.places.get(cidKey(cid))?.[0]
    if (at == null) return undefined
    const record = this.files.get(at.file)
    const leaf = this.byFile.get(at.file)?.get(at.offset)
    return record == null || leaf == null ? undefined : { file: at.file, path: record.path, offset: at.offset, size: leaf.size }
  }

  /** True when `path` at `offset` is one of the places the leaf is kept. */
  isKeptAt (cid: CID, path: string, offset: number): boolean {
    return (this.places.get(cidKey(cid)) ?? []).some(p => p.offset === offset && this.files.get(p.file)?.path === path)
  }

  /** The files and offsets where the leaf is kept. */
  placesOf (cid: CID): Array<{ path: string, offset: number }> {
    return (this.places.get(cidKey(cid)) ?? []).flatMap(p => {
      const record = this.files.get(p.file)
      return record == null ? [] : [{ path: record.path, offset: p.offset }]
    })
  }

  /** The files keeping leaves of `root`. */
  filesOf (root: CID): KeptFile[] {
    const rootKey = cidKey(root)
    return [...this.files].filter(([, r]) => r.root === rootKey)
      .map(([id, r]) => ({ path: r.path, final: r.final, leaves: this.byFile.get(id)?.size ?? 0 }))
  }

  /** Roots with leaves kept in files. */
  roots (): Set<string> {
    return new Set([...this.files.values()].map(r => r.root))
  }

  /** Every leaf kept in files, file by file in file order. */
  all (): Array<LeafLocation & { cid: string, root: string }> {
    const out: Array<LeafLocation & { cid: string, root: string }> = []
    for (const [id, record] of this.files) {
      const leaves = [...(this.byFile.get(id) ?? [])].sort((a, b) => a[0] - b[0])
      for (const [offset, leaf] of leaves) out.push({ file: id, root: record.root, path: record.path, offset, size: leaf.size, cid: leaf.cid })
    }
    return out
  }

  /**
   * The leaf's bytes, read from a file that keeps it and re-hashed;
   * undefined when none does any more (those places are forgotten).
   */
  async read (cid: CID): Promise<Uint8Array | undefined> {
    while (true) {
      const at = this.locate(cid)
      if (at == null) return undefined
      const bytes = await this.readChecked(at, cid)
      if (bytes != null) return bytes
      await this.forgetLeaf(at, 'the file no longer holds it')
    }
  }

  /**
   * True when some file still holds the leaf (re-hashed); the places that
   * no longer do are forgotten. What a fetch asks before it counts a kept
   * leaf as here: the file may have been deleted, replaced or changed.
   */
  async confirm (cid: CID): Promise<boolean> {
    return (await this.read(cid)) != null
  }

  /** True when the leaf's file still holds its bytes. */
  async holds (leaf: LeafLocation & { cid: string }): Promise<boolean> {
    return (await this.readChecked(leaf, CID.parse(leaf.cid))) != null
  }

  /**
   * The leaf's bytes at `at`, re-hashed; else, when the file is not there,
   * at its final name (a fetch renames the file before it records the
   * rename, and a read may come in between).
   */
  private async readChecked (at: LeafLocation, cid: CID): Promise<Uint8Array | undefined> {
    const bytes = await readAt(at.path, at.offset, at.size)
    if (bytes != null) return matchesCid(cid, bytes) ? bytes : undefined
    const final = this.files.get(at.file)?.final
    if (final == null || final === at.path) return undefined
    const moved = await readAt(final, at.offset, at.size)
    return moved != null && matchesCid(cid, moved) ? moved : undefined
  }

  /** Forgets one place of a leaf. */
  async forgetLeaf (at: LeafLocation, why: string): Promise<void> {
    this.log('leaf kept in %s at %d forgotten: %s', at.path, at.offset, why)
    await this.forget(at.file, [at.offset])
  }

  /**
   * Records leaves of `root` whose bytes are durable in `path` (a fetch's
   * `.part` file), which becomes `final` when complete. A fetch resumed in
   * the same `.part` file adds to its record.
   */
  async add (root: CID, path: string, final: string, leaves: FileLeaf[]): Promise<void> {
    const rootKey = cidKey(root)
    let id = [...this.files].find(([, r]) => r.root === rootKey && r.path === path)?.[0]
    if (id == null) {
      id = randomBytes(8).toString('hex')
      await this.setFile(id, { root: rootKey, path, final })
    }
    const batch = this.datastore.batch()
    const stored = leaves.map(leaf => ({ offset: leaf.offset, leaf: { cid: cidKey(leaf.cid), size: leaf.size } }))
    for (const { offset, leaf } of stored) batch.put(leafKey(id, offset), encode(leaf))
    await batch.commit()
    for (const { offset, leaf } of stored) this.index(id, offset, leaf)
  }

  /**
   * A file of `root` was renamed from `from` to `to`. Any other record at
   * `to`, of this root or another, was of the file this one replaced, and
   * is forgotten.
   */
  async renamed (root: CID, from: string, to: string): Promise<void> {
    const rootKey = cidKey(root)
    for (const [id, record] of [...this.files]) {
      if (record.root === rootKey && record.path === from) await this.setFile(id, { ...record, path: to })
      else if (record.path === to) await this.dropFile(id)
    }
  }

  /** Ids of the files keeping leaves of `root` at `path`. */
  filesAt (root: CID, path: string): string[] {
    const rootKey = cidKey(root)
    return [...this.files].filter(([, r]) => r.root === rootKey && r.path === path).map(([id]) => id)
  }

  /** The leaves a file keeps (offset, CID, size). */
  leavesIn (file: string): Array<{ offset: number, cid: CID, size: number }> {
    return [...(this.byFile.get(file) ?? [])].map(([offset, leaf]) => ({ offset, cid: CID.parse(leaf.cid), size: leaf.size }))
  }

  /** Forgets every file keeping leaves of a root (the files stay: they are the user's). */
  async drop (root: string): Promise<void> {
    for (const [id, record] of [...this.files]) if (record.root === root) await this.dropFile(id)
  }

  private async dropFile (id: string): Promise<void> {
    await this.forget(id, [...(this.byFile.get(id)?.keys() ?? [])])
    await this.datastore.delete(new Key(`${FILES}/${id}`))
    this.files.delete(id)
  }

  private index (file: string, offset: number, leaf: StoredLeaf): void {
    let leaves = this.byFile.get(file)
    if (leaves == null) this.byFile.set(file, leaves = new Map())
    leaves.set(offset, leaf)
    let places = this.places.get(leaf.cid)
    if (places == null) this.places.set(leaf.cid, places = [])
    if (!places.some(p => p.file === file && p.offset === offset)) places.push({ file, offset })
  }

  private async setFile (id: string, record: FileRecord): Promise<void> {
    await this.datastore.put(new Key(`${FILES}/${id}`), encode(record))
    this.files.set(id, record)
  }

  private async forget (file: string, offsets: number[]): Promise<void> {
    await this.deleteRecords(file, offsets)
    const leaves = this.byFile.get(file)
    for (const offset of offsets) {
      const leaf = leaves?.get(offset)
      if (leaf == null) continue
      leaves!.delete(offset)
      const kept = (this.places.get(leaf.cid) ?? []).filter(p => p.file !== file || p.offset !== offset)
      if (kept.length === 0) this.places.delete(leaf.cid)
      else this.places.set(leaf.cid, kept)
    }
    if (leaves?.size === 0) this.byFile.delete(file)
  }

  private async deleteRecords (file: string, offsets: number[], withFile = false): Promise<void> {
    const batch = this.datastore.batch()
    for (const offset of offsets) batch.delete(leafKey(file, offset))
    if (withFile) batch.delete(new Key(`${FILES}/${file}`))
    await batch.commit()
  }
}

function leafKey (file: string, offset: number): Key {
  // zero-padded, so a file's leaves list in order
  return new Key(`${LEAVES}/${file}/${String(offset).padStart(16, '0')}`)
}

function encode (value: unknown): Uint8Array {
  return new TextEncoder().encode(JSON.stringify(value))
}

function decode<T> (bytes: Uint8Array): T {
  return JSON.parse(new TextDecoder().decode(bytes)) as T
}

/** The first of `paths` that is a regular file of at least `size` bytes. */
async function firstFileOfAtLeast (paths: Array<string | undefined>, size: number): Promise<string | undefined> {
  for (const p of paths) {
    if (p == null) continue
    const stat = await fs.stat(p).catch(() => undefined)
    if (stat?.isFile() === true && stat.size >= size) return p
  }
  return undefined
}

async function readAt (path: string, offset: number, size: number): Promise<Uint8Array | undefined> {
  let handle: fs.FileHandle
  try {
    handle = await fs.open(path, 'r')
  } catch (err) {
    if (isCode(err, 'ENOENT') || isCode(err, 'EACCES') || isCode(err, 'EISDIR')) return undefined
    throw err
  }
  try {
    const bytes = Buffer.allocUnsafe(size)
    let done = 0
    while (done < size) {
      const { bytesRead } = await handle.read(bytes, done, size - done, offset + done)
      if (bytesRead === 0) return undefined
      done += bytesRead
    }
    return bytes
  } finally {
    await handle.close()
  }
}
