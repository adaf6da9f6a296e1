#!/usr/bin/env node
// Thin entry: the CLI lives in src/cli. The compile cache makes repeated
// starts (one per daemon in a local swarm) skip re-stripping the TypeScript.
// Plain JavaScript on purpose: a .ts entry is stripped before the cache is
// on, which loads Node's TypeScript stripper (~0.1 s) on every start
// (what start-up costs now: src/cli/index.ts).
import module from 'node:module'
// Node strips the CLI's TypeScript itself from 23.6 on; the project pins 26
// (the npm package `node`, which bin/shoal and npm scripts run)
if (Number(process.versions.node.split('.')[0]) < 24) {
  process.stderr.write(`shoal: needs Node 26, the one this checkout pins (this is ${process.version}): run bin/shoal, or shoal after npm link\n`)
  process.exit(1)
}
module.enableCompileCache?.()
// Blocks are written (and fsynced) on libuv's thread pool: 4 threads leave
// an import waiting on fsyncs; 16 measured ~1.7x faster with storage.sync on.
// Set before anything uses the pool (it starts on first use).
process.env.UV_THREADPOOL_SIZE ??= '16'
const { main } = await import('../src/cli/index.ts')
process.exitCode = await main(process.argv.slice(2))
