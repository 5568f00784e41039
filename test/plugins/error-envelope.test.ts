import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import type { LightMyRequestResponse } from 'fastify'
import { build, mintUst } from '../helper.ts'

type Method = 'DELETE' | 'GET' | 'PATCH' | 'POST' | 'PUT'
const METHODS: Method[] = ['DELETE', 'GET', 'PATCH', 'POST', 'PUT']

interface Envelope {
  cid: string
  status: string
  sub_status: string[]
  message: string
}

function assertEnvelope (reply: LightMyRequestResponse, status: number, code: string): Envelope {
  assert.equal(reply.statusCode, status, reply.body)
  const body = reply.json<Envelope>()
  assert.equal(body.status, 'error')
  assert.equal(body.sub_status[0], code)
  assert.equal(body.cid, reply.headers['x-cid'])
  return body
}

describe('405: the Allow header names the methods the path serves (RFC 9110 §15.5.6)', () => {
  const served: Array<[string, Method[]]> = [
    ['/sso/session/attr', ['DELETE', 'GET', 'PATCH', 'POST', 'PUT']],
    ['/zato/sso/session/attr/exists', ['GET']],
    ['/sso/session/attr/names/', ['GET']],
    ['/sso/session', ['DELETE']],
    ['/zato/sso/session', ['DELETE']],
    ['/sso/backchannel-logout', ['POST']],
    ['/healthz', ['GET']],
    ['/readyz', ['GET']]
  ]
  for (const [path, methods] of served) {
    test(`${path}: every other method is 405 with Allow: ${methods.join(', ')}`, async (t) => {
      const app = await build(t)
      for (const method of METHODS.filter((candidate) => !methods.includes(candidate))) {
        const reply = await app.inject({ method, url: `${path}?current_app=CRM` })
        assertEnvelope(reply, 405, 'E008001')
        assert.equal(reply.headers.allow, methods.join(', '), `${method} ${path}`)
      }
    })
  }

  test('a method the path serves is never answered 405, and an unknown path is 404 without Allow', async (t) => {
    const app = await build(t)
    for (const [path, methods] of served) {
      for (const method of methods) {
        const reply = await app.inject({ method, url: path })
        assert.notEqual(reply.statusCode, 405, `${method} ${path}`)
        assert.notEqual(reply.statusCode, 404, `${method} ${path}`)
      }
    }
    const unknown = await app.inject({ method: 'GET', url: '/sso/session/attrs' })
    assertEnvelope(unknown, 404, 'E008001')
    assert.equal(unknown.headers.allow, undefined)
  })
})

// RFC 6750 §3: auth-param values are quoted strings of printable ASCII without `"` and `\`.
const CHALLENGE_WITH_ERROR = /^Bearer realm="sso-attrs", error="invalid_token", error_description="[\x20\x21\x23-\x5b\x5d-\x7e]+"$/

describe('401: every one carries WWW-Authenticate: Bearer (RFC 6750 §3)', () => {
  test('no token on DELETE /sso/session (both prefixes): 401 E007001, the realm and no error attribute', async (t) => {
    const app = await build(t)
    for (const url of ['/sso/session', '/zato/sso/session']) {
      for (const payload of [{ current_app: 'CRM' }, {}]) {
        const reply = await app.inject({ method: 'DELETE', url, payload })
        assertEnvelope(reply, 401, 'E007001')
        assert.equal(reply.headers['www-authenticate'], 'Bearer realm="sso-attrs"', url)
      }
    }
  })

  test('a malformed Bearer header, two Authorization headers, an unknown token, an ended session: invalid_token', async (t) => {
    const app = await build(t)
    const ust = await mintUst()
    const ended = await app.inject({ method: 'DELETE', url: '/sso/session', headers: { authorization: `Bearer ${ust}` }, payload: { current_app: 'CRM' } })
    assert.equal(ended.statusCode, 200, ended.body)
    const other = await mintUst()
    const requests: Array<[string, Record<string, string | string[]>, string | undefined]> = [
      ['malformed', { authorization: 'Bearer two words' }, 'Authorization must be \'Bearer <ust>\''],
      ['empty', { authorization: 'Bearer' }, undefined],
      ['repeated', { authorization: [`Bearer ${other}`, `Bearer ${other}`] }, 'Give one Authorization header'],
      ['garbage', { authorization: 'Bearer garbage' }, undefined],
      ['ended', { authorization: `Bearer ${ust}` }, 'Session has ended']
    ]
    for (const [label, headers, description] of requests) {
      const reply = await app.inject({ method: 'GET', url: '/sso/session/attr/names?current_app=CRM', headers })
      const body = assertEnvelope(reply, 401, 'E007001')
      const challenge = String(reply.headers['www-authenticate'])
      assert.match(challenge, CHALLENGE_WITH_ERROR, label)
      if (description !== undefined) assert.ok(challenge.endsWith(`error_description="${description}"`), `${label}: ${challenge}`)
      assert.ok(!challenge.includes(ust) && !challenge.includes(other), 'the token is not echoed')
      if (description !== undefined) assert.equal(body.message.replaceAll('"', '\''), description)
    }
  })

  test('a current_ust field that does not verify is a token given: invalid_token', async (t) => {
    const app = await build(t)
    const forged = await mintUst({ secret: 'another-secret-that-is-at-least-32-bytes!!' })
    const reply = await app.inject({ method: 'GET', url: '/sso/session/attr/names', payload: { current_app: 'CRM', current_ust: forged } })
    assertEnvelope(reply, 401, 'E007001')
    assert.match(String(reply.headers['www-authenticate']), CHALLENGE_WITH_ERROR)
  })

  test('an empty or overlong current_ust is 401 invalid_token like a malformed bearer; one of the wrong type is 400', async (t) => {
    const app = await build(t)
    for (const currentUst of ['', 'x'.repeat(8193)]) {
      for (const url of ['/sso/session/attr/names', '/zato/sso/session']) {
        const reply = await app.inject({ method: url.endsWith('names') ? 'GET' : 'DELETE', url, payload: { current_app: 'CRM', current_ust: currentUst } })
        assertEnvelope(reply, 401, 'E007001')
        assert.equal(reply.headers['www-authenticate'], 'Bearer realm="sso-attrs", error="invalid_token", error_description="current_ust is not a UST"')
      }
    }
    const typed = await app.inject({ method: 'GET', url: '/sso/session/attr/names', payload: { current_app: 'CRM', current_ust: 7 } })
    assertEnvelope(typed, 400, 'E008002')
    assert.equal(typed.headers['www-authenticate'], undefined)
  })

  test('answers other than 401 carry no challenge', async (t) => {
    const app = await build(t)
    const ust = await mintUst()
    const forbidden = await app.inject({ method: 'GET', url: '/sso/session/attr/names?current_app=Nope', headers: { authorization: `Bearer ${ust}` } })
    assertEnvelope(forbidden, 403, 'E004001')
    const missingApp = await app.inject({ method: 'GET', url: '/sso/session/attr/names', headers: { authorization: `Bearer ${ust}` } })
    assertEnvelope(missingApp, 400, 'E008003')
    for (const reply of [forbidden, missingApp]) assert.equal(reply.headers['www-authenticate'], undefined)
  })
})
