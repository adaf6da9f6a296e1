/** Small file-system helpers shared by the store, the repo and the CLI. */
import fs from 'node:fs/promises'

/** True when `err` is a Node system error with this code (ENOENT, EACCES...). */
export function isCode (err: unknown, code: string): boolean {
  return (err as { code?: string } | null)?.code === code
}

/** fsyncs a folder, so the names written in it are durable. */
export async function syncFolder (folder: string): Promise<void> {
  const handle = await fs.open(folder, 'r')
  try { await handle.sync() } finally { await handle.close() }
}
