import assert from 'node:assert/strict'
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { describe, test } from 'node:test'
import helmet, { type HelmetOptions } from 'helmet'
import { securityHeaders } from '../../plugins/security-headers.ts'
import { API_SECURITY_HEADERS } from '../../src/app.ts'
import { build } from '../helper.ts'

/** The headers helmet itself puts on a real response (what @fastify/helmet would send). */
async function helmetOnARealResponse (options: HelmetOptions): Promise<Record<string, string>> {
  const middleware = helmet(options)
  const server = createServer((request, response) => {
    response.setHeader('x-powered-by', 'something')
    middleware(request, response, () => response.end())
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  try {
    const response = await fetch(`http://127.0.0.1:${(server.address() as AddressInfo).port}/`)
    const headers: Record<string, string> = {}
    for (const [name, value] of response.headers) {
      if (!['date', 'connection', 'keep-alive', 'content-length', 'transfer-encoding'].includes(name)) headers[name] = value
    }
    return headers
  } finally {
    server.close()
  }
}

const APP_OPTIONS: HelmetOptions = API_SECURITY_HEADERS

describe('security headers', () => {
  test('computed once, they are exactly the headers helmet sets on a response', async () => {
    for (const options of [APP_OPTIONS, {}, { hsts: false, xFrameOptions: { action: 'deny' as const } }]) {
      assert.deepEqual(securityHeaders(options), await helmetOnARealResponse(options))
    }
    assert.equal(securityHeaders(APP_OPTIONS)['content-security-policy'], "default-src 'none';frame-ancestors 'none'")
  })

  test('a JSON API gets the OWASP REST set, not the headers meant for HTML documents', () => {
    assert.deepEqual(securityHeaders(APP_OPTIONS), {
      'content-security-policy': "default-src 'none';frame-ancestors 'none'",
      'cross-origin-resource-policy': 'same-origin',
      'referrer-policy': 'no-referrer',
      'strict-transport-security': 'max-age=31536000; includeSubDomains',
      'x-content-type-options': 'nosniff',
      'x-frame-options': 'DENY'
    })
  })

  test('every kind of API response carries them: success, client error, unknown route, unsupported method', async (t) => {
    const app = await build(t)
    const expected = securityHeaders(APP_OPTIONS)
    const replies = [
      await app.inject({ method: 'GET', url: '/healthz' }),
      await app.inject({ method: 'GET', url: '/sso/session/attr?current_app=CRM&name=a' }),
      await app.inject({ method: 'PUT', url: '/sso/session/attr', headers: { 'content-type': 'application/json' }, payload: '{"nope": 1' }),
      await app.inject({ method: 'GET', url: '/nowhere' }),
      await app.inject({ method: 'TRACE', url: '/sso/session/attr' })
    ]
    for (const reply of replies) {
      for (const [name, value] of Object.entries(expected)) assert.equal(reply.headers[name], value, `${reply.statusCode} ${name}`)
      assert.equal(reply.headers['x-powered-by'], undefined)
    }
    assert.deepEqual(replies.map((reply) => reply.statusCode), [200, 401, 400, 404, 405])
  })
})
