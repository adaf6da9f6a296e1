/**
 * Holdings: why this peer keeps a piece of content, in the LevelDB
 * datastore under /shoal/holdings/<cid>/<reason>. A CID may be held for
 * several reasons at once; garbage collection keeps whatever any holding
 * reaches:
 *  - shared:  this peer imported the file — the whole DAG is kept;
 *  - fetched: this peer downloaded the file — the whole DAG is kept;
 *  - replica: this peer keeps one block for others (placement) — that block
 *    alone is kept, not what it links to.
 *
 * A holding is what the user is told is done, so `add` and `remove`
 * resolve only once the change is durable (DatastoreSync: one LevelDB log
 * fsync for every change of a burst); a power cut never loses a reported
 * share, after which GC would have swept its blocks.
 */
import { Key, type Datastore } from 'interface-datastore'
import type { CID } from 'multiformats/cid'
import { cidKey } from '../content/cid.ts'
import { DatastoreSync } from './datastore-sync.ts'

export const HOLD_REASONS = ['shared', 'fetched', 'replica'] as const
export type HoldReason = typeof HOLD_REASONS[number]

/** Reasons that keep the whole DAG under the CID, not just its block. */
export function holdsWholeDag (reason: HoldReason): boolean {
  return reason !== 'replica'
}

export interface Holding {
  cid: string
  reason: HoldReason
  /** File bytes for a DAG, block bytes for a replica. */
  size: number
  /** Blocks in the DAG (1 for a replica). */
  blocks: number
  /** File name given when it was shared, if any. */
  name?: string
  /** For a replica, and a shared DAG: the k its blocks are placed with (repair keeps that many copies). */
  replicas?: number
  /** When the holding was recorded (ISO 8601). */
  since: string
}

const PREFIX = '/shoal/holdings'

export class Holdings {
  private readonly datastore: Datastore
  private readonly durable: DatastoreSync

  constructor (datastore: Datastore) {
    this.datastore = datastore
    this.durable = new DatastoreSync(datastore)
  }

  /**
   * Records a holding, durably unless `sync: false` (then the caller calls
   * `sync()` once for a batch of them before it reports them done).
   */
  async add (holding: Omit<Holding, 'since' | 'cid'> & { cid: CID }, options: { sync?: boolean } = {}): Promise<Holding> {
    const record: Holding = { ...holding, cid: cidKey(holding.cid), since: new Date().toISOString() }
    if (record.name == null) delete record.name
    if (record.replicas == null) delete record.replicas
    await this.datastore.put(keyOf(record.cid, record.reason), new TextEncoder().encode(JSON.stringify(record)))
    if (options.sync !== false) await this.durable.sync()
    return record
  }

  /** The holding of a CID for one reason, if there is one (a single read, no query). */
  async get (cid: CID, reason: HoldReason): Promise<Holding | undefined> {
    try {
      return JSON.parse(new TextDecoder().decode(await this.datastore.get(keyOf(cidKey(cid), reason)))) as Holding
    } catch (err) {
      if ((err as { name?: string }).name === 'NotFoundError') return undefined
      throw err
    }
  }

  /** Makes every holding added so far durable. */
  async sync (): Promise<void> {
    await this.durable.sync()
  }

  /** Every holding of a CID. */
  async of (cid: CID): Promise<Holding[]> {
    return this.query(`${PREFIX}/${cidKey(cid)}/`)
  }

  async all (): Promise<Holding[]> {
    return this.query(`${PREFIX}/`)
  }

  /** Removes the given reasons (default all) for a CID; resolves those removed. */
  async remove (cid: CID, reasons: readonly HoldReason[] = HOLD_REASONS): Promise<Holding[]> {
    const removed = (await this.of(cid)).filter(h => reasons.includes(h.reason))
    for (const h of removed) await this.datastore.delete(keyOf(h.cid, h.reason))
    if (removed.length > 0) await this.durable.sync()
    return removed
  }

  private async query (prefix: string): Promise<Holding[]> {
    const out: Holding[] = []
    for await (const { value } of this.datastore.query({ prefix })) {
      out.push(JSON.parse(new TextDecoder().decode(value)) as Holding)
    }
    return out
  }
}

function keyOf (cid: string, reason: HoldReason): Key {
  return new Key(`${PREFIX}/${cid}/${reason}`)
}
