/**
 * The newcomer's path: every command README.md shows in its code blocks,
 * and docs/api.md's, is read from the file (test/helpers/doc-commands.ts)
 * and run as written through bash, against a real swarm of daemons over TCP
 * on 127.0.0.1; each must exit 0 and print what it promises. Change a
 * command in the README to one that does not work and this test fails.
 *
 * What the test fills in, as a reader would:
 * - `shoal` (on PATH after the README's `npm link`) and `npx shoal` run this
 *   checkout's bin/shoal, through shell functions (CI does not link, and
 *   npx costs ~0.7 s a call; one test runs the real `npx shoal` to show it
 *   resolves to this checkout, another bin/shoal under an older Node);
 * - `~/.shoal` is a temporary repo (also $SHOAL_REPO), `/tmp/` a temporary
 *   folder, `<CID>` the CID the last `share` printed, and a file `share` is
 *   given that does not exist is created (3 MiB + 11 random bytes);
 * - the daemon's config listens on 127.0.0.1 port 0 (the default ports may
 *   be taken) and bootstraps from the README's own swarm, so `swarm up` runs
 *   first; the other commands run in README order;
 * - `fetch`, "from another peer", runs on a peer of that swarm.
 * Long-running commands: `shoal daemon` runs in the background until the
 * end, then gets SIGINT (Ctrl-C) and must exit 0. `npm install && npm start`
 * and `npm test` are not run (they are what CI itself runs, and the demo
 * takes a minute), only checked to be still listed.
 * docs/cli.md shows synopses rather than commands: its headings are checked
 * against the commands and flags the CLI really has.
 */
import assert from 'node:assert/strict'
import { spawn, type ChildProcess } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { existsSync, readFileSync } from 'node:fs'
import fs from 'node:fs/promises'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { unixfs } from '@helia/unixfs'
import { MemoryBlockstore } from 'blockstore-core/memory'
import type { Command } from 'commander'
import { CID } from 'multiformats/cid'
import { ApiClient } from '../../src/api/client.ts'
import { buildProgram } from '../../src/cli/index.ts'
import { readSwarmFile, swarmDown, type SwarmPeerInfo } from '../../src/swarm/process-swarm.ts'
import { isProcessAlive } from '../../src/utils/process.ts'
import { waitFor } from '../../src/utils/wait.ts'
import { assertExit, runCli, tempDir, type Exit } from '../helpers/cli.ts'
import { docCommands } from '../helpers/doc-commands.ts'

const ROOT = fileURLToPath(new URL('../../', import.meta.url))
const DOCS = ['README.md', 'docs/api.md', 'docs/cli.md'].map(f => path.join(ROOT, f))
const NOT_RUN = ['npm install && npm link && npm start', 'npm test']
const FILE_SIZE = 3 * 1024 * 1024 + 11
const CID_RE = /\b(baf[a-z2-7]{50,})\b/

// Runs `shoal ...` and `npx shoal ...` as this checkout's bin/shoal; any other npx as npx.
const PRELUDE = 'shoal () { "$SHOAL_TEST_BIN" "$@"; }\nnpx () { if [ "$1" = shoal ]; then shift; shoal "$@"; else command npx "$@"; fi; }\n'
const SH_BIN = fileURLToPath(new URL('../../bin/shoal', import.meta.url))

interface Run extends Exit {
  stdout: Buffer
  text: string
  stderr: string
}

interface Daemon {
  child: ChildProcess
  output: () => string
  exited: Promise<Exit>
}

/** What earlier commands left for later ones. */
interface State {
  work: string
  repo: string
  file?: { path: string, data: Buffer }
  cid?: string
  swarm?: { dir: string, peers: SwarmPeerInfo[] }
  daemon?: Daemon
  peerId?: string
}

/** `shoal [--repo D] [--json] sub [subsub] args...` (or `npx shoal ...`) split up; undefined for other commands. */
function shoalArgs (command: string): { json: boolean, sub: string, args: string[] } | undefined {
  const words = command.split(/\s+/)
  const end = words.findIndex(w => ['>', '<', '|', '&&', ';', '||'].includes(w))
  const tokens = end === -1 ? words : words.slice(0, end)
  if (tokens[0] === 'npx') tokens.shift()
  if (tokens[0] !== 'shoal') return undefined
  let i = 1
  let json = false
  for (; i < tokens.length; i++) {
    if (tokens[i] === '--repo') i++
    else if (tokens[i] === '--json') json = true
    else break
  }
  let sub = tokens[i++] ?? ''
  if (sub === 'swarm') sub += ` ${tokens[i++] ?? ''}`
  const args = tokens.slice(i)
  if (args.includes('--json')) json = true
  return { json, sub, args }
}

function flagValue (args: string[], ...flags: string[]): string | undefined {
  const i = args.findIndex(a => flags.includes(a))
  return i === -1 ? undefined : args[i + 1]
}

/** Flags of the CLI that take no value. */
const SWITCHES = ['--json', '--force', '--repair', '--help', '-h']

/** The first argument that is neither a flag nor a flag's value. */
function positional (args: string[]): string | undefined {
  for (let i = 0; i < args.length; i++) {
    if (args[i].startsWith('-') && args[i] !== '-') {
      if (!SWITCHES.includes(args[i])) i++
      continue
    }
    return args[i]
  }
  return undefined
}

describe('the commands README.md and docs/ show, run as written', function () {
  this.timeout(120_000)
  const all = DOCS.flatMap(f => docCommands(f))
  const shown = all.filter(c => !NOT_RUN.includes(c.command))
  // the README's swarm first: the daemon joins it; the rest in the order shown
  const isSwarmUp = (c: { command: string }): boolean => /^(npx )?shoal swarm up\b/.test(c.command)
  const order = [...shown.filter(isSwarmUp), ...shown.filter(c => !isSwarmUp(c))]
  const state: State = { work: '', repo: '' }
  const homeRepo = path.join(process.env.HOME ?? '/nonexistent', '.shoal')
  const hadHomeRepo = existsSync(homeRepo)
  let failed = false

  before(async () => {
    state.work = await tempDir('shoal-readme-')
    assert.doesNotMatch(state.work, /\s/, 'the commands are substituted unquoted')
    state.repo = path.join(state.work, 'repo')
    await fs.mkdir(path.join(state.work, 'tmp'))
  })

  after(async () => {
    if (state.daemon != null && state.daemon.child.exitCode == null) {
      try { process.kill(-state.daemon.child.pid!, 'SIGKILL') } catch {}
      await state.daemon.exited
    }
    if (state.swarm != null && existsSync(path.join(state.swarm.dir, 'swarm.json'))) await swarmDown(state.swarm.dir)
    await fs.rm(state.work, { recursive: true, force: true })
  })

  /** The command with placeholders filled in. */
  const prepare = (command: string): string => {
    // (/tmp/ first: the temporary folder is itself in /tmp)
    let out = command.replace(/(?<![\w./-])\/tmp\//g, `${state.work}/tmp/`).replaceAll('~/.shoal', state.repo)
    if (out.includes('<CID>')) {
      assert.ok(state.cid != null, 'a command uses <CID> before any share printed one')
      out = out.replaceAll('<CID>', state.cid)
    }
    const unknown = /<[A-Za-z_-]+>/.exec(out)
    assert.equal(unknown, null, `no value known for the placeholder ${unknown?.[0]}`)
    return out
  }

  const environment = (env: Record<string, string> = {}): NodeJS.ProcessEnv => ({
    ...process.env,
    SHOAL_REPO: state.repo,
    SHOAL_TEST_BIN: SH_BIN,
    ...env
  })

  const sh = async (command: string, env?: Record<string, string>): Promise<Run> => {
    const child = spawn('bash', ['-c', PRELUDE + command], { cwd: state.work, env: environment(env), stdio: ['ignore', 'pipe', 'pipe'] })
    const out: Buffer[] = []
    let stderr = ''
    child.stdout.on('data', (d: Buffer) => { out.push(d) })
    child.stderr.on('data', (d: Buffer) => { stderr += d.toString() })
    const timer = setTimeout(() => { child.kill('SIGKILL') }, 90_000)
    const exit = await new Promise<Exit>(resolve => child.on('close', (code, signal) => { resolve({ code, signal }) }))
    clearTimeout(timer)
    const stdout = Buffer.concat(out)
    return { ...exit, stdout, text: stdout.toString(), stderr }
  }

  const sameAsShared = async (file: string): Promise<void> => {
    assert.ok(state.file != null)
    assert.ok((await fs.readFile(path.resolve(state.work, file))).equals(state.file.data), `${file} holds the shared bytes`)
  }

  /** Runs a `shoal daemon` command in its own process group (as in a terminal, so SIGINT is Ctrl-C) until it is ready; its output so far. */
  const runDaemon = async (command: string): Promise<string> => {
    const child = spawn('bash', ['-c', PRELUDE + command], { cwd: state.work, env: environment(), stdio: ['ignore', 'pipe', 'pipe'], detached: true })
    let out = ''
    child.stdout.on('data', (d: Buffer) => { out += d.toString() })
    child.stderr.on('data', (d: Buffer) => { out += d.toString() })
    const exited = new Promise<Exit>(resolve => child.on('exit', (code, signal) => { resolve({ code, signal }) }))
    state.daemon = { child, output: () => out, exited }
    await Promise.race([
      exited.then(exit => { throw new Error(`the daemon exited (code ${exit.code}, signal ${exit.signal}):\n${out}`) }),
      waitFor(() => out.includes('daemon is ready'), { timeoutMs: 60_000, message: () => `the daemon did not get ready:\n${out}` })
    ])
    return out
  }

  const startDaemon = async (command: string): Promise<void> => {
    // a repo made by `init`, set to listen on free loopback ports and to join the swarm
    const configFile = path.join(state.repo, 'config.json')
    const config = JSON.parse(await fs.readFile(configFile, 'utf8'))
    assert.ok(state.swarm != null, 'the README brings up a swarm for the daemon to join')
    const bootstrap = state.swarm.peers[0].multiaddrs.find(ma => ma.startsWith('/ip4/127.0.0.1/'))
    assert.ok(bootstrap != null)
    await fs.writeFile(configFile, JSON.stringify({ ...config, listen: ['/ip4/127.0.0.1/tcp/0'], api: '127.0.0.1:0', bootstrap: [bootstrap] }, null, 2))
    const out = await runDaemon(command)
    state.peerId = /peer ID\s+(12D3KooW\w+)/.exec(out)?.[1]
    assert.ok(state.peerId != null, out)
    // before anything is shared, the daemon knows the swarm (as a user would wait for it)
    const client = await ApiClient.fromRepo(state.repo)
    await waitFor(async () => (await client.status()).dht.routingTableSize >= state.swarm!.peers.length, {
      timeoutMs: 30_000, message: () => 'the daemon did not learn the swarm'
    })
  }

  /** Runs one command and checks what it printed, by the shoal command it is. */
  const runAndCheck = async (command: string): Promise<void> => {
    const prepared = prepare(command)
    const parsed = shoalArgs(prepared)
    if (parsed?.sub === 'daemon') {
      await startDaemon(prepared)
      return
    }
    let env: Record<string, string> | undefined
    if (parsed?.sub === 'share') {
      const target = positional(parsed.args)
      assert.ok(target != null, 'share names a file')
      const file = path.resolve(state.work, target)
      if (!existsSync(file)) await fs.writeFile(file, randomBytes(FILE_SIZE))
      state.file = { path: file, data: await fs.readFile(file) }
    }
    if (parsed?.sub === 'fetch') {
      // "from another peer": a peer of the swarm that lacks a block, so it downloads
      assert.ok(state.swarm != null && state.cid != null, 'fetch needs a shared file and another peer')
      const stat = await (await ApiClient.fromRepo(state.repo)).stat(state.cid)
      const fetcher = state.swarm.peers.find(p => !stat.blocks[1].holders.includes(p.peerId))
      assert.ok(fetcher != null, 'a swarm peer without the first leaf')
      env = { SHOAL_REPO: fetcher.repo }
    }
    const r = await sh(prepared, env)
    assertExit(r, 0, `${command}\nexit ${r.code}\nstdout: ${r.text.slice(0, 2000)}\nstderr: ${r.stderr}`)

    if (parsed == null) {
      if (/^curl\b/.test(command) && /\/api\/v1\/content\//.test(command)) {
        const range = /-r (\d+)-(\d+)/.exec(command)
        assert.ok(state.file != null)
        const expected = range != null ? state.file.data.subarray(Number(range[1]), Number(range[2]) + 1) : state.file.data
        assert.ok(r.stdout.equals(expected), `curl got ${r.stdout.length} bytes, not the ${expected.length} asked for`)
      } else if (/^curl\b/.test(command) && /\/api\/v1\/status\b/.test(command)) {
        assert.equal((JSON.parse(r.text) as { peerId: string }).peerId, state.peerId)
      } else {
        assert.notEqual(r.text.trim(), '', `${command} printed nothing`)
      }
      return
    }
    const { sub, args, json } = parsed
    const out = r.text
    switch (sub) {
      case 'init':
        assert.match(out, /initialised repo .*\npeer ID 12D3KooW/)
        for (const f of ['config.json', 'identity.key', 'api.token']) assert.ok(existsSync(path.join(state.repo, f)), f)
        break
      case 'status':
        assert.match(out, new RegExp(`peer ID\\s+${state.peerId}`))
        assert.match(out, /DHT\s+server, [1-9]\d* peers in routing table/)
        break
      case 'id': {
        const id = json ? (JSON.parse(out) as { peerId: string, multiaddrs: string[] }) : { peerId: /peer ID (\S+)/.exec(out)?.[1], multiaddrs: [] }
        assert.equal(id.peerId, state.peerId)
        if (json) assert.match(id.multiaddrs[0], /^\/ip4\/127\.0\.0\.1\/tcp\/\d+\/p2p\/12D3KooW/)
        break
      }
      case 'share': {
        const cid = CID_RE.exec(out)?.[1]
        assert.ok(cid != null, out)
        state.cid = CID.parse(cid).toString()
        assert.match(out, new RegExp(`\\(${state.file!.data.length} bytes\\), 4 chunks, 5 blocks`))
        assert.match(out, /replicas\s+every block on its 3 closest peers/)
        // "the same CID IPFS gives it": Helia's addBytes with its defaults
        const ipfs = await unixfs({ blockstore: new MemoryBlockstore() }).addBytes(state.file!.data)
        assert.equal(state.cid, ipfs.toString())
        break
      }
      case 'stat': {
        const lines = out.trim().split('\n')
        assert.ok(lines[0].startsWith(`${state.cid}  `), out)
        assert.equal(lines.length, 1 + 5, 'one line per block')
        for (const line of lines.slice(1)) assert.match(line, /\s3\/3\s+12D3KooW/, 'each block on its 3 closest peers')
        break
      }
      case 'fetch': {
        const target = flagValue(args, '-o', '--output') ?? state.cid!
        assert.match(out, new RegExp(`^wrote ${path.resolve(state.work, target)} \\(3\\.0 MiB\\) in [\\d.]+ s, [\\d.]+ MiB/s, from [1-9]\\d* peers?`))
        await sameAsShared(target)
        break
      }
      case 'ls':
        assert.match(out, new RegExp(`^${state.cid}\\s+shared\\s+3\\.0 MiB\\s+${path.basename(state.file!.path)}$`, 'm'))
        break
      case 'get': {
        const target = flagValue(args, '-o', '--output') ?? state.cid!
        assert.match(out, new RegExp(`^wrote ${path.resolve(state.work, target)} \\(3\\.0 MiB\\)`))
        await sameAsShared(target)
        break
      }
      case 'cat': {
        const redirect = /> *(\S+)\s*$/.exec(prepared)?.[1]
        if (redirect != null) await sameAsShared(redirect)
        else assert.ok(r.stdout.equals(state.file!.data))
        break
      }
      case 'rm':
        assert.match(out, new RegExp(`^removed ${state.cid} \\(shared\\); freed \\d+ blocks?, `))
        break
      case 'ui': {
        // a login link to the daemon's own API address, good for exactly one login
        const url = /^(http:\/\/127\.0\.0\.1:\d+\/ui\/login\?code=[\w-]+)\n/.exec(out)?.[1]
        assert.ok(url != null, out)
        const first = await fetch(url, { redirect: 'manual' })
        assert.equal(first.status, 303)
        assert.match(first.headers.get('set-cookie') ?? '', /^shoal_ui_\d+=[\w-]+; HttpOnly; SameSite=Strict; Path=\//)
        assert.match(first.headers.get('location') ?? '', /^\/#s=[\w-]{43}$/, 'the session\'s secret in the fragment only')
        assert.equal((await fetch(url, { redirect: 'manual' })).status, 403)
        break
      }
      case 'lookup': {
        // the lookup of the shared file's root, answered with its 3 closest of the swarm (the daemon among the candidates)
        assert.match(out, new RegExp(`^kademlia lookup of ${state.cid}: \\d+ hops, \\d+ messages, \\d+ ms$`, 'm'))
        const responsible = [...out.matchAll(/^ {2}\d\. (12D3KooW\w+)/gm)].map(m => m[1])
        assert.equal(responsible.length, 3, out)
        const stat = await (await ApiClient.fromRepo(state.repo)).stat(state.cid!)
        assert.deepEqual(responsible, stat.blocks[0].closest, 'the k responsible are the root block\'s k closest, in order')
        break
      }
      case 'routing':
        assert.match(out, new RegExp(`^kademlia routing table of ${state.peerId}: [1-9]\\d* peers in [1-9]\\d* buckets`))
        break
      case 'swarm up': {
        const dir = flagValue(args, '--dir')
        assert.ok(dir != null, 'swarm up names its --dir')
        const file = await readSwarmFile(dir)
        state.swarm = { dir, peers: file.peers }
        const n = Number(flagValue(args, '--peers'))
        assert.match(out, new RegExp(`^swarm of ${n} peers routable in [\\d.]+ s`))
        assert.equal(file.peers.length, n)
        break
      }
      case 'peers': {
        const lines = out.trim().split('\n')
        for (const line of lines) assert.match(line, /^\/ip4\/127\.0\.0\.1\/tcp\/\d+\/p2p\/12D3KooW\w+ \((inbound|outbound)\)$/)
        assert.ok(lines.length >= state.swarm!.peers.length - 1, `${lines.length} peers`)
        break
      }
      case 'swarm status':
        assert.match(out, new RegExp(`: ${state.swarm!.peers.length} of ${state.swarm!.peers.length} peers alive`))
        break
      case 'swarm down':
        assert.match(out, new RegExp(`down: ${state.swarm!.peers.length} peer\\(s\\) stopped cleanly`))
        for (const p of state.swarm!.peers) assert.equal(isProcessAlive(p.pid), false, `pid ${p.pid} still running`)
        break
      default:
        // a command this test has no check for yet: it must at least work and say something
        assert.notEqual(out.trim(), '', `${command} printed nothing`)
    }
  }

  it('the README still lists the commands not run here', () => {
    const listed = all.map(c => c.command)
    for (const c of NOT_RUN) assert.ok(listed.includes(c), `README.md no longer shows \`${c}\``)
    assert.ok(shown.length >= 10, `only ${shown.length} commands found: is the parser still reading the README?`)
  })

  it('`npx shoal` from the project folder runs this checkout\'s CLI', async function () {
    const r = await new Promise<Exit & { out: string }>(resolve => {
      const child = spawn('npx', ['shoal', '--version'], { cwd: ROOT, env: { ...process.env, npm_config_update_notifier: 'false' }, stdio: ['ignore', 'pipe', 'pipe'] })
      let out = ''
      child.stdout.on('data', (d: Buffer) => { out += d.toString() })
      child.on('close', (code, signal) => { resolve({ code, signal, out }) })
    })
    assertExit(r, 0)
    assert.equal(r.out.trim(), JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')).version)
  })

  it('bin/shoal, which `npm link` puts on PATH, runs the CLI under the pinned Node, not the `node` first on PATH', async function () {
    const dir = await tempDir('shoal-oldnode-')
    try {
      // a user's shell whose `node` is some other (here: one that only fails)
      await fs.writeFile(path.join(dir, 'node'), '#!/bin/sh\necho "the node on PATH ran" >&2\nexit 3\n', { mode: 0o755 })
      const r = await new Promise<Exit & { out: string, err: string }>(resolve => {
        const child = spawn(SH_BIN, ['--version'], { env: { ...process.env, PATH: `${dir}:/usr/bin:/bin` }, stdio: ['ignore', 'pipe', 'pipe'] })
        let out = ''
        let err = ''
        child.stdout.on('data', (d: Buffer) => { out += d.toString() })
        child.stderr.on('data', (d: Buffer) => { err += d.toString() })
        child.on('close', (code, signal) => { resolve({ code, signal, out, err }) })
      })
      assertExit(r, 0, r.err)
      assert.equal(r.out.trim(), JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')).version)
    } finally {
      await fs.rm(dir, { recursive: true, force: true })
    }
  })

  for (const doc of order) {
    const where = `${path.relative(ROOT, doc.file)}:${doc.line}`
    for (const command of [doc.command, ...doc.alternatives]) {
      it(`${where}: ${command}`, async function () {
        if (failed) this.skip()
        try {
          await runAndCheck(command)
        } catch (err) {
          failed = true
          throw err
        }
      })
    }
  }

  it('the daemon stops cleanly on Ctrl-C (SIGINT)', async function () {
    // run alone (--grep) or after a README command failed: a daemon of its own, started as the README starts it
    if (state.daemon == null || state.daemon.child.exitCode != null || state.daemon.child.signalCode != null) {
      state.repo = await fs.mkdtemp(path.join(state.work, 'sigint-repo-'))
      const init = await sh('shoal init')
      assertExit(init, 0, 'shoal init')
      await fs.writeFile(path.join(state.repo, 'config.json'), JSON.stringify({
        ...JSON.parse(await fs.readFile(path.join(state.repo, 'config.json'), 'utf8')), listen: ['/ip4/127.0.0.1/tcp/0'], api: '127.0.0.1:0'
      }))
      await runDaemon('shoal daemon')
    }
    const daemon = state.daemon
    assert.ok(daemon != null, 'a daemon runs')
    process.kill(-daemon.child.pid!, 'SIGINT')
    assert.deepEqual(await daemon.exited, { code: 0, signal: null }, daemon.output())
    assert.match(daemon.output(), /daemon stopped/)
    assert.equal(existsSync(path.join(state.repo, 'api')), false, 'the api file is removed')
    assert.equal(existsSync(path.join(state.repo, 'repo.lock')), false, 'the lock is released')
    assert.equal(existsSync(homeRepo), hadHomeRepo, 'the real ~/.shoal was never touched')
  })
})

describe('docs/cli.md against the CLI', () => {
  const text = readFileSync(path.join(ROOT, 'docs/cli.md'), 'utf8')
  // `## \`shoal swarm up --peers N [--dir DIR]\`` -> command "swarm up", synopsis
  const headings = [...text.matchAll(/^## `shoal ([^`]+)`/gm)].map(m => {
    const words = m[1].split(/\s+/)
    const end = words.findIndex(w => !/^[a-z]+$/.test(w))
    return { name: (end === -1 ? words : words.slice(0, end)).join(' '), synopsis: m[1] }
  })
  const program = buildProgram()
  const help = program.createHelp()
  const commands: Array<{ name: string, command: Command }> = []
  const walk = (cmd: Command, prefix: string): void => {
    for (const sub of help.visibleCommands(cmd)) {
      if (sub.name() === 'help') continue
      const name = `${prefix}${sub.name()}`
      if (help.visibleCommands(sub).some(c => c.name() !== 'help')) walk(sub, `${name} `)
      else commands.push({ name, command: sub })
    }
  }
  walk(program, '')

  it('has a section for every command, and no section for a command that does not exist', () => {
    const documented = headings.map(h => h.name)
    assert.deepEqual(commands.map(c => c.name).filter(n => !documented.includes(n)), [], 'commands without a section in docs/cli.md')
    assert.deepEqual(documented.filter(n => !commands.some(c => c.name === n)), [], 'sections of docs/cli.md for commands that do not exist')
  })

  it('shows every flag of each command in its synopsis, and only flags that exist', () => {
    for (const { name, command } of commands) {
      const synopsis = headings.find(h => h.name === name)?.synopsis ?? ''
      const shownFlags = [...synopsis.matchAll(/(?<![\w-])(--?[a-z][\w-]*)/g)].map(m => m[1])
      const flags = help.visibleOptions(command).filter(o => o.long !== '--help')
      for (const o of flags) {
        assert.ok(shownFlags.includes(o.long!) || (o.short != null && shownFlags.includes(o.short)), `docs/cli.md: \`shoal ${name}\` does not show ${o.long}`)
      }
      for (const f of shownFlags) {
        assert.ok(flags.some(o => o.long === f || o.short === f), `docs/cli.md: \`shoal ${name}\` shows ${f}, which it does not take`)
      }
    }
    for (const o of help.visibleOptions(program)) {
      assert.ok(text.includes(`\`${o.long}`), `docs/cli.md does not list the global option ${o.long}`)
    }
  })

  it('a command group without its subcommand is bad usage: exit 2', async () => {
    const r = await runCli(['swarm'])
    assertExit(r, 2)
    assert.match(r.stderr, /Usage: shoal swarm/)
  })
})
