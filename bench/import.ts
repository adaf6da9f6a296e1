/**
 * Content benchmark: `shoal share` of a 1 GiB file through a real daemon,
 * next to the ceilings measured in the same run:
 *  - sha2-256 in one process (node:crypto, 1 MiB updates): the CPU ceiling;
 *  - the disk's own durable write speed (1 GiB sequential, then fsync): the
 *    ceiling of any import that fsyncs its blocks (storage.sync = true);
 *  - Helia's `addByteStream` (its default settings, the same CID) into
 *    blockstore-fs, Helia's file blockstore (which does not fsync), in this
 *    process.
 * For each storage.sync setting one daemon is started on a fresh repo: its
 * first import is reported on its own (a fresh process's memory is all new,
 * and on this VM new pages are costly), then the file is removed (`rm`
 * collects its blocks) and imported again SHOAL_BENCH_IMPORT_RUNS times
 * (default 3; medians), every block written anew each time, as a running
 * daemon imports. The daemon's peak RSS (VmHWM) and the CPU time it spent
 * on each import are read.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { createHash, randomBytes } from 'node:crypto'
import { createReadStream } from 'node:fs'
import fs from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { unixfs } from '@helia/unixfs'
import { FsBlockstore } from 'blockstore-fs'
import { fixedSize } from 'ipfs-unixfs-importer/chunker'
import { ApiClient } from '../src/api/client.ts'
import { daemonEntry } from '../src/swarm/daemon-bundle.ts'
import { cpuSecondsOf, median, procStatusKiB, round } from './stats.ts'
import { svgPlot } from './svg-plot.ts'

const MiB = 1024 * 1024

export interface ImportRun {
  /** Wall time of `share` as the client sees it (import + placement, here with no peers). */
  seconds: number
  /** The daemon's own import time: read, chunk, hash, write, commit. */
  importSeconds: number
  /** CPU time (user + system, all threads) the daemon spent during the share. */
  cpuSeconds: number
  peakRssMiB: number
}

export interface ImportBenchResult {
  fileMiB: number
  chunkSize: number
  runs: number
  cid: string
  sha256MiBs: number
  diskSyncWriteMiBs: number
  /** `first`: the fresh daemon's first import (older results: absent, every run was one). */
  shoal: Array<{ sync: boolean, mibs: number, shareMiBs: number, ratioToSha256: number, ratioToDisk: number, cpuSecondsPerGiB: number, peakRssMiB: number, runs: ImportRun[], first?: ImportRun, firstMiBs?: number }>
  helia: { mibs: number, cid: string, sameCid: boolean }
}

export async function benchImport (log: (s: string) => void): Promise<ImportBenchResult> {
  const fileMiB = Number(process.env.SHOAL_BENCH_IMPORT_MIB ?? 1024)
  const runs = Number(process.env.SHOAL_BENCH_IMPORT_RUNS ?? 3)
  const work = await fs.mkdtemp(path.join(os.tmpdir(), 'shoal-bench-import-'))
  try {
    const file = path.join(work, 'input.bin')
    await writeRandomFile(file, fileMiB)
    await readFully(file) // into the page cache, as for every contender

    const sha256MiBs = median(await repeat(runs, async () => hashSpeed(fileMiB)))
    log(`  sha2-256: ${sha256MiBs} MiB/s`)
    const diskSyncWriteMiBs = median(await repeat(runs, async () => diskWriteSpeed(path.join(work, 'disk-test'), fileMiB)))
    log(`  disk, sequential write + fsync: ${diskSyncWriteMiBs} MiB/s`)

    const shoal: ImportBenchResult['shoal'] = []
    let cid = ''
    for (const sync of [true, false]) {
      const logRun = (what: string, run: ImportRun): void => {
        log(`  shoal share, sync=${sync}, ${what}: import ${(fileMiB / run.importSeconds).toFixed(0)} MiB/s, whole share ${(fileMiB / run.seconds).toFixed(0)} MiB/s, daemon ${run.cpuSeconds.toFixed(2)} CPU-s, peak RSS ${run.peakRssMiB} MiB`)
      }
      const { first, results, cid: imported } = await shoalImports(work, file, sync, runs, logRun)
      cid = imported
      const mibs = round(fileMiB / median(results.map(r => r.importSeconds)), 0)
      const shareMiBs = round(fileMiB / median(results.map(r => r.seconds)), 0)
      shoal.push({
        sync,
        mibs,
        shareMiBs,
        ratioToSha256: round(mibs / sha256MiBs, 2),
        ratioToDisk: round(mibs / diskSyncWriteMiBs, 2),
        cpuSecondsPerGiB: round(median(results.map(r => r.cpuSeconds)) * 1024 / fileMiB, 2),
        peakRssMiB: Math.max(first.peakRssMiB, ...results.map(r => r.peakRssMiB)),
        runs: results,
        first,
        firstMiBs: round(fileMiB / first.importSeconds, 0)
      })
    }

    const heliaRuns: number[] = []
    flushDirtyPages()
    let heliaCid = ''
    for (let i = 0; i < runs; i++) {
      const dir = path.join(work, `helia-${i}`)
      const blockstore = new FsBlockstore(dir)
      await blockstore.open()
      flushDirtyPages()
      const started = performance.now()
      const root = await unixfs({ blockstore }).addByteStream(createReadStream(file, { highWaterMark: MiB }), { chunker: fixedSize({ chunkSize: MiB }) })
      heliaRuns.push((performance.now() - started) / 1000)
      heliaCid = root.toString()
      await blockstore.close()
      await fs.rm(dir, { recursive: true, force: true })
      log(`  helia addByteStream into blockstore-fs: ${(fileMiB / heliaRuns[i]).toFixed(0)} MiB/s`)
    }
    return {
      fileMiB,
      chunkSize: MiB,
      runs,
      cid,
      sha256MiBs,
      diskSyncWriteMiBs,
      shoal,
      helia: { mibs: round(fileMiB / median(heliaRuns), 0), cid: heliaCid, sameCid: heliaCid === cid }
    }
  } finally {
    await fs.rm(work, { recursive: true, force: true })
  }
}

/** The markdown table for docs/benchmarks.md. */
export function renderImport (r: ImportBenchResult): string[] {
  return [
    `### Import (\`shoal share\` of a ${r.fileMiB} MiB file, ${r.chunkSize / MiB} MiB chunks, median of ${r.runs})`,
    '',
    `Ceilings in the same run: sha2-256 **${r.sha256MiBs} MiB/s**; the disk's sequential write with fsync **${r.diskSyncWriteMiBs} MiB/s**.`,
    '',
    '![import MiB/s, storage.sync on and off and Helia, against sha2-256 speed and the targets](plots/import-throughput.svg)',
    '',
    'Import MiB/s is the daemon\'s own import time (read, chunk, hash, write, commit), median of the running daemon\'s imports; "first import" is the same daemon\'s first, right after it started; "whole share" is what the client waits for, including the API call and placement (no peers here). CPU-s per GiB: user + system time of all the daemon\'s threads during the share.',
    '',
    '| import | MiB/s | / sha2-256 | / disk+fsync | first import of a fresh daemon, MiB/s | whole share MiB/s | daemon CPU-s per GiB | peak RSS of the daemon (MiB) |',
    '| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
    ...r.shoal.map(s => `| Shoal, storage.sync = ${s.sync}${s.sync ? ' (default: every block fsynced)' : ''} | ${s.mibs} | ${s.ratioToSha256} | ${s.ratioToDisk} | ${s.firstMiBs ?? '-'} | ${s.shareMiBs} | ${s.cpuSecondsPerGiB ?? '-'} | ${s.peakRssMiB} |`),
    `| Helia addByteStream into blockstore-fs (no fsync), in-process | ${r.helia.mibs} | ${round(r.helia.mibs / r.sha256MiBs, 2)} | ${round(r.helia.mibs / r.diskSyncWriteMiBs, 2)} | - | - | - | - |`,
    '',
    `Same root CID from Shoal and Helia: ${r.helia.sameCid ? 'yes' : 'NO'} (\`${r.cid}\`).`
  ]
}

/** docs/plots/import-throughput.svg: import MiB/s next to the sha2-256 speed and the disk ceiling of the same run, with the targets. */
export function plotImport (r: ImportBenchResult): string {
  const shoal = (sync: boolean): ImportBenchResult['shoal'] => r.shoal.filter(s => s.sync === sync)
  return svgPlot({
    title: `Import of a ${r.fileMiB} MiB file (${r.chunkSize / MiB} MiB chunks, median of ${r.runs})`,
    xLabel: 'file imported (MiB)',
    yLabel: 'MiB/s',
    xScale: 'category',
    // room right of the bars for the reference lines' labels
    width: 760,
    series: [
      { name: 'Shoal, sync on (default)', kind: 'bar', points: shoal(true).map(s => ({ x: r.fileMiB, y: s.mibs })) },
      { name: 'Shoal, sync off', kind: 'bar', color: '#2ca02c', points: shoal(false).map(s => ({ x: r.fileMiB, y: s.mibs })) },
      ...(r.helia != null ? [{ name: 'Helia (no fsync)', kind: 'bar' as const, color: '#7f7f7f', points: [{ x: r.fileMiB, y: r.helia.mibs }] }] : [])
    ],
    references: [
      { y: r.sha256MiBs, label: 'sha2-256, same run', color: '#d62728', dashed: false },
      { y: r.diskSyncWriteMiBs, label: 'disk write + fsync, same run', color: '#9467bd' },
      { y: round(r.sha256MiBs * 0.6, 0), label: 'PRODUCT.md target: 0.6 of sha2-256' },
      { y: round(r.sha256MiBs * 0.5, 0), label: "the issue's target: 0.5 of sha2-256" }
    ]
  })
}

/**
 * One daemon on a fresh repo with `storage.sync` set: its first import of
 * `file`, then `runs` more, each after the last was removed (`rm`, which
 * collects what nothing else holds), so every block is written anew.
 */
async function shoalImports (work: string, file: string, sync: boolean, runs: number, log: (what: string, run: ImportRun) => void): Promise<{ first: ImportRun, results: ImportRun[], cid: string }> {
  const repo = path.join(work, `repo-${sync}`)
  const entry = await daemonEntry()
  await run(entry.script, ['--repo', repo, 'init'], entry.env)
  const configFile = path.join(repo, 'config.json')
  const config = JSON.parse(await fs.readFile(configFile, 'utf8'))
  await fs.writeFile(configFile, JSON.stringify({ ...config, storage: { ...config.storage, sync } }))
  const daemon = spawn(process.execPath, [entry.script, '--repo', repo, 'daemon', '--listen', '/ip4/127.0.0.1/tcp/0', '--api', '127.0.0.1:0'], {
    env: { ...process.env, ...entry.env }, stdio: ['ignore', 'pipe', 'inherit']
  })
  try {
    await waitForReady(daemon)
    const client = await ApiClient.fromRepo(repo)
    let cid = ''
    const once = async (): Promise<ImportRun> => {
      flushDirtyPages()
      const cpuBefore = cpuSecondsOf(daemon.pid!)
      const started = performance.now()
      const result = await client.share({ path: file })
      const seconds = (performance.now() - started) / 1000
      const measured = { seconds, importSeconds: result.placement.importMs / 1000, cpuSeconds: cpuSecondsOf(daemon.pid!) - cpuBefore, peakRssMiB: round(procStatusKiB(daemon.pid!, 'VmHWM') / 1024, 0) }
      cid = result.cid
      // the next import must write every block again (rm collects what nothing else holds)
      const { freed } = await client.remove(cid)
      if (freed.blocks === 0) throw new Error('rm freed no block: the next import would find them all here')
      return measured
    }
    const first = await once()
    log('first import', first)
    const results: ImportRun[] = []
    for (let i = 0; i < runs; i++) {
      results.push(await once())
      log(`import ${i + 1}`, results[i])
    }
    return { first, results, cid }
  } finally {
    daemon.kill('SIGTERM')
    await new Promise(resolve => daemon.once('exit', resolve))
    await fs.rm(repo, { recursive: true, force: true })
  }
}

/** sync(1): the previous run's writeback must not slow this one down. */
function flushDirtyPages (): void {
  spawnSync('sync')
}

async function waitForReady (child: ChildProcess): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    let out = ''
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString()
      if (out.includes('daemon is ready')) resolve()
    })
    child.once('exit', code => { reject(new Error(`daemon exited (${code}) before it was ready: ${out}`)) })
  })
}

async function run (script: string, args: string[], env: Record<string, string>): Promise<void> {
  const child = spawn(process.execPath, [script, ...args], { env: { ...process.env, ...env }, stdio: 'ignore' })
  const code = await new Promise(resolve => child.once('exit', resolve))
  if (code !== 0) throw new Error(`${args.join(' ')} exited ${code}`)
}

async function writeRandomFile (file: string, mib: number): Promise<void> {
  const handle = await fs.open(file, 'w')
  const block = randomBytes(16 * MiB)
  try {
    for (let i = 0; i < mib; i += 16) {
      // vary each 16 MiB so no two chunks are equal (no dedup shortcut)
      block.writeUInt32LE(i, 0)
      for (let off = MiB; off < block.length; off += MiB) block.writeUInt32LE(i * 16 + off / MiB, off)
      await handle.write(block.subarray(0, Math.min(16, mib - i) * MiB))
    }
  } finally {
    await handle.close()
  }
}

async function readFully (file: string): Promise<void> {
  for await (const _ of createReadStream(file, { highWaterMark: 4 * MiB })) {}
}

async function hashSpeed (mib: number): Promise<number> {
  const buf = randomBytes(64 * MiB)
  const started = performance.now()
  for (let i = 0; i < mib; i++) {
    const off = (i % 64) * MiB
    createHash('sha256').update(buf.subarray(off, off + MiB)).digest()
  }
  return round(mib / ((performance.now() - started) / 1000), 0)
}

async function diskWriteSpeed (file: string, mib: number): Promise<number> {
  const buf = randomBytes(MiB)
  const started = performance.now()
  const handle = await fs.open(file, 'w')
  try {
    for (let i = 0; i < mib; i++) await handle.write(buf)
    await handle.sync()
  } finally {
    await handle.close()
  }
  const mibs = round(mib / ((performance.now() - started) / 1000), 0)
  await fs.rm(file, { force: true })
  return mibs
}

async function repeat<T> (n: number, fn: () => Promise<T>): Promise<T[]> {
  const out: T[] = []
  for (let i = 0; i < n; i++) out.push(await fn())
  return out
}

// `node bench/import.ts` runs this benchmark alone and prints the table.
if (import.meta.main === true) {
  const result = await benchImport(s => { process.stderr.write(s + '\n') })
  process.stdout.write(renderImport(result).join('\n') + '\n')
}
