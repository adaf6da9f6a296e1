/**
 * Who may use the dashboard, and from where. The API token never reaches a
 * browser: `shoal ui` asks the daemon (with the token, over the unix
 * socket) for a one-time login code; the login URL carries that code; the
 * daemon swaps it, once and within LOGIN_CODE_TTL_MS, for a session held
 * in an HttpOnly, SameSite=Strict cookie, and a per-session secret the
 * browser never sends by itself: the login's redirect puts it in the URL
 * fragment (`/#s=SECRET`, never sent to a server), the page keeps it in
 * sessionStorage (one origin, one tab) and sends it as `X-Shoal-UI` on
 * every API call. Browsers send the cookie to every port of 127.0.0.1, so
 * another local server could log it and replay it: without the secret it
 * gets 403. API calls with that cookie pass these checks (UiAccess.check):
 *
 * - `X-Shoal-UI` must be the session's secret (compared as digests, in
 *   constant time), on every method.
 * - Host must be the API's own HOST:PORT: a page on a rebound DNS name
 *   reaches this port under a foreign Host.
 * - Sec-Fetch-Site, when the browser sends it, must be same-origin (or
 *   none: the user typed the URL). Another port of 127.0.0.1 is same-site
 *   to the browser, so SameSite alone does not keep its pages out.
 * - A state-changing method also needs `Origin: http://HOST:PORT`.
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto'
import type { FastifyRequest } from 'fastify'

export const LOGIN_CODE_TTL_MS = 60_000
export const SESSION_TTL_MS = 12 * 3600_000
/** The header every API request of the page carries: the session's secret. */
export const UI_HEADER = 'x-shoal-ui'
/** Codes not yet redeemed, at most: asking for more drops the oldest. */
const MAX_PENDING_CODES = 16
const MAX_SESSIONS = 64

/** A session just made: the cookie's value and the secret the page sends beside it. */
export interface UiSession {
  session: string
  secret: string
}

interface SessionEntry {
  expiresAt: number
  /** sha-256 of the secret. */
  secret: Buffer
}

export interface LoginCode {
  code: string
  expiresAt: number
}

/** Why a request with the session cookie was refused (HTTP 403 or 401). */
export interface Refusal {
  status: 401 | 403
  name: 'UnauthorizedError' | 'ForbiddenError'
  message: string
}

const SAFE_METHODS = new Set(['GET', 'HEAD'])

export class UiAccess {
  /** sha-256 of each pending code -> expiry. */
  private readonly codes = new Map<string, number>()
  /** sha-256 of each session -> its expiry and secret's digest. */
  private readonly sessions = new Map<string, SessionEntry>()
  private readonly address: () => string | null
  private readonly now: () => number

  /** `now`: the clock codes and sessions expire by (tests move it). */
  constructor (address: () => string | null, init: { now?: () => number } = {}) {
    this.address = address
    this.now = init.now ?? Date.now
  }

  /** The session cookie's name: one per API port (cookies do not tell ports apart). */
  get cookieName (): string {
    const port = /:(\d+)$/.exec(this.address() ?? '')?.[1] ?? '0'
    return `shoal_ui_${port}`
  }

  /** The origin pages of this dashboard have. */
  get origin (): string {
    return `http://${this.address() ?? ''}`
  }

  newCode (): LoginCode {
    this.prune()
    const code = randomBytes(24).toString('base64url')
    const expiresAt = this.now() + LOGIN_CODE_TTL_MS
    this.codes.set(digest(code), expiresAt)
    while (this.codes.size > MAX_PENDING_CODES) this.codes.delete(this.codes.keys().next().value!)
    return { code, expiresAt }
  }

  /** A new session for a valid, unused code (which is spent); undefined otherwise. */
  redeem (code: string): UiSession | undefined {
    const key = digest(code)
    const expiresAt = this.codes.get(key)
    this.codes.delete(key)
    if (expiresAt == null || expiresAt < this.now()) return undefined
    this.prune()
    const session = randomBytes(32).toString('base64url')
    const secret = randomBytes(32).toString('base64url')
    this.sessions.set(digest(session), { expiresAt: this.now() + SESSION_TTL_MS, secret: createHash('sha256').update(secret).digest() })
    while (this.sessions.size > MAX_SESSIONS) this.sessions.delete(this.sessions.keys().next().value!)
    return { session, secret }
  }

  /** `Set-Cookie` for a session just made. */
  cookie (session: string): string {
    return `${this.cookieName}=${session}; HttpOnly; SameSite=Strict; Path=/; Max-Age=${SESSION_TTL_MS / 1000}`
  }

  /** True when the request's Host is the API's own address. */
  hostAllowed (request: FastifyRequest): boolean {
    const address = this.address()
    return address != null && request.headers.host === address
  }

  /** The live session the request's cookie names, if any. */
  private sessionOf (request: FastifyRequest): SessionEntry | undefined {
    const value = readCookie(request.headers.cookie, this.cookieName)
    if (value == null) return undefined
    const entry = this.sessions.get(digest(value))
    return entry != null && entry.expiresAt >= this.now() ? entry : undefined
  }

  /**
   * Checks an API request that has no bearer token: undefined when its
   * session, its secret, Host and (for state changes) origin are all right.
   */
  check (request: FastifyRequest): Refusal | undefined {
    if (!this.hostAllowed(request)) return forbidden(`Host "${request.headers.host ?? ''}" is not this API's address`)
    const site = request.headers['sec-fetch-site']
    if (site != null && site !== 'same-origin' && site !== 'none') return forbidden(`a request from another site (${String(site)}) is refused`)
    const session = this.sessionOf(request)
    if (session == null) {
      return { status: 401, name: 'UnauthorizedError', message: 'missing or wrong API token (see <repo>/api.token), or no dashboard session (run "shoal ui")' }
    }
    const sent = request.headers[UI_HEADER]
    if (typeof sent !== 'string' || !timingSafeEqual(createHash('sha256').update(sent).digest(), session.secret)) {
      return forbidden(`a dashboard request needs its session's secret in the ${UI_HEADER} header`)
    }
    if (!SAFE_METHODS.has(request.method) && request.headers.origin !== this.origin) {
      return forbidden(`Origin "${request.headers.origin ?? ''}" is not this API's`)
    }
    return undefined
  }

  private prune (): void {
    const now = this.now()
    for (const [key, at] of this.codes) if (at < now) this.codes.delete(key)
    for (const [key, entry] of this.sessions) if (entry.expiresAt < now) this.sessions.delete(key)
  }
}

function forbidden (message: string): Refusal {
  return { status: 403, name: 'ForbiddenError', message }
}

function digest (value: string): string {
  return createHash('sha256').update(value).digest('hex')
}

/** One cookie's value from a Cookie header. */
export function readCookie (header: string | undefined, name: string): string | undefined {
  for (const part of (header ?? '').split(';')) {
    const eq = part.indexOf('=')
    if (eq > 0 && part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim()
  }
  return undefined
}
