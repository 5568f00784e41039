import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import type { AddressInfo } from 'node:net'
import { after, before, describe, test } from 'node:test'
import { setTimeout as sleep } from 'node:timers/promises'
import createClient from 'openapi-fetch'
import { RedisServer } from '../fixtures/redis.ts'
import type { paths } from '../generated/api.d.ts'
import { build, mintUst } from '../helper.ts'

// A TypeScript client generated from openapi.yaml (openapi-typescript, `npm run client:generate`,
// run by `npm test` before the typecheck) drives the service over a real socket on a real
// redis-server. If the contract and the service drift apart, this file stops compiling or
// these assertions fail.

let redis: RedisServer
let base: string
let closeApp: () => Promise<void>
const MAX_VALUE_BYTES = 1024

before(async () => {
  redis = await RedisServer.start()
  const app = await build(undefined, {
    SSO_STORE: 'redis',
    REDIS_URL: redis.url,
    SSO_KEY_PREFIX: `client-${randomBytes(4).toString('hex')}:`,
    SSO_MAX_VALUE_BYTES: MAX_VALUE_BYTES
  })
  await app.listen({ port: 0, host: '127.0.0.1' })
  base = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`
  closeApp = async () => { await app.close() }
})

after(async () => {
  await closeApp()
  await redis.close()
})

/** A generated client that sends this UST as `Authorization: Bearer`. */
function clientFor (ust: string) {
  return createClient<paths>({ baseUrl: base, headers: { authorization: `Bearer ${ust}` } })
}

// The document marks every request body required, GET's included (@fastify/swagger does so
// for any body schema), but fetch cannot send a body with GET. The service reads GET and
// DELETE inputs from the query string, so these calls serialize the (empty) body to nothing.
const NO_BODY = { body: {}, bodySerializer: () => undefined }

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

    const got = await client.GET(P, { params: { query: { current_app: 'CRM', name: 'theme' } }, ...NO_BODY })
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

    const got = await client.GET(P, { params: { query: { current_app: 'CRM', data: ['a', 'b', 'missing'] } }, ...NO_BODY })
    assert.equal(got.response.status, 200)
    const result = got.data?.result ?? {}
    assert.deepEqual(result.a?.value, { n: 1 })
    assert.deepEqual(result.b?.value, [1, 2])
    assert.deepEqual(result.missing, { found: false })

    const exists = await client.GET(`${P}/exists`, { params: { query: { current_app: 'CRM', data: ['a', 'missing'] } }, ...NO_BODY })
    assert.deepEqual(exists.data?.result, { a: true, missing: false })

    const names = await client.GET(`${P}/names`, { params: { query: { current_app: 'CRM' } }, ...NO_BODY })
    assert.deepEqual(names.data?.result, ['a', 'b'])

    const deleted = await client.DELETE(P, { params: { query: { current_app: 'CRM', name: 'a' } }, ...NO_BODY })
    assert.equal(deleted.data?.deleted, true)
    const again = await client.DELETE(P, { params: { query: { current_app: 'CRM', data: ['a', 'b'] } }, ...NO_BODY })
    assert.deepEqual(again.data?.result, { a: false, b: true })
  })

  test('an attribute with expiration 1 is gone after 1.3 s', async () => {
    const client = clientFor(await mintUst())
    const set = await client.PUT(P, { body: { current_app: 'CRM', name: 'otp', value: '123456', expiration: 1 } })
    assert.equal(set.response.status, 200)
    assert.ok(Date.parse(set.data?.expiration_time ?? '') > Date.now(), 'expires in the future')
    const query = { current_app: 'CRM', name: 'otp' }
    assert.equal((await client.GET(P, { params: { query }, ...NO_BODY })).data?.found, true)
    await sleep(1300)
    const got = await client.GET(P, { params: { query }, ...NO_BODY })
    assert.equal(got.response.status, 200)
    assert.equal(got.data?.found, false)
    assert.equal(got.data?.value, undefined)
  })

  test('an encrypted value reads back in clear, or as ciphertext with decrypt=false', async () => {
    const client = clientFor(await mintUst())
    const secret = { key: 's3cr3t', scopes: ['read'] }
    const set = await client.PUT(P, { body: { current_app: 'CRM', name: 'api_key', value: secret, encrypt: true } })
    assert.equal(set.response.status, 200)

    const clear = await client.GET(P, { params: { query: { current_app: 'CRM', name: 'api_key' } }, ...NO_BODY })
    assert.deepEqual(clear.data?.value, secret)
    assert.equal(clear.data?.is_encrypted, true)

    const sealed = await client.GET(P, { params: { query: { current_app: 'CRM', name: 'api_key', decrypt: false } }, ...NO_BODY })
    assert.equal(sealed.data?.is_encrypted, true)
    assert.equal(typeof sealed.data?.value, 'string')
    assert.match(sealed.data?.value as string, /^gcm1\./)
    assert.ok(!(sealed.data?.value as string).includes('s3cr3t'))
  })

  test('the Zato path takes the UST in the body', async () => {
    const ust = await mintUst()
    const client = createClient<paths>({ baseUrl: base })
    const set = await client.PUT('/zato/sso/session/attr', { body: { current_app: 'CRM', current_ust: ust, name: 'lang', value: 'en' } })
    assert.equal(set.response.status, 200)
    assert.equal(set.data?.version, 1)
  })

  describe('each error class', () => {
    test('400 E008002: both name and data', async () => {
      const client = clientFor(await mintUst())
      const error = assertError(await client.PUT(P, { body: { current_app: 'CRM', name: 'a', value: 1, data: [{ name: 'b', value: 2 }] } }), 400, 'E008002')
      assert.ok((error.details?.length ?? 0) > 0, 'details name the field')
    })

    test('400 E008002: an expiration below 1', async () => {
      const client = clientFor(await mintUst())
      const error = assertError(await client.PUT(P, { body: { current_app: 'CRM', name: 'a', value: 1, expiration: 0 } }), 400, 'E008002')
      assert.deepEqual(error.details?.map((detail) => detail.path), ['/expiration'])
    })

    test('400 E008003: neither name nor data', async () => {
      const client = clientFor(await mintUst())
      assertError(await client.PUT(P, { body: { current_app: 'CRM' } }), 400, 'E008003')
    })

    test('401 E007001: a token signed with another key, and no token at all', async () => {
      const forged = clientFor(await mintUst({ secret: 'another-secret-that-is-at-least-32-bytes' }))
      assertError(await forged.GET(P, { params: { query: { current_app: 'CRM', name: 'a' } }, ...NO_BODY }), 401, 'E007001')
      const anonymous = createClient<paths>({ baseUrl: base })
      const missing = await anonymous.GET(`${P}/names`, { params: { query: { current_app: 'CRM' } }, ...NO_BODY })
      assertError(missing, 401, 'E007001')
      assert.equal(missing.response.headers.get('www-authenticate'), 'Bearer realm="sso-attrs"')
    })

    test('403 E004001: an app that is not allowed', async () => {
      const client = clientFor(await mintUst())
      assertError(await client.GET(`${P}/names`, { params: { query: { current_app: 'Nope' } }, ...NO_BODY }), 403, 'E004001')
    })

    test('403 E005001: another user\'s session, unless super-user', async () => {
      const bobs = await mintUst({ sub: 'bob' })
      const alice = clientFor(await mintUst({ sub: 'alice' }))
      assertError(await alice.GET(`${P}/names`, { params: { query: { current_app: 'CRM', target_ust: bobs } }, ...NO_BODY }), 403, 'E005001')
      const admin = clientFor(await mintUst({ sub: 'admin', roles: ['sso:super-user'] }))
      const allowed = await admin.GET(`${P}/names`, { params: { query: { current_app: 'CRM', target_ust: bobs } }, ...NO_BODY })
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
      const got = await client.GET(P, { params: { query: { current_app: 'CRM', name: 'a' } }, ...NO_BODY })
      assert.equal(got.data?.value, 2, 'the failed write changed nothing')
    })

    test('413 E011001: a value over the configured size', async () => {
      const client = clientFor(await mintUst())
      const error = assertError(await client.PUT(P, { body: { current_app: 'CRM', name: 'big', value: 'x'.repeat(MAX_VALUE_BYTES + 1) } }), 413, 'E011001')
      assert.deepEqual(error.details?.map((detail) => detail.path), ['/value'])
    })
  })
})
