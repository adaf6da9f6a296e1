/**
 * Reads a V8 .cpuprofile (node --cpu-prof) and says where the CPU went:
 * self time by function + file, and by package, optionally only over a
 * window of the process's life (the profile's timestamps are microseconds
 * of the monotonic clock, the one process.hrtime reads in any process on
 * the machine, so a bench can cut out exactly the span it measured).
 *
 *   node bench/profile-summary.ts FILE.cpuprofile [TOP]   prints the tables
 *
 * Shares are of busy time: every sample but (idle). A sample counts for the
 * time until the next one (as Chrome DevTools counts it).
 */
import fs from 'node:fs/promises'
import { fileURLToPath } from 'node:url'

export interface CpuProfile {
  nodes: Array<{ id: number, callFrame: { functionName: string, url: string, lineNumber: number } }>
  startTime: number
  endTime: number
  samples: number[]
  timeDeltas: number[]
}

export interface ProfileRow {
  name: string
  /** Where it lives: a repo file, `package: file` in node_modules, node:…, or (native). */
  file: string
  selfMs: number
  /** Of busy time, 0..1. */
  share: number
}

export interface ProfileSummary {
  /** Sampled time in the window (ms), and how much of it was not (idle). */
  sampledMs: number
  busyMs: number
  /** The top functions and packages by self time. */
  functions: ProfileRow[]
  packages: Array<{ name: string, selfMs: number, share: number }>
}

export interface SummaryOptions {
  /** Window in profile time (µs of the monotonic clock); default the whole profile. */
  fromUs?: number
  toUs?: number
  /** Rows per table (default 15). */
  top?: number
}

const REPO_ROOT = fileURLToPath(new URL('../', import.meta.url))

export function summarizeProfile (profile: CpuProfile, options: SummaryOptions = {}): ProfileSummary {
  const frames = new Map(profile.nodes.map(n => [n.id, n.callFrame]))
  const from = options.fromUs ?? -Infinity
  const to = options.toUs ?? Infinity
  const byFunction = new Map<string, ProfileRow>()
  const byPackage = new Map<string, number>()
  let sampledUs = 0
  let idleUs = 0
  let t = profile.startTime
  for (let i = 0; i < profile.samples.length; i++) {
    t += profile.timeDeltas[i]
    if (t < from || t > to) continue
    const us = profile.timeDeltas[i + 1] ?? 0
    const frame = frames.get(profile.samples[i])
    if (frame == null) continue
    sampledUs += us
    if (frame.functionName === '(idle)') {
      idleUs += us
      continue
    }
    const { file, pkg } = locate(frame.url)
    // anonymous functions of one file are told apart by their line
    const name = frame.functionName !== '' ? frame.functionName : `(anonymous) line ${frame.lineNumber + 1}`
    const key = `${name}\0${file}`
    const row = byFunction.get(key) ?? { name, file, selfMs: 0, share: 0 }
    row.selfMs += us / 1000
    byFunction.set(key, row)
    const group = frame.url === '' && frame.functionName.startsWith('(') ? frame.functionName : pkg
    byPackage.set(group, (byPackage.get(group) ?? 0) + us / 1000)
  }
  const busyMs = (sampledUs - idleUs) / 1000
  const top = options.top ?? 15
  const share = (ms: number): number => busyMs > 0 ? ms / busyMs : 0
  return {
    sampledMs: sampledUs / 1000,
    busyMs,
    functions: [...byFunction.values()].sort((a, b) => b.selfMs - a.selfMs).slice(0, top).map(r => ({ ...r, share: share(r.selfMs) })),
    packages: [...byPackage].sort((a, b) => b[1] - a[1]).slice(0, top).map(([name, selfMs]) => ({ name, selfMs, share: share(selfMs) }))
  }
}

/** A short place for a script URL, and the package it belongs to. */
function locate (url: string): { file: string, pkg: string } {
  if (url === '') return { file: '(native)', pkg: '(native)' }
  // node:internal/crypto/cipher -> node:crypto
  if (url.startsWith('node:')) return { file: url, pkg: `node:${url.slice(5).replace(/^internal\//, '').replace(/^deps\//, '').split('/')[0]}` }
  if (url.startsWith('wasm://')) return { file: url, pkg: 'wasm' }
  const file = url.startsWith('file://') ? fileURLToPath(url) : url
  const at = file.lastIndexOf('/node_modules/')
  if (at >= 0) {
    const parts = file.slice(at + '/node_modules/'.length).split('/')
    const n = parts[0].startsWith('@') ? 2 : 1
    const pkg = parts.slice(0, n).join('/')
    return { file: `${pkg}: ${parts.slice(n).join('/')}`, pkg }
  }
  if (file.startsWith(REPO_ROOT)) return { file: file.slice(REPO_ROOT.length), pkg: 'shoal' }
  return { file, pkg: file }
}

/** Markdown tables of a summary. */
export function renderProfile (s: ProfileSummary): string[] {
  const pct = (x: number): string => `${(x * 100).toFixed(1)}%`
  return [
    '| self time | % of busy | function | where |',
    '| ---: | ---: | --- | --- |',
    ...s.functions.map(r => `| ${Math.round(r.selfMs)} ms | ${pct(r.share)} | \`${r.name}\` | ${r.file} |`),
    '',
    '| package | self time | % of busy |',
    '| --- | ---: | ---: |',
    ...s.packages.map(p => `| ${p.name} | ${Math.round(p.selfMs)} ms | ${pct(p.share)} |`)
  ]
}

if (import.meta.main === true) {
  const [file, top] = process.argv.slice(2)
  if (file == null) throw new Error('usage: profile-summary.ts FILE.cpuprofile [TOP]')
  const summary = summarizeProfile(JSON.parse(await fs.readFile(file, 'utf8')) as CpuProfile, { top: top != null ? Number(top) : undefined })
  process.stdout.write(`busy ${Math.round(summary.busyMs)} ms of ${Math.round(summary.sampledMs)} ms sampled\n\n`)
  process.stdout.write(renderProfile(summary).join('\n') + '\n')
}
