/**
 * Content from the command line against a real daemon process: share, ls,
 * cat, get, rm, gc, verify; every kind of bad input; a daemon killed with
 * SIGKILL in the middle of an import restarts with a store that verifies.
 */
import assert from 'node:assert/strict'
import { execFileSync } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import fs from 'node:fs/promises'
import path from 'node:path'
import { ApiClient } from '../../src/api/client.ts'
import { cidKey, cidOf, RAW_CODE } from '../../src/content/cid.ts'
import { waitFor } from '../../src/utils/wait.ts'
import { assertExit, runCli, runCliBytes, startDaemon, tempDir, type CliResult, type DaemonProcess } from '../helpers/cli.ts'

const KiB = 1024
const MiB = 1024 * KiB

describe('content from the CLI', function () {
  this.timeout(120_000)
  let dir: string
  let repo: string
  let daemon: DaemonProcess
  const shoal = async (...args: string[]): ReturnType<typeof runCli> => runCli(['--repo', repo, ...args])
  const json = async <T>(...args: string[]): Promise<T> => {
    const r = await shoal('--json', ...args)
    assertExit(r, 0, r.stderr)
    return JSON.parse(r.stdout) as T
  }
  const oneLine = (stderr: string): string => {
    const lines = stderr.trim().split('\n')
    assert.equal(lines.length, 1, `expected one line, got:\n${stderr}`)
    return lines[0]
  }
  const start = async (): Promise<void> => {
    daemon = await startDaemon(['--repo', repo, '--listen', '/ip4/127.0.0.1/tcp/0', '--api', '127.0.0.1:0'])
    assert.match(daemon.output(), /daemon is ready/, daemon.output())
  }

  before(async () => {
    dir = await tempDir('shoal-content-')
    repo = path.join(dir, 'repo')
    assertExit((await runCli(['--repo', repo, 'init'])), 0)
    await start()
  })
  after(async () => {
    daemon?.child.kill('SIGTERM')
    await daemon?.exited
    await fs.rm(dir, { recursive: true, force: true })
  })

  it('shares a file, lists it, and gives back the exact bytes by cat and get', async () => {
    const data = randomBytes(3 * MiB + 12_345)
    const file = path.join(dir, 'data.bin')
    await fs.writeFile(file, data)
    const shared = await json<{ cid: string, size: number, chunks: number, blocks: number, replicas: { target: number, min: number, complete: boolean } }>('share', file)
    assert.equal(shared.size, data.length)
    assert.equal(shared.chunks, 4)
    assert.equal(shared.blocks, 5)
    // a lone daemon is its own only candidate: one copy of the 3 wanted
    assert.deepEqual(shared.replicas, { target: 3, min: 1, complete: false })
    const chunked = await json<{ cid: string, chunks: number }>('share', file, '--chunk-size', '256KiB', '--replicas', '2')
    assert.equal(chunked.chunks, 13)
    assert.notEqual(chunked.cid, shared.cid)

    const ls = await json<{ holdings: Array<{ cid: string, reason: string, size: number, name: string }>, store: { blocks: number } }>('ls')
    const entry = ls.holdings.find(h => h.cid === shared.cid)
    assert.deepEqual({ reason: entry?.reason, size: entry?.size, name: entry?.name }, { reason: 'shared', size: data.length, name: 'data.bin' })

    const cat = await runCliBytes(['--repo', repo, 'cat', shared.cid])
    assertExit(cat, 0, cat.stderr)
    assert.ok(cat.stdout.equals(data), 'cat gives the exact bytes')

    const out = path.join(dir, 'out.bin')
    const got = await json<{ path: string, size: number }>('get', shared.cid, '-o', out)
    assert.equal(got.path, out)
    assert.ok((await fs.readFile(out)).equals(data))
  })

  it('the API serves a file with HTTP Range: 206 for a range, 416 past the end, HEAD for the size', async () => {
    const data = randomBytes(2 * MiB + 777)
    const file = path.join(dir, 'range.bin')
    await fs.writeFile(file, data)
    const { cid } = await json<{ cid: string }>('share', file)
    const client = await ApiClient.fromRepo(repo)
    const get = async (range?: string, method = 'GET'): Promise<Response> => {
      return fetch(`${client.baseUrl}/api/v1/content/${cid}`, {
        method,
        headers: { authorization: `Bearer ${(await fs.readFile(path.join(repo, 'api.token'), 'utf8')).trim()}`, ...(range != null ? { range } : {}) }
      })
    }
    let res = await get()
    assert.equal(res.status, 200)
    assert.equal(res.headers.get('accept-ranges'), 'bytes')
    assert.ok(Buffer.from(await res.arrayBuffer()).equals(data))
    for (const [header, start, end] of [['bytes=0-0', 0, 0], ['bytes=1048570-1048600', 1048570, 1048600], [`bytes=${MiB * 2}-`, MiB * 2, data.length - 1], ['bytes=-100', data.length - 100, data.length - 1]] as const) {
      res = await get(header)
      assert.equal(res.status, 206, header)
      assert.equal(res.headers.get('content-range'), `bytes ${start}-${end}/${data.length}`)
      assert.ok(Buffer.from(await res.arrayBuffer()).equals(data.subarray(start, end + 1)), header)
    }
    res = await get(`bytes=${data.length}-`)
    assert.equal(res.status, 416)
    assert.equal(res.headers.get('content-range'), `bytes */${data.length}`)
    await res.arrayBuffer()
    res = await get(undefined, 'HEAD')
    assert.equal(res.status, 200)
    assert.equal(res.headers.get('content-length'), String(data.length))
    const ranged = await client.read(cid, { offset: 5, length: 10 })
    assert.ok(Buffer.from(await ranged.arrayBuffer()).equals(data.subarray(5, 15)))
  })

  it('shares an empty file and stdin', async () => {
    const empty = path.join(dir, 'empty')
    await fs.writeFile(empty, '')
    const r = await json<{ cid: string, size: number }>('share', empty)
    assert.equal(r.cid, 'bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku')
    assert.equal(r.size, 0)
    const out = path.join(dir, 'empty.out')
    assertExit((await shoal('get', r.cid, '-o', out)), 0)
    assert.equal((await fs.stat(out)).size, 0)

    const data = randomBytes(MiB + 3)
    const piped = await runCliBytes(['--repo', repo, '--json', 'share', '-'], data)
    assertExit(piped, 0, piped.stderr)
    const fromStdin = JSON.parse(piped.stdout.toString()) as { cid: string, size: number }
    assert.equal(fromStdin.size, data.length)
    const cat = await runCliBytes(['--repo', repo, 'cat', fromStdin.cid])
    assert.ok(cat.stdout.equals(data))

    // a named pipe (as <(cmd) gives): the CLI streams it, the daemon is never handed its path
    const fifo = path.join(dir, 'pipe')
    execFileSync('mkfifo', [fifo])
    const writer = fs.writeFile(fifo, data)
    const viaPipe = await json<{ cid: string, size: number }>('share', fifo)
    await writer
    assert.equal(viaPipe.cid, fromStdin.cid)
    const client = await ApiClient.fromRepo(repo)
    await assert.rejects(client.share({ path: fifo }), { name: 'ApiError', remoteName: 'InvalidPathError', message: `${fifo} is not a regular file: send its bytes as a stream instead` }, 'the daemon refuses a pipe by path instead of blocking on it')
  })

  it('refuses bad input with one line and the right exit code, writing nothing', async () => {
    const file = path.join(dir, 'bad-input.bin')
    await fs.writeFile(file, randomBytes(100_000))
    let r = await shoal('share', path.join(dir, 'missing'))
    assertExit(r, 2)
    assert.match(oneLine(r.stderr), /^shoal: no such file: .*missing$/)
    r = await shoal('share', dir)
    assertExit(r, 2)
    assert.match(oneLine(r.stderr), /is a directory, not a file$/)
    r = await shoal('share', file, '--chunk-size', '1KiB')
    assertExit(r, 2)
    assert.match(r.stderr, /--chunk-size must be a size from 16384 to 4194304/)
    r = await shoal('cat', 'not-a-cid')
    assertExit(r, 2)
    assert.equal(oneLine(r.stderr), 'shoal: malformed CID "not-a-cid"')
    const unknown = 'bafkreie3l3tbq3mqevjbsp6njkfjsfv6tzklf7qr6s3ge6ls4kjd4fgogu'
    for (const cmd of [['cat', unknown], ['get', unknown, '-o', path.join(dir, 'never')], ['rm', unknown]]) {
      r = await shoal(...cmd)
      assertExit(r, 1, cmd.join(' '))
      assert.equal(oneLine(r.stderr), `shoal: ${unknown} is not held by this peer`)
    }
    await assert.rejects(fs.access(path.join(dir, 'never')), { code: 'ENOENT' }, 'no output file for an unknown CID')

    const { cid } = await json<{ cid: string }>('share', file)
    const existing = path.join(dir, 'existing')
    await fs.writeFile(existing, 'keep me')
    r = await shoal('get', cid, '-o', existing)
    assertExit(r, 2)
    assert.match(oneLine(r.stderr), /already exists \(use --force to overwrite\)$/)
    assert.equal(await fs.readFile(existing, 'utf8'), 'keep me')
    assertExit((await shoal('get', cid, '-o', existing, '--force')), 0)
    assert.ok((await fs.readFile(existing)).equals(await fs.readFile(file)))
    const leftovers = (await fs.readdir(dir)).filter(f => f.endsWith('.part'))
    assert.deepEqual(leftovers, [])
  })

  it('cat of a file with a corrupt block stops short and exits 1 naming the file and how far it got', async () => {
    const data = randomBytes(2 * MiB + 5)
    const file = path.join(dir, 'corrupt-me')
    await fs.writeFile(file, data)
    const { cid } = await json<{ cid: string }>('share', file)
    // the second 1 MiB leaf, one byte flipped on disk
    const leaf = cidKey(cidOf(RAW_CODE, data.subarray(MiB, 2 * MiB)))
    const leafFile = (await fs.readdir(path.join(repo, 'blocks'), { recursive: true })).find(f => path.basename(f) === leaf)
    assert.ok(leafFile != null, `block file of ${leaf}`)
    const bytes = await fs.readFile(path.join(repo, 'blocks', leafFile))
    bytes[100] ^= 0xff
    await fs.writeFile(path.join(repo, 'blocks', leafFile), bytes)
    try {
      const cat = await runCliBytes(['--repo', repo, 'cat', cid])
      assertExit(cat, 1)
      const cut = /^shoal: the daemon stopped sending (\S+) after (\d+) of (\d+) bytes \(.*\); a block may be corrupt: run "shoal verify"$/.exec(oneLine(cat.stderr))
      assert.ok(cut != null, cat.stderr)
      assert.deepEqual([cut[1], Number(cut[2]), Number(cut[3])], [cid, cat.stdout.length, data.length])
      assert.ok(cat.stdout.length <= MiB, `${cat.stdout.length} bytes written: nothing past the corrupt block`)
      assert.ok(cat.stdout.equals(data.subarray(0, cat.stdout.length)), 'what was written is the file\'s start')
    } finally {
      // the corrupt block goes with the file, so later verifies find the store clean
      assertExit(await shoal('rm', cid), 0)
    }
  })

  it('fetch on a daemon with no connection fails at once with exit 1', async () => {
    const unknown = 'bafkreie3l3tbq3mqevjbsp6njkfjsfv6tzklf7qr6s3ge6ls4kjd4fgogu'
    const target = path.join(dir, 'never-fetched')
    const started = performance.now()
    const r = await shoal('fetch', unknown, '-o', target, '--timeout', '60')
    assertExit(r, 1)
    assert.equal(oneLine(r.stderr), `shoal: ${unknown} is not held here and no peer is connected to fetch it from`)
    assert.ok(performance.now() - started < 30_000, 'without waiting for the 60 s timeout')
    await assert.rejects(fs.access(target), { code: 'ENOENT' })
  })

  it('rm frees the blocks, gc and verify report on the store', async () => {
    const data = randomBytes(2 * MiB + 1)
    const file = path.join(dir, 'rm-me')
    await fs.writeFile(file, data)
    const { cid } = await json<{ cid: string }>('share', file)
    const before = await json<{ store: { blocks: number, bytes: number } }>('ls')
    const removed = await json<{ removed: Array<{ reason: string }>, freed: { blocks: number, bytes: number } }>('rm', cid)
    assert.deepEqual(removed.removed.map(h => h.reason), ['shared'])
    // 3 leaves (the file's bytes) and the root node
    assert.equal(removed.freed.blocks, 4)
    assert.ok(removed.freed.bytes > data.length && removed.freed.bytes < data.length + 1024, `${removed.freed.bytes} bytes freed: the file's and a root node's`)
    const after = await json<{ store: { blocks: number, bytes: number } }>('ls')
    assert.deepEqual([after.store.blocks, after.store.bytes], [before.store.blocks - 4, before.store.bytes - removed.freed.bytes], 'the store shrank by what rm said it freed')
    assertExit((await shoal('cat', cid)), 1)
    assert.deepEqual(await json('gc'), { blocks: 0, bytes: 0 })
    const verify = await json<{ checked: number, bad: string[] }>('verify')
    assert.equal(verify.checked, after.store.blocks)
    assert.deepEqual(verify.bad, [])
  })

  it('a daemon killed by SIGKILL in the middle of an import restarts with a store where every block verifies', async () => {
    const big = path.join(dir, 'big.bin')
    const handle = await fs.open(big, 'w')
    for (let i = 0; i < 16; i++) await handle.write(randomBytes(16 * MiB))
    await handle.close()
    const blocksDir = path.join(repo, 'blocks')
    // blocks with their names (temp files of writes in flight do not count)
    const countBlocks = async (): Promise<number> => (await fs.readdir(blocksDir, { recursive: true })).filter(f => f.includes('/') && !f.endsWith('.tmp')).length
    const before = await countBlocks()
    const share = shoal('share', big, '--chunk-size', '16KiB')
    // wait until the import has written some blocks, then kill the daemon hard
    let shareEnded: CliResult | undefined
    void share.then(r => { shareEnded = r })
    await waitFor(async () => {
      assert.equal(shareEnded, undefined, `the share ended before the daemon was killed:\n${shareEnded?.stderr}\n${daemon.output()}`)
      return await countBlocks() >= before + 200
    }, { timeoutMs: 60_000, intervalMs: 20, message: () => `the import did not write 200 blocks within 60 s:\n${daemon.output()}` })
    daemon.child.kill('SIGKILL')
    await daemon.exited
    const r = await share
    assertExit(r, 1, 'the interrupted share fails')
    assert.ok((await countBlocks()) < before + 16 * 1024, 'the import was interrupted before it finished')

    await start()
    const verify = await json<{ checked: number, bad: string[] }>('verify')
    assert.deepEqual(verify.bad, [])
    assert.ok(verify.checked > before)
    const temps = (await fs.readdir(blocksDir, { recursive: true })).filter(f => f.endsWith('.tmp'))
    assert.deepEqual(temps, [], 'temp files of the killed import are swept on start')
    // nothing holds the interrupted import's blocks: gc takes them all back
    const gc = await json<{ blocks: number }>('gc')
    assert.equal(gc.blocks, verify.checked - before)
    const ls = await json<{ holdings: Array<{ name?: string }> }>('ls')
    assert.ok(!ls.holdings.some(h => h.name === 'big.bin'))
  })

  it('refuses an import past the quota with one line, keeping nothing of it', async () => {
    daemon.child.kill('SIGTERM')
    await daemon.exited
    const configFile = path.join(repo, 'config.json')
    const config = JSON.parse(await fs.readFile(configFile, 'utf8'))
    const stored = (await fs.readdir(path.join(repo, 'blocks'), { recursive: true, withFileTypes: true }))
      .filter(e => e.isFile())
    let used = 0
    for (const e of stored) used += (await fs.stat(path.join(e.parentPath, e.name))).size
    await fs.writeFile(configFile, JSON.stringify({ ...config, storage: { ...config.storage, quota: used + MiB } }))
    await start()
    try {
      const before = await json<{ store: { blocks: number, bytes: number } }>('ls')
      const file = path.join(dir, 'too-big')
      await fs.writeFile(file, randomBytes(3 * MiB))
      const r = await shoal('share', file)
      assertExit(r, 1)
      assert.match(oneLine(r.stderr), /^shoal: storage quota exceeded: .* \(raise "storage.quota" in config.json or remove content with "shoal rm"\)$/)
      const after = await json<{ store: { blocks: number, bytes: number } }>('ls')
      assert.deepEqual(after.store, { ...before.store })
      const temps = (await fs.readdir(path.join(repo, 'blocks'), { recursive: true })).filter(f => f.endsWith('.tmp'))
      assert.deepEqual(temps, [])
    } finally {
      // the next test (in whatever order) gets the daemon as before() started it
      daemon.child.kill('SIGTERM')
      await daemon.exited
      await fs.writeFile(configFile, JSON.stringify(config))
      await start()
    }
  })
})
