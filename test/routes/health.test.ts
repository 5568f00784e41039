import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import { StoreUnavailableError } from '../../src/errors.ts'
import { MemoryStore } from '../../src/store/memory-store.ts'
import type { Store } from '../../src/store/types.ts'
import { build } from '../helper.ts'

const CID = /^[0-9a-f]{24}$/

interface OpenApiDocument {
  openapi: string
  info: { title: string, version: string }
  paths: Record<string, Record<string, { security?: Array<Record<string, string[]>>, responses?: Record<string, unknown> }>>
  components?: { securitySchemes?: Record<string, { type: string, scheme?: string, bearerFormat?: string }> }
}

/** A store whose ping fails as an unreachable Redis does. */
function unreachableStore (): Store {
  const inner = new MemoryStore({ sessionIdleTtlMs: 3_600_000, sessionMaxTtlMs: 86_400_000, maxAttributesPerSession: 1000 })
  return {
    kind: 'redis',
    write: async (...args) => await inner.write(...args),
    get: async (...args) => await inner.get(...args),
    exists: async (...args) => await inner.exists(...args),
    delete: async (...args) => await inner.delete(...args),
    names: async (...args) => await inner.names(...args),
    eraseUserAttributes: async (...args) => await inner.eraseUserAttributes(...args),
    endSession: async (...args) => await inner.endSession(...args),
    endUserSessions: async (...args) => await inner.endUserSessions(...args),
    admitSession: async (...args) => await inner.admitSession(...args),
    indexSession: async (...args) => await inner.indexSession(...args),
    isSessionEnded: async (...args) => await inner.isSessionEnded(...args),
    rememberOnce: async (...args) => await inner.rememberOnce(...args),
    forgetOnce: async (...args) => await inner.forgetOnce(...args),
    countHits: async (...args) => await inner.countHits(...args),
    ping: async () => { throw new StoreUnavailableError(new Error('connect ECONNREFUSED 127.0.0.1:6379')) },
    close: async () => await inner.close()
  }
}

describe('GET /healthz', () => {
  test('answers 200 ok in an envelope', async (t) => {
    const app = await build(t)
    const response = await app.inject({ method: 'GET', url: '/healthz' })
    assert.equal(response.statusCode, 200)
    const body = response.json<{ cid: string, status: string }>()
    assert.equal(body.status, 'ok')
    assert.match(body.cid, CID)
    assert.equal(response.headers['x-cid'], body.cid)
    assert.equal(Object.hasOwn(body, 'sub_status'), false)
  })

  test('answers 200 even when the store is unreachable (liveness is the process only)', async (t) => {
    const app = await build(t, {}, { store: unreachableStore() })
    const response = await app.inject({ method: 'GET', url: '/healthz' })
    assert.equal(response.statusCode, 200)
  })
})

describe('GET /readyz', () => {
  test('answers 200 with the store kind', async (t) => {
    const app = await build(t)
    const response = await app.inject({ method: 'GET', url: '/readyz' })
    assert.equal(response.statusCode, 200, response.body)
    const body = response.json<{ cid: string, status: string, store: string }>()
    assert.equal(body.status, 'ok')
    assert.equal(body.store, 'memory')
    assert.match(body.cid, CID)
  })

  test('answers 503 E011003 when the store is unreachable, without internal detail', async (t) => {
    const app = await build(t, {}, { store: unreachableStore() })
    const response = await app.inject({ method: 'GET', url: '/readyz' })
    assert.equal(response.statusCode, 503)
    const body = response.json<{ cid: string, status: string, sub_status: string[] }>()
    assert.equal(body.status, 'error')
    assert.deepEqual(body.sub_status, ['E011003'])
    // The cid is random hex: it may contain 6379 by chance.
    assert.doesNotMatch(response.body.replace(body.cid, ''), /ECONNREFUSED|6379/)
  })
})

describe('GET /openapi.json', () => {
  test('is an OpenAPI 3.1 document with the bearer scheme and every attribute route', async (t) => {
    const app = await build(t)
    const response = await app.inject({ method: 'GET', url: '/openapi.json' })
    assert.equal(response.statusCode, 200)
    assert.match(String(response.headers['content-type']), /^application\/json/)
    const doc = response.json<OpenApiDocument>()
    assert.match(doc.openapi, /^3\.1\./)
    assert.equal(doc.info.title, 'sso-attrs')
    const bearer = doc.components?.securitySchemes?.bearerAuth
    assert.deepEqual({ type: bearer?.type, scheme: bearer?.scheme }, { type: 'http', scheme: 'bearer' })
    // The Zato paths are described once, as aliases of these (test/openapi-lint.test.ts).
    const prefix = '/sso/session/attr'
    const base = doc.paths[prefix]
    assert.ok(base !== undefined, `${prefix} is documented`)
    assert.deepEqual(Object.keys(base).sort(), ['delete', 'get', 'patch', 'post', 'put'])
    assert.ok(base.put?.security?.some((requirement) => Object.hasOwn(requirement, 'bearerAuth')), 'PUT names the bearer scheme')
    for (const status of ['200', '400', '401', '403', '409', '413', '503']) {
      assert.ok(base.put?.responses?.[status] !== undefined, `PUT ${prefix} documents ${status}`)
    }
    assert.ok(doc.paths[`${prefix}/exists`]?.get !== undefined)
    assert.ok(doc.paths[`${prefix}/names`]?.get !== undefined)
    assert.ok(doc.paths['/healthz']?.get !== undefined)
    assert.ok(doc.paths['/readyz']?.get !== undefined)
  })
})

describe('GET /docs', () => {
  test('serves the Swagger UI as HTML', async (t) => {
    const app = await build(t)
    const response = await app.inject({ method: 'GET', url: '/docs' })
    assert.equal(response.statusCode, 200)
    assert.match(String(response.headers['content-type']), /^text\/html/)
    assert.match(response.body, /swagger/i)
  })
})
