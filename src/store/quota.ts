/**
 * The store's quotas in bytes: the user's (what this peer shares and
 * fetches) and the replicas' (what other peers place here), each explicit
 * or "auto", a share of the disk.
 */
import fs from 'node:fs/promises'
import { parseByteSize } from '../utils/bytes.ts'

/** A quota as configured: bytes, a size such as "10GiB", or "auto". */
export type QuotaSetting = number | string

/** Of the disk (stored + free bytes), what "auto" gives the user's quota, and the replicas'. */
export const USER_AUTO_SHARE = 1 / 2
export const REPLICA_AUTO_SHARE = 1 / 4

/** A quota in bytes: explicit, or "auto" = `share` of (stored + free disk), half by default. */
export async function resolveQuota (quota: QuotaSetting, dir: string, storedBytes: number, share = USER_AUTO_SHARE): Promise<number> {
  if (typeof quota === 'number') return quota
  if (quota !== 'auto') return parseByteSize(quota) ?? 0
  const stat = await fs.statfs(dir)
  return Math.floor((storedBytes + stat.bavail * stat.bsize) * share)
}

/** Replica holdings removed: their bytes no longer count against the replica quota. */
export function replicasGone (blockstore: { replicaBytes: number }, removed: Array<{ reason: string, size: number }>): void {
  for (const h of removed) if (h.reason === 'replica') blockstore.replicaBytes = Math.max(0, blockstore.replicaBytes - h.size)
}
