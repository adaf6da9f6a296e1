/** Small file-system helpers shared by the store, the repo and the CLI. */

/** True when `err` is a Node system error with this code (ENOENT, EACCES...). */
export function isCode (err: unknown, code: string): boolean {
  return (err as { code?: string } | null)?.code === code
}
