// `npm run screenshots`: bring up a local swarm of daemons (`swarm up`),
// share files, open each dashboard view in Debian's Chromium and write a
// PNG of it to docs/ui/ (shown in docs/ui.md); then take the swarm down.
import { randomBytes } from 'node:crypto'
import fs from 'node:fs/promises'
import path from 'node:path'
import { chromium } from 'playwright-core'
import { swarmDown, swarmStopPeer, swarmUp } from '../src/swarm/process-swarm.ts'

const MiB = 1024 * 1024
const PEERS = 8
const CHORD_PEERS = 16
const dir = path.resolve('.shoal-screenshots')
const out = path.resolve('docs/ui')
const say = (line: string): void => { process.stdout.write(line + '\n') }

await fs.rm(dir, { recursive: true, force: true })
await fs.mkdir(out, { recursive: true })
say(`starting a swarm of ${PEERS} daemons in ${dir} ...`)
// the last three peers hold the file fetched on camera, and upload it slowly
const SOURCES = [PEERS - 3, PEERS - 2, PEERS - 1]
const swarm = await swarmUp({ peers: PEERS, dir, peersPerProcess: 1, peer: i => SOURCES.includes(i) ? { config: { transfer: { maxUploadRate: MiB } } } : undefined })
const browser = await chromium.launch({ executablePath: process.env.CHROMIUM_PATH ?? '/usr/bin/chromium', args: ['--no-sandbox', '--disable-gpu'] })
try {
  const peerApi = async (index: number, peers = swarm.peers): Promise<{ origin: string, call: <T>(method: string, route: string, body?: unknown) => Promise<T> }> => {
    const info = peers[index]
    const token = (await fs.readFile(path.join(info.repo, 'api.token'), 'utf8')).trim()
    const origin = `http://${info.api}`
    const call = async <T>(method: string, route: string, body?: unknown): Promise<T> => {
      const res = await fetch(`${origin}/api/v1${route}`, {
        method,
        headers: { authorization: `Bearer ${token}`, ...(body == null ? {} : { 'content-type': 'application/json' }) },
        body: body == null ? undefined : JSON.stringify(body)
      })
      if (!res.ok) throw new Error(`${method} ${route} on peer ${index}: ${res.status} ${await res.text()}`)
      return res.json() as Promise<T>
    }
    return { origin, call }
  }
  const login = async (index: number, peers = swarm.peers) => {
    const api = await peerApi(index, peers)
    const { url } = await api.call<{ url: string }>('POST', '/ui/login-code')
    const page = await browser.newPage({ viewport: { width: 1280, height: 900 } })
    await page.goto(url)
    await page.waitForSelector('#peer-id')
    return { page, api }
  }
  const shot = async (page: import('playwright-core').Page, name: string): Promise<void> => {
    await page.screenshot({ path: path.join(out, `${name}.png`), fullPage: true })
    say(`wrote docs/ui/${name}.png`)
  }

  /** The network view with a lookup of `cid` drawn to its end (the responsible peers ringed). */
  const networkShot = async (view: { page: import('playwright-core').Page, api: { origin: string } }, cid: string, name: string): Promise<void> => {
    await view.page.goto(`${view.api.origin}/#/network`)
    await view.page.waitForSelector('#routing-table [data-peer]')
    await view.page.fill('#lookup-key', cid)
    await view.page.click('#lookup-go')
    await view.page.waitForSelector('#lookup-summary')
    await view.page.waitForSelector('#keyspace circle.resp-mark')
    await shot(view.page, name)
  }

  const files = path.join(dir, 'files')
  await fs.mkdir(files, { recursive: true })
  const shared = path.join(files, 'holiday-video.mp4')
  await fs.writeFile(shared, randomBytes(12 * MiB))
  const slow = path.join(files, 'dataset.tar')
  await fs.writeFile(slow, randomBytes(24 * MiB))

  const a = await login(0)
  const { cid } = await a.api.call<{ cid: string }>('POST', '/content', { path: shared, chunkSize: '512KiB', name: 'holiday-video.mp4' })
  let slowCid = ''
  for (const index of SOURCES) {
    const source = await peerApi(index)
    slowCid = (await source.call<{ cid: string }>('POST', '/content', { path: slow, chunkSize: '256KiB', replicas: 0, name: 'dataset.tar' })).cid
  }

  await a.page.waitForSelector(`#holdings tr[data-cid="${cid}"]`)
  await shot(a.page, 'peer')

  await a.page.goto(`${a.api.origin}/#/file/${cid}`)
  await a.page.waitForSelector('#blocks .block')
  await shot(a.page, 'file')

  await networkShot(a, cid, 'network')

  const b = await login(1)
  await b.page.fill('#fetch-cid', slowCid)
  await b.page.click('#fetch-go')
  await b.page.locator('.fetch-job[data-status=running] .fetch-meta', { hasText: /ETA \d/ }).waitFor({ timeout: 60_000 })
  // about a third of the pieces in
  await b.page.locator('.fetch-job[data-status=running] .piece.from').nth(32).waitFor({ timeout: 60_000 })
  await shot(b.page, 'fetch')
  await b.page.waitForSelector('.fetch-job[data-status=done]', { timeout: 120_000 })

  await swarmStopPeer(dir, PEERS - 2)
  await a.page.goto(`${a.api.origin}/#/swarm`)
  await a.page.locator('#swarm-peers .tag.down').waitFor({ timeout: 20_000 })
  await shot(a.page, 'swarm')
  await swarmDown(dir)

  // the network view of a Chord swarm: the ring, this peer's fingers and
  // successor list, and a lookup drawn hop by hop
  const chordDir = path.join(dir, 'chord')
  say(`starting a Chord swarm of ${CHORD_PEERS} daemons in ${chordDir} ...`)
  const ring = await swarmUp({ peers: CHORD_PEERS, dir: chordDir, overlay: 'chord' })
  try {
    const c = await login(0, ring.peers)
    const { cid: chordCid } = await c.api.call<{ cid: string }>('POST', '/content', { path: shared, chunkSize: '512KiB', name: 'holiday-video.mp4' })
    await networkShot(c, chordCid, 'network-chord')
  } finally {
    await swarmDown(chordDir)
  }
} finally {
  await browser.close()
  await swarmDown(dir).catch(() => {})
  await fs.rm(dir, { recursive: true, force: true })
}
