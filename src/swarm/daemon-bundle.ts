/**
 * The daemon entry that local swarms spawn, bundled into one file.
 *
 * Why: every daemon process of a swarm loads libp2p and its few hundred ES
 * modules and strips the types of ours; one minified bundle with Node's
 * compile cache loads in a fraction of that CPU (docs/benchmarks.md), and a
 * swarm starts many of them at once. The bundle is rebuilt (esbuild, well under a second) whenever a
 * source file is newer than it, so a swarm never runs stale code. Without
 * esbuild the swarm falls back to the .ts entry.
 */
import { createHash } from 'node:crypto'
import fs from 'node:fs/promises'
import path from 'node:path'
import { fileURLToPath } from 'node:url'

const ROOT = fileURLToPath(new URL('../../', import.meta.url))
export const TS_ENTRY = path.join(ROOT, 'bin', 'shoal.mjs')
/**
 * Inside node_modules so the bundle resolves its native external
 * (classic-level); one folder per checkout, since git worktrees may share
 * one node_modules and must never run each other's bundle.
 */
const CACHE_DIR = path.join(ROOT, 'node_modules', '.cache', 'shoal', createHash('sha256').update(ROOT).digest('hex').slice(0, 12))
const BUNDLE = path.join(CACHE_DIR, 'shoal.mjs')

export interface DaemonEntry {
  /** Script to run with process.execPath. */
  script: string
  /** Environment additions (the compile cache). */
  env: Record<string, string>
}

/**
 * Read when a process starts, so they go in the environment of every daemon
 * (and of the benchmarks' raw-stream processes, which measure the same
 * stack the same way):
 *  - UV_USE_IO_URING=0: libuv's io_uring path copies file data on the main
 *    thread, where an import also runs; the thread pool copies it on other
 *    cores (docs/benchmarks.md, Import).
 *  - glibc.malloc.hugetlb=1: malloc asks for transparent huge pages. Every
 *    block, Noise frame and socket read is fresh memory, and on a VM each
 *    4 KiB page faulted in is costly: huge pages fault in 512 at once
 *    (docs/benchmarks.md, Fetch). Ignored where glibc is older than 2.35,
 *    or not glibc.
 */
export const DAEMON_ENV: Record<string, string> = {
  UV_USE_IO_URING: '0',
  // ours first: glibc takes a tunable's last value, so a user's own setting wins
  GLIBC_TUNABLES: ['glibc.malloc.hugetlb=1', process.env.GLIBC_TUNABLES].filter(t => t != null && t !== '').join(':')
}

export async function daemonEntry (): Promise<DaemonEntry> {
  try {
    if (await isStale()) await build()
    return { script: BUNDLE, env: { ...DAEMON_ENV, NODE_COMPILE_CACHE: path.join(CACHE_DIR, '..', 'compile-cache') } }
  } catch {
    return { script: TS_ENTRY, env: { ...DAEMON_ENV } }
  }
}

async function isStale (): Promise<boolean> {
  const built = await fs.stat(BUNDLE).then(s => s.mtimeMs, () => 0)
  if (built === 0) return true
  for (const dir of ['src', 'bin']) {
    for (const file of await fs.readdir(path.join(ROOT, dir), { recursive: true })) {
      if ((await fs.stat(path.join(ROOT, dir, file))).mtimeMs > built) return true
    }
  }
  return false
}

async function build (): Promise<void> {
  const esbuild = await import('esbuild')
  await fs.mkdir(CACHE_DIR, { recursive: true })
  const tmp = `${BUNDLE}.${process.pid}.tmp`
  await esbuild.build({
    entryPoints: [TS_ENTRY],
    outfile: tmp,
    bundle: true,
    // whitespace and syntax only: function names stay, so a CPU profile or
    // a stack trace of a swarm's host reads as the source does
    minifyWhitespace: true,
    minifySyntax: true,
    platform: 'node',
    format: 'esm',
    target: 'node22',
    // native addon: loaded from node_modules at run time
    external: ['classic-level'],
    // some bundled CommonJS dependencies call require()
    banner: { js: "import { createRequire as __shoalRequire } from 'node:module'; const require = __shoalRequire(import.meta.url);" },
    logLevel: 'silent'
  })
  // wire schemas are read at run time beside the module that loads them
  // (src/wire/*.proto, src/routing/chord/chord.proto), which in the bundle
  // is the bundle itself: every .proto under src/ goes beside it
  const src = path.join(ROOT, 'src')
  for (const file of await fs.readdir(src, { recursive: true })) {
    if (!file.endsWith('.proto')) continue
    const name = path.basename(file)
    const copy = path.join(CACHE_DIR, `${name}.${process.pid}.tmp`)
    await fs.copyFile(path.join(src, file), copy)
    await fs.rename(copy, path.join(CACHE_DIR, name))
  }
  // rename: concurrent swarms never see a half-written bundle
  await fs.rename(tmp, BUNDLE)
}
