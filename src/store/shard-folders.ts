/**
 * The blockstore's shard folders and the names in them: the sharding, a
 * block file's commit to its name, and the durability of those names:
 * which folders exist (made once, on first use), which hold names written
 * since their last fsync, and the rounds of folder fsyncs that make those
 * names durable (`sync`).
 */
import fs from 'node:fs/promises'
import path from 'node:path'
import { isCode } from '../utils/fs.ts'

/** Folder fsyncs in flight at once in `sync()`. */
const SYNC_CONCURRENCY = 32

/** Filesystems without hard links (FAT) answer link() with one of these. */
const NO_LINKS = new Set(['EPERM', 'ENOTSUP', 'EOPNOTSUPP', 'ENOSYS'])

/** The blockstore's folder of shards itself: a new shard's name lives there. */
const TOP = '.'

export class ShardFolders {
  private readonly dir: string
  private readonly fsyncFolder: (dir: string) => Promise<void>
  private readonly known = new Set<string>()
  private readonly dirty = new Set<string>()
  /** The last folder-sync round (maybe running), and the next one if it has not started. */
  private syncLast?: Promise<void>
  private syncNext?: Promise<void>

  constructor (dir: string, fsyncFolder: (dir: string) => Promise<void>) {
    this.dir = dir
    this.fsyncFolder = fsyncFolder
  }

  /** A shard folder that exists already (found on open, or made by a leaf worker). */
  exists (shard: string): void {
    this.known.add(shard)
  }

  /** Shard folders a leaf worker made: their names in the top folder need a sync. */
  made (shards: string[]): void {
    for (const shard of shards) this.known.add(shard)
    if (shards.length > 0) this.dirty.add(TOP)
  }

  /** Makes the shard folder unless it exists. */
  async ensure (shard: string): Promise<void> {
    if (this.known.has(shard)) return
    await fs.mkdir(path.join(this.dir, shard), { recursive: true })
    this.made([shard])
  }

  /** A name was written into the shard: the next `sync` makes it durable. */
  wrote (shard: string): void {
    this.dirty.add(shard)
  }

  /** Writes are not synced (config storage.sync off): nothing to make durable. */
  forget (): void {
    this.dirty.clear()
  }

  /**
   * Makes the names of every write finished before this call durable (fsync
   * of the folders they went into). Rounds of folder fsyncs run one at a
   * time, and a call waits for a round that starts after it: a round already
   * running may have taken the folders before this caller's writes reached
   * them. Callers arriving before the next round starts share it.
   */
  async sync (): Promise<void> {
    if (this.syncNext != null) return this.syncNext
    const round = (this.syncLast ?? Promise.resolve()).catch(() => {}).then(async () => {
      this.syncNext = undefined
      const shards = [...this.dirty]
      this.dirty.clear()
      await this.syncFolders(shards)
    })
    this.syncNext = round
    this.syncLast = round
    round.catch(() => {}).finally(() => { if (this.syncLast === round) this.syncLast = undefined })
    return round
  }

  /** fsyncs folders, many at once (each is its own small disk write). */
  private async syncFolders (shards: string[]): Promise<void> {
    let next = 0
    let error: unknown
    const worker = async (): Promise<void> => {
      while (next < shards.length) {
        const shard = shards[next++]
        try {
          await this.fsyncFolder(path.join(this.dir, shard))
        } catch (err) {
          // not durable: dirty again, so the next sync retries it
          this.dirty.add(shard)
          error ??= err
        }
      }
    }
    await Promise.all(Array.from({ length: Math.min(SYNC_CONCURRENCY, shards.length) }, worker))
    if (error != null) throw error
  }
}

/** flatfs's next-to-last/2 sharding, on the CID's base32 text (leaf-workers.ts does the same). */
export function shardOf (key: string): string {
  return key.slice(-3, -1)
}

/**
 * Gives the written temp file its block name: a hard link, which fails when
 * the block is already there (false), or a rename where links are not
 * supported. The caller removes the temp name.
 */
export async function commitTemp (tmp: string, file: string): Promise<boolean> {
  try {
    await fs.link(tmp, file)
    return true
  } catch (err) {
    if (isCode(err, 'EEXIST')) return false
    if (!NO_LINKS.has((err as { code?: string }).code ?? '')) throw err
    if (await fs.access(file).then(() => true, () => false)) return false
    await fs.rename(tmp, file)
    return true
  }
}
