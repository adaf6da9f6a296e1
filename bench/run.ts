/**
 * `npm run bench`: runs the benchmarks and writes bench/results/*.json and
 * the generated part of docs/benchmarks.md. Not a test: figures are measured
 * here, never asserted.
 *
 *   SHOAL_BENCH=swarm,import,placement,cli,fetch,lab,overlay,scale,failure   suites to run (default: all; lab needs root)
 *   SHOAL_BENCH_SIZES=10,50,100   `swarm up` sizes (its default process layout)
 *   SHOAL_BENCH_INPROC=10,50      in-process swarm sizes
 *   SHOAL_BENCH_IMPORT_MIB=1024, SHOAL_BENCH_IMPORT_RUNS=3   import file size, runs
 *   SHOAL_BENCH_PLACE_MIB=64,256  files shared in the placement swarm
 *   SHOAL_BENCH_FETCH_MIB=256     file fetched (and sent over the raw-stream ceiling)
 *   SHOAL_BENCH_FETCH_HOLDERS=1,2,4   holder counts fetched from
 *   SHOAL_BENCH_FETCH_RUNS=5      runs per figure (medians), after one unmeasured warm-up fetch
 *   SHOAL_BENCH_FETCH_RSS_MIB=1024   file of the fetcher-memory run (0: skip it)
 *   SHOAL_BENCH_FETCH_SLOW_RATE=2MiB   transfer.maxUploadRate of the capped holder
 *   SHOAL_BENCH_FETCH_SMALL_MIB=1,16   small files fetched from one holder (latency)
 *   SHOAL_BENCH_CLI_RUNS=15       runs per client command (medians)
 *   SHOAL_BENCH_LAB_*             the lab suite's settings (bench/lab.ts)
 *   SHOAL_BENCH_OVERLAY_*         the overlay suite's settings (bench/overlay.ts)
 *   SHOAL_BENCH_SCALE_*           the scale suite's settings (bench/scale.ts)
 *   SHOAL_BENCH_FAILURE_*         the failure suite's settings (bench/failure.ts)
 *   SHOAL_BENCH_REPLOT=1          run nothing: redraw the sections and plots of
 *                                 the selected suites from bench/results/<suite>.json
 * Each suite writes bench/results/<suite>.json, its own section of
 * docs/benchmarks.md and its plots (docs/plots/*.svg, drawn from the same
 * results), so one suite can be rerun alone.
 */
import fs from 'node:fs/promises'
import os from 'node:os'
import { benchCli, renderCli } from './cli.ts'
import { benchFailure, plotFailure, renderFailure } from './failure.ts'
import { benchFetch, plotFetch, renderFetch } from './fetch.ts'
import { benchImport, plotImport, renderImport } from './import.ts'
import { benchLab, plotLabAggregation, renderLab } from './lab.ts'
import { benchOverlay, plotOverlayHops, renderOverlay } from './overlay.ts'
import { benchPlacement, renderPlacement } from './placement.ts'
import { benchScale, plotScaleMessages, renderScale } from './scale.ts'
import { benchSwarm, plotLookupHops, plotLookupLatency, renderSwarm } from './swarm.ts'

const log = (s: string): void => { process.stderr.write(s + '\n') }

interface Machine { cpus: number, cpuModel: string, memGiB: number, node: string, date: string }

/** A suite: runs, and draws its section of docs/benchmarks.md and its plots from the results. */
interface Suite<R> {
  run (log: (s: string) => void): Promise<R>
  render (r: R): string[]
  /** File names under docs/plots/ and their SVG. */
  plots? (r: R): Record<string, string>
}

const suites: Record<string, Suite<unknown>> = {
  swarm: {
    run: benchSwarm,
    render: renderSwarm,
    plots: r => ({ 'lookup-latency.svg': plotLookupLatency(r), 'lookup-hops.svg': plotLookupHops(r) })
  } satisfies Suite<Awaited<ReturnType<typeof benchSwarm>>>,
  import: {
    run: benchImport,
    render: renderImport,
    plots: r => ({ 'import-throughput.svg': plotImport(r) })
  } satisfies Suite<Awaited<ReturnType<typeof benchImport>>>,
  placement: {
    run: benchPlacement,
    render: renderPlacement
  } satisfies Suite<Awaited<ReturnType<typeof benchPlacement>>>,
  cli: {
    run: benchCli,
    render: renderCli
  } satisfies Suite<Awaited<ReturnType<typeof benchCli>>>,
  fetch: {
    run: benchFetch,
    render: renderFetch,
    plots: r => ({ 'fetch-throughput.svg': plotFetch(r) })
  } satisfies Suite<Awaited<ReturnType<typeof benchFetch>>>,
  lab: {
    run: benchLab,
    render: renderLab,
    plots: r => ({ 'lab-aggregation.svg': plotLabAggregation(r) })
  } satisfies Suite<Awaited<ReturnType<typeof benchLab>>>,
  overlay: {
    run: benchOverlay,
    render: renderOverlay,
    plots: r => ({ 'overlay-hops.svg': plotOverlayHops(r) })
  } satisfies Suite<Awaited<ReturnType<typeof benchOverlay>>>,
  scale: {
    run: benchScale,
    render: renderScale,
    plots: r => ({ 'scale-messages.svg': plotScaleMessages(r) })
  } satisfies Suite<Awaited<ReturnType<typeof benchScale>>>,
  failure: {
    run: benchFailure,
    render: renderFailure,
    plots: r => ({ 'failure-lookups.svg': plotFailure(r) })
  } satisfies Suite<Awaited<ReturnType<typeof benchFailure>>>
}

const replot = process.env.SHOAL_BENCH_REPLOT === '1'
const selected = (process.env.SHOAL_BENCH ?? Object.keys(suites).join(',')).split(',').map(s => s.trim()).filter(s => s !== '')
for (const name of selected) {
  if (suites[name] == null) throw new Error(`unknown benchmark suite "${name}" (known: ${Object.keys(suites).join(', ')})`)
}
const resultsUrl = (name: string): URL => new URL(`./results/${name}.json`, import.meta.url)
const docUrl = new URL('../docs/benchmarks.md', import.meta.url)
const plotsUrl = new URL('../docs/plots/', import.meta.url)

const machine: Machine = { cpus: os.cpus().length, cpuModel: os.cpus()[0]?.model ?? 'unknown', memGiB: Math.round(os.totalmem() / 2 ** 30), node: process.version, date: new Date().toISOString() }
if (!replot) log(`benchmarks on ${machine.cpus} x ${machine.cpuModel}, Node ${machine.node}`)
await fs.mkdir(new URL('./results/', import.meta.url), { recursive: true })
await fs.mkdir(plotsUrl, { recursive: true })
for (const name of selected) {
  const suite = suites[name]
  let results: unknown
  let measuredOn = machine
  if (replot) {
    // the results and the machine they were measured on, as the last run wrote them
    const { machine: stored, ...rest } = JSON.parse(await fs.readFile(resultsUrl(name), 'utf8')) as { machine: Machine }
    results = rest
    measuredOn = stored
  } else {
    log(name)
    results = await suite.run(log)
    await fs.writeFile(resultsUrl(name), JSON.stringify({ machine, ...(results as object) }, null, 2) + '\n')
  }
  const plots = Object.entries(suite.plots?.(results) ?? {})
  for (const [file, svg] of plots) await fs.writeFile(new URL(file, plotsUrl), svg)
  // each suite owns one generated section of docs/benchmarks.md
  const begin = `<!-- generated by npm run bench (${name}): do not edit by hand -->`
  const end = `<!-- end generated (${name}) -->`
  const section = [begin, `Measured ${measuredOn.date.slice(0, 10)} on ${measuredOn.cpus} x ${measuredOn.cpuModel}, ${measuredOn.memGiB} GiB, Node ${measuredOn.node}.`, '', ...suite.render(results), end].join('\n')
  const doc = await fs.readFile(docUrl, 'utf8').catch(() => '')
  const b = doc.indexOf(begin)
  const e = doc.indexOf(end)
  await fs.writeFile(docUrl, b >= 0 && e > b ? doc.slice(0, b) + section + doc.slice(e + end.length) : doc.trimEnd() + '\n\n' + section + '\n')
  log(`${replot ? 'redrew' : `wrote bench/results/${name}.json and`} its section of docs/benchmarks.md${plots.length > 0 ? ` and ${plots.map(([file]) => `docs/plots/${file}`).join(', ')}` : ''}`)
}
