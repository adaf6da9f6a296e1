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
    const session = ui.redeem(code)
    assert.equal(typeof session, 'string')
    assert.equal(ui.redeem(code), undefined)
    assert.match(ui.cookie(session!), /^shoal_ui_5101=[\w-]{43}; HttpOnly; SameSite=Strict; Path=\/; Max-Age=43200$/)
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
    const session = ui.redeem(ui.newCode().code)!
    const get = request('GET', { host: ADDRESS, cookie: `other=1; shoal_ui_5101=${session}` })
    assert.equal(ui.check(get), undefined)
    clock += SESSION_TTL_MS + 1
    assert.equal(ui.check(get)?.status, 401)
  })

  it('refuses a foreign Host, another site, and a state change without Origin or header', () => {
    const ui = access()
    const cookie = `shoal_ui_5101=${ui.redeem(ui.newCode().code)!}`
    const refused = (method: string, headers: Record<string, string>): string | undefined => ui.check(request(method, { cookie, ...headers }))?.message
    assert.match(refused('GET', { host: 'rebound.example:5101' }) ?? '', /^Host "rebound.example:5101" is not this API's address$/)
    assert.match(refused('GET', { host: ADDRESS, 'sec-fetch-site': 'same-site' }) ?? '', /another site \(same-site\)/)
    assert.equal(refused('GET', { host: ADDRESS, 'sec-fetch-site': 'same-origin' }), undefined)
    assert.match(refused('POST', { host: ADDRESS, 'x-shoal-ui': '1' }) ?? '', /^Origin "" is not this API's$/)
    assert.match(refused('DELETE', { host: ADDRESS, origin: 'http://127.0.0.1:9999', 'x-shoal-ui': '1' }) ?? '', /^Origin "http:\/\/127.0.0.1:9999"/)
    assert.match(refused('POST', { host: ADDRESS, origin: `http://${ADDRESS}` }) ?? '', /needs the x-shoal-ui header/)
    assert.equal(refused('POST', { host: ADDRESS, origin: `http://${ADDRESS}`, 'x-shoal-ui': '1' }), undefined)
  })

  it('reads one cookie out of a Cookie header', () => {
    assert.equal(readCookie('a=1; shoal_ui_1=xyz; b=2', 'shoal_ui_1'), 'xyz')
    assert.equal(readCookie('shoal_ui_10=xyz', 'shoal_ui_1'), undefined)
    assert.equal(readCookie(undefined, 'a'), undefined)
  })
})
