/**
 * What the lab's reliability specs do to a running `swarm up --netns`
 * swarm and check on it: files shared and fetched through the peers' APIs,
 * and whether each block is on its true k closest of the whole swarm (XOR
 * over every peer ID), repairing until it is.
 */
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import fs from 'node:fs/promises'
import path from 'node:path'
import type { PeerId } from '@libp2p/interface'
import { CID } from 'multiformats/cid'
import type { ApiClient } from '../../src/api/client.ts'
import { closestByXor } from '../../src/routing/kademlia/kad-distance.ts'

export interface LabChecks {
  /** A new file of random bytes in `dir`. */
  newFile: (bytes: number) => Promise<{ file: string, data: Buffer }>
  /** Fetches `cid` through peer `i` to a new file and returns its bytes. */
  fetchBytes: (i: number, cid: string, timeoutSeconds?: number) => Promise<Buffer>
  /** Of the file's blocks, how many are on their true k closest, as `stat` through peer `via` finds them. */
  onTrueK: (via: number, cid: string) => Promise<{ ok: number, blocks: number }>
  /**
   * Repair passes on every peer at once until every block of each file is
   * on its true k; the passes it took (fails after `maxPasses`).
   */
  repairUntilTrueK: (files: Array<{ via: number, cid: string }>) => Promise<number>
}

export function labChecks (init: { dir: string, clients: ApiClient[], ids: PeerId[], k: number, maxPasses: number }): LabChecks {
  const { dir, clients, ids, k, maxPasses } = init
  const newFile: LabChecks['newFile'] = async (bytes) => {
    const data = randomBytes(bytes)
    const file = path.join(dir, `${randomBytes(4).toString('hex')}.bin`)
    await fs.writeFile(file, data)
    return { file, data }
  }
  const fetchBytes: LabChecks['fetchBytes'] = async (i, cid, timeoutSeconds = 60) => {
    const out = path.join(dir, `out-${randomBytes(4).toString('hex')}.bin`)
    await clients[i].fetch(cid, { path: out, timeoutSeconds })
    return fs.readFile(out)
  }
  const onTrueK: LabChecks['onTrueK'] = async (via, cid) => {
    const stat = await clients[via].stat(cid, k, { timeoutMs: 60_000 })
    const ok = stat.blocks.filter(b => closestByXor(CID.parse(b.cid).multihash.bytes, ids, k).every(id => b.holders.includes(id.toString()))).length
    return { ok, blocks: stat.blocks.length }
  }
  const repairUntilTrueK: LabChecks['repairUntilTrueK'] = async (files) => {
    let state: Array<{ ok: number, blocks: number }> = []
    for (let pass = 1; pass <= maxPasses; pass++) {
      const reports = await Promise.allSettled(clients.map(async c => c.repair({ timeoutMs: 120_000 })))
      const failed = reports.filter(r => r.status === 'rejected')
      assert.deepEqual(failed.map(r => (r as PromiseRejectedResult).reason.message), [], 'every peer ran its repair pass')
      state = await Promise.all(files.map(async f => onTrueK(f.via, f.cid)))
      if (state.every(s => s.ok === s.blocks)) return pass
    }
    assert.fail(`after ${maxPasses} repair passes: ${state.map(s => `${s.ok} of ${s.blocks}`).join(', ')} blocks on their true ${k} closest`)
  }
  return { newFile, fetchBytes, onTrueK, repairUntilTrueK }
}
