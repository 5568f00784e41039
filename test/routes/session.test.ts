import assert from 'node:assert/strict'
import { randomUUID } from 'node:crypto'
import { describe, test } from 'node:test'
import { SignJWT, type JWTPayload } from 'jose'
import type { App } from '../../src/app.ts'
import { BACKCHANNEL_LOGOUT_EVENT } from '../../src/logout-token.ts'
import { MemoryStore } from '../../src/store/memory-store.ts'
import { sessionIdOf } from '../../src/ust.ts'
import { build, mintUst, TEST_AUDIENCE, TEST_ISSUER, TEST_SECRET } from '../helper.ts'

const ATTR = '/sso/session/attr'
const LOGOUT = '/sso/backchannel-logout'

interface Envelope {
  cid: string
  status: 'ok' | 'error'
  sub_status?: string[]
  found?: boolean
  value?: unknown
  result?: unknown
}

async function call (app: App, method: 'GET' | 'PUT' | 'DELETE', url: string, ust: string | undefined, body?: Record<string, unknown>) {
  const response = await app.inject({
    method,
    url,
    headers: { ...(ust !== undefined ? { authorization: `Bearer ${ust}` } : {}), ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
    ...(body !== undefined ? { payload: JSON.stringify(body) } : {})
  })
  return { statusCode: response.statusCode, headers: response.headers, body: response.json<Envelope>() }
}

const put = async (app: App, ust: string, name: string, value: unknown) => await call(app, 'PUT', ATTR, ust, { current_app: 'CRM', name, value })
const get = async (app: App, ust: string, name: string) => await call(app, 'GET', `${ATTR}?current_app=CRM&name=${name}`, ust)

function assertStatus (reply: { statusCode: number, body: Envelope }, status: number, subStatus?: string): void {
  assert.equal(reply.statusCode, status, JSON.stringify(reply.body))
  if (subStatus === undefined) assert.equal(reply.body.status, 'ok')
  else assert.deepEqual(reply.body.sub_status, [subStatus])
}

/** A logout token as an identity provider sends it, signed with the test secret (HS256). */
async function logoutToken (claims: JWTPayload = {}, options: { omit?: string[], secret?: string, iat?: number } = {}): Promise<string> {
  const payload: JWTPayload = { events: { [BACKCHANNEL_LOGOUT_EVENT]: {} }, jti: randomUUID(), ...claims }
  for (const claim of options.omit ?? []) delete payload[claim]
  let jwt = new SignJWT(payload).setProtectedHeader({ alg: 'HS256', typ: 'logout+jwt' }).setIssuedAt(options.iat)
  if (!(options.omit ?? []).includes('iss') && claims.iss === undefined) jwt = jwt.setIssuer(TEST_ISSUER)
  if (!(options.omit ?? []).includes('aud') && claims.aud === undefined) jwt = jwt.setAudience(TEST_AUDIENCE)
  return await jwt.setExpirationTime('2m').sign(new TextEncoder().encode(options.secret ?? TEST_SECRET))
}

async function postLogout (app: App, payload: string, contentType = 'application/x-www-form-urlencoded') {
  const response = await app.inject({ method: 'POST', url: LOGOUT, headers: { 'content-type': contentType }, payload })
  return { statusCode: response.statusCode, headers: response.headers, body: response.json<Envelope>() }
}

const form = (token: string) => new URLSearchParams({ logout_token: token }).toString()

describe('DELETE /sso/session', () => {
  test('the owner ends the session: its attributes are gone and its USTs get 401 E007001 from then on', async (t) => {
    const store = new MemoryStore({ sessionIdleTtlMs: 3_600_000, sessionMaxTtlMs: 86_400_000, maxAttributesPerSession: 1000 })
    const app = await build(t, {}, { store })
    const sid = randomUUID()
    const ust = await mintUst({ sid })
    const sameSessionLater = await mintUst({ sid, expiresIn: '2h' })
    const otherSession = await mintUst()
    assertStatus(await put(app, ust, 'cart', [1, 2]), 200)
    assertStatus(await put(app, otherSession, 'cart', [3]), 200)

    const ended = await call(app, 'DELETE', '/sso/session', ust, { current_app: 'CRM' })
    assertStatus(ended, 200)
    assert.equal(ended.headers['cache-control'], 'no-store')
    // The cached token and a token never seen before for the same session alike.
    assertStatus(await get(app, ust, 'cart'), 401, 'E007001')
    assertStatus(await get(app, sameSessionLater, 'cart'), 401, 'E007001')
    assertStatus(await put(app, sameSessionLater, 'cart', 'again'), 401, 'E007001')
    assert.equal(await store.isSessionEnded(sessionIdOf(TEST_ISSUER, sid)), true)
    // Another session of the same user is untouched.
    assert.deepEqual((await get(app, otherSession, 'cart')).body.value, [3])
  })

  test('query string and body inputs, and the Zato path, end sessions the same way', async (t) => {
    const app = await build(t)
    const viaQuery = await mintUst()
    const viaZato = await mintUst()
    assertStatus(await call(app, 'DELETE', '/sso/session?current_app=CRM', viaQuery), 200)
    assertStatus(await get(app, viaQuery, 'x'), 401, 'E007001')
    assertStatus(await call(app, 'DELETE', '/zato/sso/session', undefined, { current_app: 'CRM', current_ust: viaZato }), 200)
    assertStatus(await get(app, viaZato, 'x'), 401, 'E007001')
  })

  test('another user cannot end my session (403 E005001, nothing changes); a super-user can, twice', async (t) => {
    const app = await build(t)
    const alice = await mintUst({ sub: 'alice' })
    const bob = await mintUst({ sub: 'bob' })
    const admin = await mintUst({ sub: 'admin', roles: ['sso:super-user'] })
    assertStatus(await put(app, alice, 'theme', 'dark'), 200)
    assertStatus(await call(app, 'DELETE', '/sso/session', bob, { current_app: 'CRM', target_ust: alice }), 403, 'E005001')
    assert.equal((await get(app, alice, 'theme')).body.value, 'dark')
    assertStatus(await call(app, 'DELETE', '/sso/session', admin, { current_app: 'CRM', target_ust: alice }), 200)
    assertStatus(await call(app, 'DELETE', '/sso/session', admin, { current_app: 'CRM', target_ust: alice }), 200)
    assertStatus(await get(app, alice, 'theme'), 401, 'E007001')
    // The super-user's own session goes on.
    assertStatus(await put(app, admin, 'note', 1), 200)
  })

  test('a caller whose own session has ended cannot act on another session either', async (t) => {
    const app = await build(t)
    const admin = await mintUst({ sub: 'admin', roles: ['sso:super-user'] })
    const alice = await mintUst({ sub: 'alice' })
    assertStatus(await put(app, admin, 'x', 1), 200)
    assertStatus(await call(app, 'DELETE', '/sso/session', admin, { current_app: 'CRM' }), 200)
    assertStatus(await call(app, 'PUT', ATTR, admin, { current_app: 'CRM', target_ust: alice, name: 'x', value: 1 }), 401, 'E007001')
    assertStatus(await call(app, 'DELETE', '/sso/session', admin, { current_app: 'CRM', target_ust: alice }), 401, 'E007001')
    assertStatus(await put(app, alice, 'x', 1), 200)
  })

  test('bad input: 4xx envelopes, and the session goes on', async (t) => {
    const app = await build(t)
    const ust = await mintUst()
    assertStatus(await put(app, ust, 'x', 1), 200)
    assertStatus(await call(app, 'DELETE', '/sso/session', ust, {}), 400, 'E008003')
    assertStatus(await call(app, 'DELETE', '/sso/session', ust, { current_app: 'Nope' }), 403, 'E004001')
    assertStatus(await call(app, 'DELETE', '/sso/session', ust, { current_app: 'CRM', name: 'x' }), 400, 'E008002')
    assertStatus(await call(app, 'DELETE', '/sso/session', 'not-a-token', { current_app: 'CRM' }), 401, 'E007001')
    assertStatus(await call(app, 'GET', '/sso/session', ust), 405, 'E008001')
    assertStatus(await get(app, ust, 'x'), 200)
  })
})

describe('POST /sso/backchannel-logout', () => {
  test('a logout token with sid ends that session at once; 200 with Cache-Control: no-store', async (t) => {
    const app = await build(t)
    const sid = randomUUID()
    const ust = await mintUst({ sid, sub: 'alice' })
    const other = await mintUst({ sub: 'alice' })
    assertStatus(await put(app, ust, 'cart', [1]), 200)
    assertStatus(await put(app, other, 'cart', [2]), 200)
    const reply = await postLogout(app, form(await logoutToken({ sid, sub: 'alice' })))
    assertStatus(reply, 200)
    assert.equal(reply.headers['cache-control'], 'no-store')
    assertStatus(await get(app, ust, 'cart'), 401, 'E007001')
    assertStatus(await get(app, await mintUst({ sid }), 'cart'), 401, 'E007001')
    // With sid given, only that session ends.
    assert.deepEqual((await get(app, other, 'cart')).body.value, [2])
  })

  test('a logout token with sub only ends every session of that user, and new logins after it work', async (t) => {
    const app = await build(t)
    const first = await mintUst({ sub: 'carol' })
    const second = await mintUst({ sub: 'carol' })
    const dave = await mintUst({ sub: 'dave' })
    const unusedBefore = await mintUst({ sub: 'carol' })
    assertStatus(await put(app, first, 'a', 1), 200)
    assertStatus(await get(app, second, 'a'), 200)
    assertStatus(await put(app, dave, 'a', 1), 200)
    assertStatus(await postLogout(app, form(await logoutToken({ sub: 'carol' }))), 200)
    assertStatus(await get(app, first, 'a'), 401, 'E007001')
    assertStatus(await get(app, second, 'a'), 401, 'E007001')
    // A token issued before the logout that the service never saw: refused all the same.
    assertStatus(await get(app, unusedBefore, 'a'), 401, 'E007001')
    assertStatus(await get(app, dave, 'a'), 200)
    // A login after the logout (iat later) opens a new session.
    const fresh = await new SignJWT({ sid: randomUUID() }).setProtectedHeader({ alg: 'HS256' }).setIssuer(TEST_ISSUER)
      .setAudience(TEST_AUDIENCE).setSubject('carol').setIssuedAt(Math.floor(Date.now() / 1000) + 2).setExpirationTime('1h')
      .sign(new TextEncoder().encode(TEST_SECRET))
    assertStatus(await put(app, fresh, 'a', 2), 200)
  })

  test('a replayed logout token (same jti) is 400 and ends nothing more', async (t) => {
    const app = await build(t)
    const token = await logoutToken({ sub: 'erin' })
    assertStatus(await postLogout(app, form(token)), 200)
    const fresh = await new SignJWT({ sid: randomUUID() }).setProtectedHeader({ alg: 'HS256' }).setIssuer(TEST_ISSUER)
      .setAudience(TEST_AUDIENCE).setSubject('erin').setIssuedAt(Math.floor(Date.now() / 1000) + 2).setExpirationTime('1h')
      .sign(new TextEncoder().encode(TEST_SECRET))
    assertStatus(await put(app, fresh, 'a', 1), 200)
    assertStatus(await postLogout(app, form(token)), 400, 'E008002')
    // Had the replay counted, the new session would have ended with it.
    assertStatus(await get(app, fresh, 'a'), 200)
  })

  test('tokens the specification says to refuse: 400 E008002, and nothing ends', async (t) => {
    const app = await build(t)
    const sid = randomUUID()
    const ust = await mintUst({ sid, sub: 'frank' })
    assertStatus(await put(app, ust, 'a', 1), 200)
    const old = Math.floor(Date.now() / 1000) - 3600
    const bad: Array<[string, string]> = [
      ['a nonce', await logoutToken({ sid, nonce: 'n-1' })],
      ['no events claim', await logoutToken({ sid }, { omit: ['events'] })],
      ['events without the logout event', await logoutToken({ sid, events: { 'http://example.com/other': {} } })],
      ['events as a string', await logoutToken({ sid, events: BACKCHANNEL_LOGOUT_EVENT })],
      ['neither sid nor sub', await logoutToken({})],
      ['no jti', await logoutToken({ sid }, { omit: ['jti'] })],
      ['a wrong issuer', await logoutToken({ sid, iss: 'https://evil.test' })],
      ['a wrong audience', await logoutToken({ sid, aud: 'someone-else' })],
      ['no audience', await logoutToken({ sid }, { omit: ['aud'] })],
      ['another key', await logoutToken({ sid }, { secret: 'another-secret-that-is-at-least-32-bytes!!' })],
      ['issued an hour ago', await logoutToken({ sid }, { iat: old })],
      ['alg none', `${Buffer.from('{"alg":"none"}').toString('base64url')}.${Buffer.from(JSON.stringify({ iss: TEST_ISSUER, aud: TEST_AUDIENCE, sid, jti: 'x', iat: Math.floor(Date.now() / 1000), events: { [BACKCHANNEL_LOGOUT_EVENT]: {} } })).toString('base64url')}.`],
      ['not a JWT', 'not-a-jwt']
    ]
    for (const [what, token] of bad) {
      const reply = await postLogout(app, form(token))
      assert.equal(reply.statusCode, 400, `${what}: ${JSON.stringify(reply.body)}`)
      assert.deepEqual(reply.body.sub_status, ['E008002'], what)
      assert.match(reply.body.cid, /^[0-9a-f]{24}$/)
    }
    assertStatus(await get(app, ust, 'a'), 200)
  })

  test('malformed requests: missing field, extra or repeated fields, JSON instead of a form', async (t) => {
    const app = await build(t)
    const token = await logoutToken({ sub: 'gina' })
    assertStatus(await postLogout(app, ''), 400, 'E008003')
    assertStatus(await postLogout(app, 'other=1'), 400, 'E008003')
    assertStatus(await postLogout(app, `${form(token)}&state=1`), 400, 'E008002')
    assertStatus(await postLogout(app, `${form(token)}&${form(token)}`), 400, 'E008002')
    assertStatus(await postLogout(app, JSON.stringify({ logout_token: token }), 'application/json'), 415, 'E008001')
    // None of these used up the token's jti: it still works.
    assertStatus(await postLogout(app, form(token)), 200)
  })

  test('a logout token is never accepted as a UST', async (t) => {
    const app = await build(t)
    const token = await logoutToken({ sid: randomUUID(), sub: 'alice' })
    assertStatus(await put(app, token, 'a', 1), 401, 'E007001')
  })
})
