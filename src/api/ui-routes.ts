/**
 * The dashboard on the control API's address (docs/ui.md):
 *
 * ```
 *   GET  /                         the page (no session needed: it asks for one)
 *   GET  /ui/app/*, /ui/vendor/*   its modules, stylesheet and UI library (src/ui)
 *   GET  /ui/login?code=C          swaps a one-time code for the session cookie, then to /#s=SECRET
 *   POST /api/v1/ui/login-code     bearer token only: a new one-time code (what `shoal ui` asks)
 *   GET  /api/v1/events            server-sent events (ui-events.ts)
 *   GET  /api/v1/ui/swarm          the swarm this peer belongs to, or null (ui-swarm.ts)
 * ```
 *
 * Every other API route accepts the session cookie as well as the bearer
 * token, with the session's secret in X-Shoal-UI, under the checks of
 * UiAccess (ui-session.ts). Every response
 * reached from a browser (the page, its files, API answers to the
 * session) carries the strict Content-Security-Policy of src/ui.
 */
import { PassThrough, Readable } from 'node:stream'
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import type { ComponentLogger } from '@libp2p/interface'
import { API_PREFIX } from '../constants.ts'
import type { ShoalPeer } from '../peer/peer.ts'
import { UI_CSP, UiAssets } from '../ui/index.ts'
import { UiEvents, type UiProgress } from './ui-events.ts'
import { readSwarmView } from './ui-swarm.ts'
import { UiAccess, type LoginCode, type Refusal } from './ui-session.ts'

export type { LoginCode }

export interface UiInit {
  /** HOST:PORT bound, once listening. */
  address: () => string | null
  logger: ComponentLogger
}

/** How the API's auth hook lets a request in. */
export type UiVerdict = { allow: true } | { allow: false, refusal: Refusal }

export interface Ui {
  /**
   * For a request without the bearer token: let it in (a dashboard file,
   * the login, or an API call with a valid session), or why not.
   */
  authorize: (request: FastifyRequest) => UiVerdict
  /** Marks a request as carrying the bearer token (for routes only scripts may call). */
  markBearer: (request: FastifyRequest) => void
  close: () => void
}

const SECURITY_HEADERS = {
  'content-security-policy': UI_CSP,
  'x-content-type-options': 'nosniff',
  'x-frame-options': 'DENY',
  'referrer-policy': 'no-referrer',
  'cache-control': 'no-store',
  'cross-origin-opener-policy': 'same-origin',
  'cross-origin-resource-policy': 'same-origin'
}

/** Routes that change what this peer holds when they succeed. */
const HOLDINGS_ROUTES = /^\/api\/v1\/(content|fetch|store\/|repair)/

export function registerUiRoutes (app: FastifyInstance, peer: ShoalPeer, init: UiInit): Ui {
  const access = new UiAccess(init.address)
  const assets = new UiAssets()
  const log = init.logger.forComponent('shoal:api:ui')
  const events = new UiEvents(peer, { address: init.address, log })
  const bearer = new WeakSet<FastifyRequest>()
  let shares = 0

  const isPublic = (request: FastifyRequest): boolean => {
    const url = request.url.split('?')[0]
    // the login only by GET (its handler refuses a HEAD: a link preview must not spend the code)
    if (url === '/ui/login') return request.method === 'GET'
    return (request.method === 'GET' || request.method === 'HEAD') && (url === '/' || url.startsWith('/ui/app/') || url.startsWith('/ui/vendor/'))
  }

  app.addHook('onSend', async (request, reply, payload) => {
    if (!bearer.has(request)) reply.headers(SECURITY_HEADERS)
    // a share or fetch streaming its progress: tap its lines for the events stream
    if (payload instanceof Readable && String(reply.getHeader('content-type') ?? '').startsWith('application/x-ndjson')) {
      const url = request.url.split('?')[0]
      if (request.method === 'POST' && url === `${API_PREFIX}/content`) {
        const name = (request.query as { name?: string }).name
        return tapProgress(payload, events, { id: `share:${++shares}`, kind: 'share', ...(name == null ? {} : { name }) })
      }
      if (request.method === 'POST' && url === `${API_PREFIX}/fetch`) {
        const cid = String((request.body as { cid?: unknown })?.cid)
        return tapProgress(payload, events, { id: `fetch:${cid}`, kind: 'fetch', cid })
      }
    }
    return payload
  })

  app.addHook('onResponse', async (request, reply) => {
    if (request.method !== 'GET' && request.method !== 'HEAD' && reply.statusCode < 300 && HOLDINGS_ROUTES.test(request.url)) {
      events.changed('holdings', 'status')
    }
  })

  const send = async (request: FastifyRequest, reply: FastifyReply): Promise<FastifyReply> => {
    const asset = await assets.get(request.url.split('?')[0])
    if (asset == null) return reply.code(404).type('text/plain').send('not found')
    return reply.type(asset.type).send(asset.body)
  }
  app.get('/', send)
  app.get('/ui/app/*', send)
  app.get('/ui/vendor/*', send)

  app.get<{ Querystring: { code?: string } }>('/ui/login', async (request, reply) => {
    if (request.method !== 'GET') return reply.code(405).header('allow', 'GET').send()
    const made = access.redeem(request.query.code ?? '')
    if (made == null) {
      return reply.code(403).type('text/plain').send('This login link is used up or expired. Run "shoal ui" for a new one.')
    }
    // 303 to the page: the code leaves the address bar and the history; the
    // secret rides in the fragment, which the browser never sends to a server
    return reply.code(303).header('set-cookie', access.cookie(made.session)).header('location', `/#s=${made.secret}`).send()
  })

  app.post(`${API_PREFIX}/ui/login-code`, async (request, reply) => {
    if (!bearer.has(request)) return reply.code(403).send({ error: { name: 'ForbiddenError', message: 'a login code needs the API token (run "shoal ui")', exitCode: 1 } })
    const code = access.newCode()
    const address = init.address()
    return { ...code, url: `http://${address ?? ''}/ui/login?code=${code.code}` }
  })

  app.get(`${API_PREFIX}/ui/swarm`, async () => ({ swarm: await readSwarmView(peer.repo.path) }))

  app.get(`${API_PREFIX}/events`, async (request, reply) => {
    reply.hijack()
    reply.raw.writeHead(200, {
      ...(bearer.has(request) ? {} : SECURITY_HEADERS),
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-store',
      connection: 'keep-alive'
    })
    await events.subscribe(reply.raw)
  })

  return {
    authorize: (request) => {
      if (isPublic(request)) {
        return access.hostAllowed(request)
          ? { allow: true }
          : { allow: false, refusal: { status: 403, name: 'ForbiddenError', message: `Host "${request.headers.host ?? ''}" is not this API's address` } }
      }
      const refusal = access.check(request)
      return refusal == null ? { allow: true } : { allow: false, refusal }
    },
    markBearer: (request) => { bearer.add(request) },
    close: () => { events.close() }
  }
}

/**
 * Passes a progress stream on unchanged and sends each of its lines to
 * the events stream too.
 */
function tapProgress (payload: Readable, events: UiEvents, base: Omit<UiProgress, 'progress' | 'done'>): Readable {
  const out = new PassThrough()
  let rest = ''
  payload.on('data', (chunk: Buffer) => {
    out.write(chunk)
    rest += chunk.toString('utf8')
    let nl: number
    while ((nl = rest.indexOf('\n')) >= 0) {
      const line = rest.slice(0, nl)
      rest = rest.slice(nl + 1)
      try {
        const parsed = JSON.parse(line) as { progress?: Record<string, unknown>, result?: { cid?: string, sources?: Record<string, { bytes: number, blocks: number }> }, error?: { message?: string } }
        if (parsed.progress != null) events.progress({ ...base, progress: parsed.progress })
        else if (parsed.result != null) {
          const { cid, sources } = parsed.result
          const bySource = sources == null ? undefined : Object.fromEntries(Object.entries(sources).map(([peer, s]) => [peer, { bytes: s.bytes, blocks: s.blocks }]))
          events.progress({ ...base, ...(cid == null ? {} : { cid }), done: { ok: true, ...(bySource == null ? {} : { sources: bySource }) } })
        }
        else if (parsed.error != null) events.progress({ ...base, done: { ok: false, message: parsed.error.message } })
      } catch {
        // not a line of ours: passed on all the same
      }
    }
  })
  payload.on('end', () => { out.end() })
  payload.on('error', err => { out.destroy(err) })
  out.on('close', () => { if (!payload.readableEnded) payload.destroy() })
  return out
}
