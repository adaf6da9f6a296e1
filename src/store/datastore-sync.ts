/**
 * Makes the datastore's writes so far durable, in batches. LevelDB appends
 * every write to its log and fsyncs that log only for a write made with
 * `sync: true`; one such write makes every record appended before it
 * durable too. So callers that must not lose what they wrote (a holding:
 * the user was told the file is shared) call `sync()`, and callers arriving
 * while a round is waiting share it: one fsync for a burst of holdings.
 * A datastore without a LevelDB under it (memory, in tests) has nothing to
 * sync.
 */
import { Key, type Datastore } from 'interface-datastore'

const MARKER = new Key('/shoal/sync')
const EMPTY = new Uint8Array(0)

/** The part of LevelDatastore this needs: its level instance, which takes `sync`. */
interface SyncableDb {
  put: (key: string, value: Uint8Array, options: { sync: boolean }) => Promise<void>
}

export class DatastoreSync {
  private readonly db?: SyncableDb
  private last?: Promise<void>
  private next?: Promise<void>

  constructor (datastore: Datastore) {
    const db = (datastore as { db?: unknown }).db
    if (db != null && typeof (db as SyncableDb).put === 'function') this.db = db as SyncableDb
  }

  /** Resolves once every write made before this call is durable. */
  async sync (): Promise<void> {
    const db = this.db
    if (db == null) return
    if (this.next != null) return this.next
    const round = (this.last ?? Promise.resolve()).catch(() => {}).then(async () => {
      this.next = undefined
      await db.put(MARKER.toString(), EMPTY, { sync: true })
    })
    this.next = round
    this.last = round
    round.catch(() => {}).finally(() => { if (this.last === round) this.last = undefined })
    return round
  }
}
