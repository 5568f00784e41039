import assert from 'node:assert/strict'
import { randomUUID } from 'node:crypto'
import { Writable } from 'node:stream'
import { describe, test, type TestContext } from 'node:test'
import { SignJWT } from 'jose'
import { pino } from 'pino'
import { loggerOptions } from '../../src/app.ts'
import { BACKCHANNEL_LOGOUT_EVENT } from '../../src/logout-token.ts'
import { sessionIdOf } from '../../src/ust.ts'
import { build, mintUst, TEST_AUDIENCE, TEST_ISSUER, TEST_SECRET, testConfig } from '../helper.ts'

interface AuditLine {
  cid: string
  msg: string
  audit: {
    operation: string
    app?: string
    caller?: string
    target_session?: string
    on_behalf?: boolean
    names?: string[]
    sessions_ended?: number
    status: number
    outcome: 'ok' | 'error'
    sub_status?: string
  }
}

async function loggedApp (t: TestContext) {
  const lines: string[] = []
  const stream = new Writable({
    write (chunk: Buffer, _encoding, callback) {
      lines.push(...chunk.toString().split('\n').filter((line) => line !== ''))
      callback()
    }
  })
  const logger = pino({ ...loggerOptions(testConfig({ LOG_LEVEL: 'info' })) }, stream)
  const app = await build(t, { LOG_LEVEL: 'info' }, { loggerInstance: logger })
  const audits = () => lines.map((line) => JSON.parse(line) as AuditLine).filter((line) => line.msg === 'audit')
  return { app, audits, text: () => lines.join('\n') }
}

describe('audit log', () => {
  test('one line per write, delete and session end, with cid, operation, app, caller, target, names and outcome; never values or tokens', async (t) => {
    const { app, audits, text } = await loggedApp(t)
    const sid = randomUUID()
    const ust = await mintUst({ sub: 'alice', sid })
    const target = sessionIdOf(TEST_ISSUER, sid)
    const headers = { authorization: `Bearer ${ust}`, 'content-type': 'application/json' }
    const put = await app.inject({ method: 'PUT', url: '/sso/session/attr', headers, payload: { current_app: 'CRM', data: [{ name: 'card', value: 'secret-4111', encrypt: true }, { name: 'theme', value: 'plain-dark' }] } })
    assert.equal(put.statusCode, 200)
    const conflict = await app.inject({ method: 'POST', url: '/sso/session/attr', headers, payload: { current_app: 'CRM', name: 'theme', value: 'x' } })
    assert.equal(conflict.statusCode, 409)
    // Reads of one's own session are not audited.
    assert.equal((await app.inject({ method: 'GET', url: '/sso/session/attr?current_app=CRM&name=card', headers: { authorization: `Bearer ${ust}` } })).statusCode, 200)
    const deleted = await app.inject({ method: 'DELETE', url: '/sso/session/attr?current_app=CRM&name=theme', headers: { authorization: `Bearer ${ust}` } })
    assert.equal(deleted.statusCode, 200)
    const ended = await app.inject({ method: 'DELETE', url: '/sso/session', headers, payload: { current_app: 'CRM' } })
    assert.equal(ended.statusCode, 200)

    const lines = audits()
    assert.deepEqual(lines.map((line) => [line.audit.operation, line.audit.outcome, line.audit.status]), [
      ['set', 'ok', 200], ['create', 'error', 409], ['delete', 'ok', 200], ['end-session', 'ok', 200]
    ])
    assert.deepEqual(lines.map((line) => line.cid), [put, conflict, deleted, ended].map((reply) => reply.headers['x-cid']))
    for (const line of lines) {
      assert.equal(line.audit.app, 'CRM')
      assert.equal(line.audit.caller, 'alice')
      assert.equal(line.audit.target_session, target)
      assert.equal(line.audit.on_behalf, false)
    }
    assert.deepEqual(lines[0]!.audit.names, ['card', 'theme'])
    assert.equal(lines[1]!.audit.sub_status, 'E009001')
    assert.deepEqual(lines[2]!.audit.names, ['theme'])
    const all = text()
    for (const secret of ['secret-4111', 'plain-dark', ust]) assert.equal(all.includes(secret), false, `${secret.slice(0, 12)}… reached the logs`)
  })

  test('a super-user reading another user\'s session is audited, marked on_behalf', async (t) => {
    const { app, audits } = await loggedApp(t)
    const admin = await mintUst({ sub: 'admin', roles: ['sso:super-user'] })
    const bob = await mintUst({ sub: 'bob' })
    const reply = await app.inject({ method: 'GET', url: '/sso/session/attr/names', headers: { authorization: `Bearer ${admin}`, 'content-type': 'application/json' }, payload: { current_app: 'Portal', target_ust: bob } })
    assert.equal(reply.statusCode, 200)
    const [line, ...more] = audits()
    assert.equal(more.length, 0)
    assert.equal(line?.audit.operation, 'names')
    assert.equal(line?.audit.on_behalf, true)
    assert.equal(line?.audit.caller, 'admin')
    assert.equal(line?.audit.app, 'Portal')
  })

  test('back-channel logout is audited with what it ended; refused requests before authentication are not', async (t) => {
    const { app, audits } = await loggedApp(t)
    const token = await new SignJWT({ events: { [BACKCHANNEL_LOGOUT_EVENT]: {} }, jti: randomUUID(), sub: 'zoe' })
      .setProtectedHeader({ alg: 'HS256' }).setIssuer(TEST_ISSUER).setAudience(TEST_AUDIENCE).setIssuedAt().sign(new TextEncoder().encode(TEST_SECRET))
    const reply = await app.inject({ method: 'POST', url: '/sso/backchannel-logout', headers: { 'content-type': 'application/x-www-form-urlencoded' }, payload: `logout_token=${token}` })
    assert.equal(reply.statusCode, 200)
    assert.equal((await app.inject({ method: 'PUT', url: '/sso/session/attr', headers: { authorization: 'Bearer nope' }, payload: { current_app: 'CRM', name: 'a', value: 1 } })).statusCode, 401)
    const lines = audits()
    assert.equal(lines.length, 1)
    assert.equal(lines[0]!.audit.operation, 'logout')
    assert.equal(lines[0]!.audit.sessions_ended, 0)
    assert.equal(lines[0]!.audit.outcome, 'ok')
  })
})

describe('security headers', () => {
  test('API responses carry a locked-down CSP, nosniff, frame and referrer policies, no-store; /docs gets the UI\'s own CSP', async (t) => {
    const app = await build(t)
    for (const url of ['/healthz', '/sso/session/attr?current_app=CRM&name=a', '/nowhere']) {
      const reply = await app.inject({ method: 'GET', url })
      assert.equal(reply.headers['content-security-policy'], "default-src 'none';frame-ancestors 'none'", url)
      assert.equal(reply.headers['x-content-type-options'], 'nosniff', url)
      assert.equal(reply.headers['x-frame-options'], 'DENY', url)
      assert.equal(reply.headers['referrer-policy'], 'no-referrer', url)
      assert.equal(reply.headers['cross-origin-resource-policy'], 'same-origin', url)
      assert.equal(reply.headers['cache-control'], 'no-store', url)
      assert.ok(reply.headers['strict-transport-security'] !== undefined, url)
      assert.equal(reply.headers['x-powered-by'], undefined, url)
    }
    const docs = await app.inject({ method: 'GET', url: '/docs' })
    assert.equal(docs.statusCode, 200)
    const csp = String(docs.headers['content-security-policy'])
    assert.match(csp, /script-src 'self'/)
    assert.doesNotMatch(csp, /upgrade-insecure-requests/)
  })
})
