#!/usr/bin/env node
// Thin entry: the CLI lives in src/cli. The compile cache makes repeated
// starts (one per daemon in a local swarm) skip re-stripping the TypeScript.
import module from 'node:module'
module.enableCompileCache?.()
// Blocks are written (and fsynced) on libuv's thread pool: 4 threads leave
// an import waiting on fsyncs; 16 measured ~1.7x faster with storage.sync on.
// Set before anything uses the pool (it starts on first use).
process.env.UV_THREADPOOL_SIZE ??= '16'
// libuv's io_uring path copies file data on the main thread, where the
// import also hashes; the thread pool copies it on other cores. Measured on
// 1 GiB imports: 1.2-1.8 s with the pool against 1.9-2.5 s with io_uring.
process.env.UV_USE_IO_URING ??= '0'
const { main } = await import('../src/cli/index.ts')
process.exitCode = await main(process.argv.slice(2))
