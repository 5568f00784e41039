import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import type { LightMyRequestResponse } from 'fastify'
import { build } from '../helper.ts'

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
