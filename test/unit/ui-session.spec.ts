/**
 * The dashboard's login and session checks (src/api/ui-session.ts), on a
 * clock the test moves: codes work once and expire, sessions expire, and
 * each check refuses what it is there to refuse. The browser test
 * (test/browser/ui.spec.ts) shows the same through Chromium.
 */
import assert from 'node:assert/strict'
import type { FastifyRequest } from 'fastify'
import { LOGIN_CODE_TTL_MS, SESSION_TTL_MS, UiAccess, readCookie } from '../../src/api/ui-session.ts'

const ADDRESS = '127.0.0.1:5101'

function request (method: string, headers: Record<string, string>): FastifyRequest {
  return { method, headers } as unknown as FastifyRequest
}

describe('dashboard sessions', () => {
  let clock = 1_000_000
  const access = (): UiAccess => new UiAccess(() => ADDRESS, { now: () => clock })

  it('swaps a code for a session once; a second use is refused', () => {
    const ui = access()
    const { code, expiresAt } = ui.newCode()
    assert.equal(expiresAt, clock + LOGIN_CODE_TTL_MS)
    const made = ui.redeem(code)
    assert.match(made?.session ?? '', /^[\w-]{43}$/)
    assert.match(made?.secret ?? '', /^[\w-]{43}$/)
    assert.notEqual(made?.secret, made?.session)
    assert.equal(ui.redeem(code), undefined)
    assert.match(ui.cookie(made!.session), /^shoal_ui_5101=[\w-]{43}; HttpOnly; SameSite=Strict; Path=\/; Max-Age=43200$/)
  })

  it('refuses a code past its minute, and an unknown one', () => {
    const ui = access()
    const { code } = ui.newCode()
    clock += LOGIN_CODE_TTL_MS + 1
    assert.equal(ui.redeem(code), undefined)
    assert.equal(ui.redeem('made-up'), undefined)
  })

  it('lets a session in until it expires', () => {
    const ui = access()
    const { session, secret } = ui.redeem(ui.newCode().code)!
    const get = request('GET', { host: ADDRESS, cookie: `other=1; shoal_ui_5101=${session}`, 'x-shoal-ui': secret })
    assert.equal(ui.check(get), undefined)
    clock += SESSION_TTL_MS + 1
    assert.equal(ui.check(get)?.status, 401)
  })

  it('refuses the cookie without its session\'s secret, on every method', () => {
    const ui = access()
    const first = ui.redeem(ui.newCode().code)!
    const second = ui.redeem(ui.newCode().code)!
    const cookie = `shoal_ui_5101=${first.session}`
    const check = (headers: Record<string, string>): string | undefined => ui.check(request('GET', { host: ADDRESS, cookie, ...headers }))?.message
    const needs = 'a dashboard request needs its session\'s secret in the x-shoal-ui header'
    assert.equal(check({}), needs)
    assert.equal(check({ 'x-shoal-ui': '1' }), needs)
    assert.equal(check({ 'x-shoal-ui': second.secret }), needs, 'another session\'s secret')
    assert.equal(check({ 'x-shoal-ui': first.secret }), undefined)
    assert.equal(ui.check(request('POST', { host: ADDRESS, cookie, origin: `http://${ADDRESS}` }))?.status, 403)
  })

  it('refuses a foreign Host, another site, and a state change without Origin', () => {
    const ui = access()
    const { session, secret } = ui.redeem(ui.newCode().code)!
    const cookie = `shoal_ui_5101=${session}`
    const refused = (method: string, headers: Record<string, string>): string | undefined => ui.check(request(method, { cookie, 'x-shoal-ui': secret, ...headers }))?.message
    assert.match(refused('GET', { host: 'rebound.example:5101' }) ?? '', /^Host "rebound.example:5101" is not this API's address$/)
    assert.match(refused('GET', { host: ADDRESS, 'sec-fetch-site': 'same-site' }) ?? '', /another site \(same-site\)/)
    assert.equal(refused('GET', { host: ADDRESS, 'sec-fetch-site': 'same-origin' }), undefined)
    assert.match(refused('POST', { host: ADDRESS }) ?? '', /^Origin "" is not this API's$/)
    assert.match(refused('DELETE', { host: ADDRESS, origin: 'http://127.0.0.1:9999' }) ?? '', /^Origin "http:\/\/127.0.0.1:9999"/)
    assert.equal(refused('POST', { host: ADDRESS, origin: `http://${ADDRESS}` }), undefined)
  })

  it('reads one cookie out of a Cookie header', () => {
    assert.equal(readCookie('a=1; shoal_ui_1=xyz; b=2', 'shoal_ui_1'), 'xyz')
    assert.equal(readCookie('shoal_ui_10=xyz', 'shoal_ui_1'), undefined)
    assert.equal(readCookie(undefined, 'a'), undefined)
  })
})
