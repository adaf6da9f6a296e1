/**
 * What the dashboard's browser tests share: Debian's Chromium driven by
 * playwright-core (no browser download: CHROMIUM_PATH or /usr/bin/chromium,
 * installed by .ci/run), the control API of an in-process peer on
 * 127.0.0.1, and a login through a one-time code as `shoal ui` gets it.
 */
import { randomBytes } from 'node:crypto'
import { existsSync } from 'node:fs'
import http from 'node:http'
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core'
import { startApiServer, type ApiServer } from '../../src/api/server.ts'
import type { ShoalPeer } from '../../src/peer/peer.ts'

export const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium'

export async function launchChromium (): Promise<Browser> {
  if (!existsSync(CHROMIUM)) throw new Error(`no Chromium at ${CHROMIUM}: install it (apt-get install -y chromium, as .ci/run does) or set CHROMIUM_PATH`)
  // --no-sandbox: CI runs as root, where Chromium's sandbox refuses to start
  return chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'] })
}

export interface PeerApi {
  peer: ShoalPeer
  server: ApiServer
  token: string
  origin: string
}

/** The control API of an in-process peer on 127.0.0.1 (`address`: a port again after a restart, default a free one). */
export async function startPeerApi (peer: ShoalPeer, address = '127.0.0.1:0'): Promise<PeerApi> {
  const token = randomBytes(16).toString('hex')
  const server = await startApiServer(peer, { address, token, logger: peer.logger, onShutdownRequested: () => {}, socketPath: false })
  return { peer, server, token, origin: `http://${server.address}` }
}

/** A one-time login URL, asked for with the API token (what `shoal ui` does). */
export async function loginUrl (api: PeerApi): Promise<string> {
  const res = await fetch(`${api.origin}/api/v1/ui/login-code`, { method: 'POST', headers: { authorization: `Bearer ${api.token}` } })
  if (!res.ok) throw new Error(`login-code: HTTP ${res.status} ${await res.text()}`)
  return ((await res.json()) as { url: string }).url
}

/** A fresh browser context logged in to this peer's dashboard, on its page. */
export async function openDashboard (browser: Browser, api: PeerApi): Promise<{ context: BrowserContext, page: Page, csp: string[] }> {
  const context = await browser.newContext()
  const page = await context.newPage()
  const csp: string[] = []
  page.on('console', msg => { if (/Content.Security.Policy/i.test(msg.text())) csp.push(msg.text()) })
  await page.goto(await loginUrl(api))
  await page.waitForSelector('#peer-id')
  return { context, page, csp }
}

/** A bearer-token API call (what a script does). */
export async function apiJson<T> (api: PeerApi, method: string, route: string): Promise<T> {
  const res = await fetch(`${api.origin}/api/v1${route}`, { method, headers: { authorization: `Bearer ${api.token}` } })
  if (!res.ok) throw new Error(`${method} ${route}: HTTP ${res.status} ${await res.text()}`)
  return res.json() as Promise<T>
}

/** A raw request, headers as given (node's fetch will not send a foreign Host). */
export async function rawRequest (api: PeerApi, method: string, route: string, headers: Record<string, string>): Promise<{ status: number, body: string }> {
  const { hostname, port } = new URL(api.origin)
  return new Promise((resolve, reject) => {
    const req = http.request({ host: hostname, port, method, path: route, headers }, res => {
      let body = ''
      res.setEncoding('utf8')
      res.on('data', (c: string) => { body += c })
      res.on('end', () => { resolve({ status: res.statusCode ?? 0, body }) })
    })
    req.on('error', reject)
    req.end()
  })
}
