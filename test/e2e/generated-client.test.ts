import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'
import { setTimeout as sleep } from 'node:timers/promises'
import createClient from 'openapi-fetch'
import type { paths } from '../generated/api.d.ts'
import { mintUst } from '../helper.ts'
import { awayFromWindowEdge, DEVELOPMENT_SERVER, MAX_VALUE_BYTES, RATE_LIMIT_MAX, startService, type Service } from './generated-client-server.ts'

// A TypeScript client generated from openapi.yaml (openapi-typescript, `npm run client:generate`,
// run by `npm test` before the typecheck) drives the service over a real socket on a real
// redis-server, at the document's development server URL. If the contract and the service
// drift apart, this file stops compiling or these assertions fail.
// test/e2e/generated-client-hey-api.test.ts runs the same scenario with another generator.

let service: Service

before(async () => {
  service = await startService()
})

after(async () => {
  await service.close()
})

/** A generated client that sends this UST as `Authorization: Bearer`. */
function clientFor (ust: string) {
  return createClient<paths>({ baseUrl: DEVELOPMENT_SERVER, headers: { authorization: `Bearer ${ust}` } })
}

const P = '/sso/session/attr'

interface ErrorBody { cid: string, status: 'error', sub_status: string[], message?: string, details?: Array<{ path: string, message: string }> }

/** The answer was an error envelope with this HTTP status and sub_status. */
function assertError (result: { error?: ErrorBody | undefined, response: Response }, status: number, subStatus: string): ErrorBody {
  assert.equal(result.response.status, status, JSON.stringify(result.error))
  assert.ok(result.error !== undefined, 'an error body')
  assert.equal(result.error.status, 'error')
  assert.deepEqual(result.error.sub_status, [subStatus])
  assert.equal(result.response.headers.get('x-cid'), result.error.cid)
  return result.error
}

describe('a client generated from openapi.yaml, over a real socket, on Redis', () => {
  test('set, then get', async () => {
    const client = clientFor(await mintUst())
    const set = await client.PUT(P, { body: { current_app: 'CRM', name: 'theme', value: 'dark' } })
    assert.equal(set.response.status, 200)
    assert.equal(set.data?.status, 'ok')
    assert.equal(set.data?.name, 'theme')
    assert.equal(set.data?.version, 1)
    assert.equal(set.data?.expiration_time, null)

    const got = await client.GET(P, { params: { query: { current_app: 'CRM', name: 'theme' } } })
    assert.equal(got.response.status, 200)
    assert.equal(got.data?.found, true)
    assert.equal(got.data?.value, 'dark')
    assert.equal(got.data?.is_encrypted, false)
    assert.equal(got.data?.version, 1)
    assert.match(got.data?.creation_time ?? '', /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/)
  })

  test('batch set, batch get, exists, names, delete', async () => {
    const client = clientFor(await mintUst())
    const set = await client.PUT(P, {
      body: { current_app: 'CRM', expiration: 600, data: [{ name: 'a', value: { n: 1 } }, { name: 'b', value: [1, 2], expiration: null }] }
    })
    assert.equal(set.response.status, 200)
    assert.deepEqual(Object.keys(set.data?.result ?? {}).sort(), ['a', 'b'])
    assert.equal(set.data?.result?.a?.version, 1)
    assert.equal(typeof set.data?.result?.a?.expiration_time, 'string')
    assert.equal(set.data?.result?.b?.expiration_time, null)

    const got = await client.GET(P, { params: { query: { current_app: 'CRM', data: ['a', 'b', 'missing'] } } })
    assert.equal(got.response.status, 200)
    const result = got.data?.result ?? {}
    assert.deepEqual(result.a?.value, { n: 1 })
    assert.deepEqual(result.b?.value, [1, 2])
    assert.deepEqual(result.missing, { found: false })

    const exists = await client.GET(`${P}/exists`, { params: { query: { current_app: 'CRM', data: ['a', 'missing'] } } })
    assert.deepEqual(exists.data?.result, { a: true, missing: false })

    const names = await client.GET(`${P}/names`, { params: { query: { current_app: 'CRM' } } })
    assert.deepEqual(names.data?.result, ['a', 'b'])

    const deleted = await client.DELETE(P, { params: { query: { current_app: 'CRM', name: 'a' } } })
    assert.equal(deleted.data?.deleted, true)
    const again = await client.DELETE(P, { params: { query: { current_app: 'CRM', data: ['a', 'b'] } } })
    assert.deepEqual(again.data?.result, { a: false, b: true })
  })

  test('an attribute with expiration 1 is gone after 1.3 s', async () => {
    const client = clientFor(await mintUst())
    const set = await client.PUT(P, { body: { current_app: 'CRM', name: 'otp', value: '123456', expiration: 1 } })
    assert.equal(set.response.status, 200)
    assert.ok(Date.parse(set.data?.expiration_time ?? '') > Date.now(), 'expires in the future')
    const query = { current_app: 'CRM', name: 'otp' }
    assert.equal((await client.GET(P, { params: { query } })).data?.found, true)
    await sleep(1300)
    const got = await client.GET(P, { params: { query } })
    assert.equal(got.response.status, 200)
    assert.equal(got.data?.found, false)
    assert.equal(got.data?.value, undefined)
  })

  test('an encrypted value reads back in clear, or as ciphertext with decrypt=false', async () => {
    const client = clientFor(await mintUst())
    const secret = { key: 's3cr3t', scopes: ['read'] }
    const set = await client.PUT(P, { body: { current_app: 'CRM', name: 'api_key', value: secret, encrypt: true } })
    assert.equal(set.response.status, 200)

    const clear = await client.GET(P, { params: { query: { current_app: 'CRM', name: 'api_key' } } })
    assert.deepEqual(clear.data?.value, secret)
    assert.equal(clear.data?.is_encrypted, true)

    const sealed = await client.GET(P, { params: { query: { current_app: 'CRM', name: 'api_key', decrypt: false } } })
    assert.equal(sealed.data?.is_encrypted, true)
    assert.equal(typeof sealed.data?.value, 'string')
    assert.match(sealed.data?.value as string, /^gcm1\./)
    assert.ok(!(sealed.data?.value as string).includes('s3cr3t'))
  })

  test('the Zato alias (x-aliases) answers the same operation under /zato, the UST in the body', async () => {
    const ust = await mintUst()
    const zato = createClient<paths>({ baseUrl: `${DEVELOPMENT_SERVER}/zato` })
    const set = await zato.PUT(P, { body: { current_app: 'CRM', current_ust: ust, name: 'lang', value: 'en' } })
    assert.equal(set.response.status, 200)
    assert.equal(set.data?.version, 1)
    const got = await clientFor(ust).GET(P, { params: { query: { current_app: 'CRM', name: 'lang' } } })
    assert.equal(got.data?.value, 'en', 'the same session under the canonical path')
  })

  describe('each error class', () => {
    // A body with both name and data, or neither, does not compile: the document's oneOf.
    test('400 E008002: both name and data in the query string', async () => {
      const client = clientFor(await mintUst())
      const error = assertError(await client.GET(P, { params: { query: { current_app: 'CRM', name: 'a', data: ['b'] } } }), 400, 'E008002')
      assert.deepEqual(error.details?.map((detail) => detail.path), ['/data'])
    })

    test('400 E008002: an expiration below 1', async () => {
      const client = clientFor(await mintUst())
      const error = assertError(await client.PUT(P, { body: { current_app: 'CRM', name: 'a', value: 1, expiration: 0 } }), 400, 'E008002')
      assert.deepEqual(error.details?.map((detail) => detail.path), ['/expiration'])
    })

    test('400 E008003: neither name nor data', async () => {
      const client = clientFor(await mintUst())
      assertError(await client.GET(`${P}/exists`, { params: { query: { current_app: 'CRM' } } }), 400, 'E008003')
    })

    test('401 E007001: a token signed with another key, and no token at all', async () => {
      const forged = clientFor(await mintUst({ secret: 'another-secret-that-is-at-least-32-bytes' }))
      assertError(await forged.GET(P, { params: { query: { current_app: 'CRM', name: 'a' } } }), 401, 'E007001')
      const anonymous = createClient<paths>({ baseUrl: DEVELOPMENT_SERVER })
      const missing = await anonymous.GET(`${P}/names`, { params: { query: { current_app: 'CRM' } } })
      assertError(missing, 401, 'E007001')
      assert.equal(missing.response.headers.get('www-authenticate'), 'Bearer realm="sso-attrs"')
    })

    test('403 E004001: an app that is not allowed', async () => {
      const client = clientFor(await mintUst())
      assertError(await client.GET(`${P}/names`, { params: { query: { current_app: 'Nope' } } }), 403, 'E004001')
    })

    test('403 E005001: another user\'s session, unless super-user', async () => {
      const bobs = await mintUst({ sub: 'bob' })
      const alice = clientFor(await mintUst({ sub: 'alice' }))
      assertError(await alice.GET(`${P}/names`, { params: { query: { current_app: 'CRM', target_ust: bobs } } }), 403, 'E005001')
      const admin = clientFor(await mintUst({ sub: 'admin', roles: ['sso:super-user'] }))
      const allowed = await admin.GET(`${P}/names`, { params: { query: { current_app: 'CRM', target_ust: bobs } } })
      assert.equal(allowed.response.status, 200)
    })

    test('404 E009002: update of a missing attribute', async () => {
      const client = clientFor(await mintUst())
      assertError(await client.PATCH(P, { body: { current_app: 'CRM', name: 'nothing', value: 1 } }), 404, 'E009002')
    })

    test('409 E009001: create of an existing attribute', async () => {
      const client = clientFor(await mintUst())
      assert.equal((await client.POST(P, { body: { current_app: 'CRM', name: 'a', value: 1 } })).response.status, 200)
      assertError(await client.POST(P, { body: { current_app: 'CRM', name: 'a', value: 2 } }), 409, 'E009001')
    })

    test('409 E011005: if_version does not match', async () => {
      const client = clientFor(await mintUst())
      const first = await client.PUT(P, { body: { current_app: 'CRM', name: 'a', value: 1 } })
      assert.equal(first.data?.version, 1)
      const second = await client.PATCH(P, { body: { current_app: 'CRM', name: 'a', value: 2, if_version: 1 } })
      assert.equal(second.data?.version, 2)
      assertError(await client.PUT(P, { body: { current_app: 'CRM', name: 'a', value: 3, if_version: 1 } }), 409, 'E011005')
      const got = await client.GET(P, { params: { query: { current_app: 'CRM', name: 'a' } } })
      assert.equal(got.data?.value, 2, 'the failed write changed nothing')
    })

    test('413 E011001: a value over the configured size', async () => {
      const client = clientFor(await mintUst())
      const error = assertError(await client.PUT(P, { body: { current_app: 'CRM', name: 'big', value: 'x'.repeat(MAX_VALUE_BYTES + 1) } }), 413, 'E011001')
      assert.deepEqual(error.details?.map((detail) => detail.path), ['/value'])
    })

    test('415 E008001: a body sent as another media type', async () => {
      const client = clientFor(await mintUst())
      const refused = await client.PUT(P, { body: { current_app: 'CRM', name: 'a', value: 1 }, headers: { 'content-type': 'text/plain' } })
      assertError(refused, 415, 'E008001')
      assert.equal((await client.GET(`${P}/exists`, { params: { query: { current_app: 'CRM', name: 'a' } } })).data?.result, false, 'nothing stored')
    })

    test('422 E011008: an Idempotency-Key reused for another request; its repeat replays the first answer', async () => {
      const client = clientFor(await mintUst())
      const header = { 'idempotency-key': `k-${Date.now()}` }
      const first = await client.PUT(P, { params: { header }, body: { current_app: 'CRM', name: 'a', value: 1 } })
      assert.equal(first.data?.version, 1)
      const repeat = await client.PUT(P, { params: { header }, body: { current_app: 'CRM', name: 'a', value: 1 } })
      assert.equal(repeat.data?.version, 1, 'the repeat wrote nothing')
      assertError(await client.PUT(P, { params: { header }, body: { current_app: 'CRM', name: 'a', value: 2 } }), 422, 'E011008')
      assert.equal((await client.GET(P, { params: { query: { current_app: 'CRM', name: 'a' } } })).data?.value, 1)
    })

    test('429 E011002: over the rate limit, with Retry-After', async () => {
      await awayFromWindowEdge()
      const client = clientFor(await mintUst({ sub: `greedy-${Date.now()}` }))
      const first = await client.GET(`${P}/names`, { params: { query: { current_app: 'CRM' } } })
      assert.equal(first.response.status, 200)
      assert.equal(first.response.headers.get('x-ratelimit-limit'), String(RATE_LIMIT_MAX))
      for (let sent = 1; sent < RATE_LIMIT_MAX; sent++) await client.GET(`${P}/names`, { params: { query: { current_app: 'CRM' } } })
      const refused = await client.GET(`${P}/names`, { params: { query: { current_app: 'CRM' } } })
      assertError(refused, 429, 'E011002')
      assert.match(refused.response.headers.get('retry-after') ?? '', /^\d+$/)
    })

    // Last: it stops the suite's redis-server.
    test('503 E011003: the store is down, with Retry-After', async () => {
      await service.stopRedis()
      const down = await clientFor(await mintUst()).GET(`${P}/names`, { params: { query: { current_app: 'CRM' } } })
      assertError(down, 503, 'E011003')
      assert.equal(down.response.headers.get('retry-after'), '1')
    })
  })
})
