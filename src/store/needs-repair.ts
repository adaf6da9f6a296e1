/**
 * Held DAGs found incomplete here (a dag-pb node missing or rotten, a leaf
 * gone), recorded in the datastore under /shoal/needs-repair/<cid> until a
 * fetch of the DAG brings the missing blocks back (its commit clears the
 * record) or a verify finds it whole again. While one is recorded, GC
 * sweeps nothing: what lies under a node it cannot read is unknown.
 * Refetching needs the network, so the store only records and reports;
 * the peer (or the user, with `shoal fetch`) brings the blocks.
 */
import { Key, type Datastore } from 'interface-datastore'
import type { CID } from 'multiformats/cid'
import { cidKey } from '../content/cid.ts'

const PREFIX = '/shoal/needs-repair'

export interface RepairNeed {
  cid: string
  /** Why, in a few words (e.g. "a DAG node is missing or corrupt"). */
  why: string
  /** When it was found (ISO 8601). */
  since: string
}

export class NeedsRepair {
  private readonly datastore: Datastore

  constructor (datastore: Datastore) {
    this.datastore = datastore
  }

  async add (cid: CID | string, why: string): Promise<void> {
    const key = typeof cid === 'string' ? cid : cidKey(cid)
    if (await this.datastore.has(keyOf(key))) return
    const record: RepairNeed = { cid: key, why, since: new Date().toISOString() }
    await this.datastore.put(keyOf(key), new TextEncoder().encode(JSON.stringify(record)))
  }

  async remove (cid: CID | string): Promise<void> {
    const key = typeof cid === 'string' ? cid : cidKey(cid)
    await this.datastore.delete(keyOf(key))
  }

  async all (): Promise<RepairNeed[]> {
    const out: RepairNeed[] = []
    for await (const { value } of this.datastore.query({ prefix: `${PREFIX}/` })) {
      out.push(JSON.parse(new TextDecoder().decode(value)) as RepairNeed)
    }
    return out
  }
}

function keyOf (cid: string): Key {
  return new Key(`${PREFIX}/${cid}`)
}
