import path from 'node:path'

/**
 * The repo folder: `--repo`, else SHOAL_REPO, else ~/.shoal. Its own module
 * so the CLI finds a repo without loading libp2p's key code (repo.ts).
 */
export function resolveRepoPath (flag?: string): string {
  const home = process.env.HOME ?? process.env.USERPROFILE ?? '.'
  return path.resolve(flag ?? process.env.SHOAL_REPO ?? path.join(home, '.shoal'))
}
