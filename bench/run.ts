/**
 * `npm run bench`: runs the benchmarks and writes bench/results/*.json and
 * the generated part of docs/benchmarks.md. Not a test: figures are measured
 * here, never asserted.
 *
 *   SHOAL_BENCH=swarm,import,placement,fetch   suites to run (default: all)
 *   SHOAL_BENCH_SIZES=10,50,100   `swarm up` sizes (its default process layout)
 *   SHOAL_BENCH_INPROC=10,50      in-process swarm sizes
 *   SHOAL_BENCH_IMPORT_MIB=1024, SHOAL_BENCH_IMPORT_RUNS=3   import file size, runs
 *   SHOAL_BENCH_PLACE_MIB=64,256  files shared in the placement swarm
 *   SHOAL_BENCH_FETCH_MIB=256     file fetched (and sent over the raw-stream ceiling)
 *   SHOAL_BENCH_FETCH_HOLDERS=1,2,4   holder counts fetched from
 *   SHOAL_BENCH_FETCH_RUNS=3      runs per figure (medians)
 *   SHOAL_BENCH_FETCH_RSS_MIB=1024   file of the fetcher-memory run (0: skip it)
 *   SHOAL_BENCH_FETCH_SLOW_RATE=2MiB   transfer.maxUploadRate of the capped holder
 * Each suite writes bench/results/<suite>.json and its own section of
 * docs/benchmarks.md, so one suite can be rerun alone.
 */
import fs from 'node:fs/promises'
import os from 'node:os'
import { benchFetch, plotFetch, renderFetch } from './fetch.ts'
import { benchImport, renderImport } from './import.ts'
import { benchPlacement, renderPlacement } from './placement.ts'
import { benchInProcessSwarm, benchProcessSwarm, type InProcessSwarmResult, type ProcessSwarmResult } from './swarm.ts'

const sizes = (name: string, fallback: string): number[] => (process.env[name] ?? fallback).split(',').map(Number).filter(n => n > 0)
const log = (s: string): void => { process.stderr.write(s + '\n') }

const machine = { cpus: os.cpus().length, cpuModel: os.cpus()[0]?.model ?? 'unknown', memGiB: Math.round(os.totalmem() / 2 ** 30), node: process.version, date: new Date().toISOString() }
log(`benchmarks on ${machine.cpus} x ${machine.cpuModel}, Node ${machine.node}`)

/** A suite: runs, returns its JSON results and the markdown lines of its section. */
interface Suite {
  run: () => Promise<{ results: unknown, lines: string[] }>
}

const suites: Record<string, Suite> = {
  swarm: {
    run: async () => {
      const processSwarms: ProcessSwarmResult[] = []
      for (const n of sizes('SHOAL_BENCH_SIZES', '10,50,100')) {
        log(`process swarm of ${n}`)
        processSwarms.push(await benchProcessSwarm(n, log))
      }
      const inProcess: InProcessSwarmResult[] = []
      for (const n of sizes('SHOAL_BENCH_INPROC', '10,50')) {
        log(`in-process swarm of ${n}`)
        inProcess.push(await benchInProcessSwarm(n, log))
      }
      return {
        results: { processSwarms, inProcess },
        lines: [
          '### `shoal swarm up` (as it runs by default: one daemon per peer up to 20 peers, else ~one host process per core)',
          '',
          '| peers | processes | routable in (s) | CPU-s per peer | RSS per peer (MiB) | connections per peer | routing table per peer | lookup p50 (ms) | lookup p95 (ms) | hops p50 | hops max | log2 N | top-3 exact |',
          '| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
          ...processSwarms.map(r => r.routableSeconds == null
            ? `| ${r.peers} | - | not routable in ${r.timeoutSeconds} s | - | - | - | - | - | - | - | - | ${r.log2N} | - |`
            : `| ${r.peers} | ${r.processes} | ${r.routableSeconds} | ${r.cpuSecondsPerPeer} | ${r.rssPerPeerMiB} | ${r.connectionsPerPeer} | ${r.routingTablePerPeer} | ${r.lookupMsP50} | ${r.lookupMsP95} | ${r.hopsP50} | ${r.hopsMax} | ${r.log2N} | ${Math.round((r.top3Exact ?? 0) * 100)}% |`),
          '',
          '### In-process swarm (`createTestSwarm`, all peers on one event loop)',
          '',
          '| peers | routable in (s) | RSS per peer (MiB) |',
          '| ---: | ---: | ---: |',
          ...inProcess.map(r => `| ${r.peers} | ${r.routableSeconds} | ${r.rssPerPeerMiB} |`)
        ]
      }
    }
  },
  import: {
    run: async () => {
      log('import')
      const result = await benchImport(log)
      return { results: result, lines: renderImport(result) }
    }
  },
  placement: {
    run: async () => {
      log('placement')
      const result = await benchPlacement(log)
      return { results: result, lines: renderPlacement(result) }
    }
  },
  fetch: {
    run: async () => {
      log('fetch')
      const result = await benchFetch(log)
      const plots = new URL('../docs/plots/', import.meta.url)
      await fs.mkdir(plots, { recursive: true })
      await fs.writeFile(new URL('fetch-throughput.svg', plots), plotFetch(result))
      return { results: result, lines: renderFetch(result) }
    }
  }
}

const selected = (process.env.SHOAL_BENCH ?? Object.keys(suites).join(',')).split(',').map(s => s.trim()).filter(s => s !== '')
for (const name of selected) {
  if (suites[name] == null) throw new Error(`unknown benchmark suite "${name}" (known: ${Object.keys(suites).join(', ')})`)
}
await fs.mkdir(new URL('./results/', import.meta.url), { recursive: true })
const docUrl = new URL('../docs/benchmarks.md', import.meta.url)
for (const name of selected) {
  const { results, lines } = await suites[name].run()
  await fs.writeFile(new URL(`./results/${name}.json`, import.meta.url), JSON.stringify({ machine, ...(results as object) }, null, 2) + '\n')
  // each suite owns one generated section of docs/benchmarks.md
  const begin = `<!-- generated by npm run bench (${name}): do not edit by hand -->`
  const end = `<!-- end generated (${name}) -->`
  const section = [begin, `Measured ${machine.date.slice(0, 10)} on ${machine.cpus} x ${machine.cpuModel}, ${machine.memGiB} GiB, Node ${machine.node}.`, '', ...lines, end].join('\n')
  const doc = await fs.readFile(docUrl, 'utf8').catch(() => '')
  const b = doc.indexOf(begin)
  const e = doc.indexOf(end)
  await fs.writeFile(docUrl, b >= 0 && e > b ? doc.slice(0, b) + section + doc.slice(e + end.length) : doc.trimEnd() + '\n\n' + section + '\n')
  log(`wrote bench/results/${name}.json and its section of docs/benchmarks.md`)
}
