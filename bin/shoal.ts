#!/usr/bin/env node
// Thin entry: the CLI lives in src/cli. The compile cache makes repeated
// starts (one per daemon in a local swarm) skip re-stripping the TypeScript.
import module from 'node:module'
module.enableCompileCache?.()
const { main } = await import('../src/cli/index.ts')
process.exitCode = await main(process.argv.slice(2))
