import assert from 'node:assert/strict'
import { after, before, describe, test, type TestContext } from 'node:test'
import fc from 'fast-check'
import { base64url } from 'jose'
import type { Redis } from 'ioredis'
import type { App } from '../../src/app.ts'
import type { Config } from '../../src/config.ts'
import { RedisServer } from '../fixtures/redis.ts'
import { build, mintUst, TEST_AUDIENCE, TEST_ISSUER } from '../helper.ts'
import { assertAllKeysExpire, assertUnchanged, snapshot, type Snapshot } from './redis-snapshot.ts'

// Property-based tests over every route, on a real redis-server: whatever the method, path,
// query string, headers and body, the service never answers 5xx, always answers a JSON
// envelope whose cid is the x-cid header, and a rejected request leaves the store as it was.
// Each request is compared with a snapshot of every key of the Redis (type-aware reads).

const CID = /^[0-9a-f]{24}$/
const CODE = /^E\d{6}$/
const P = '/sso/session/attr'
const Z = '/zato/sso/session/attr'

// Rate limiting (issue 3) would answer 429 to a run's hundreds of requests from one address
// and keep counters in this Redis: off here, so the snapshot is about session data only.
const NO_RATE_LIMIT: Partial<Config> = Object.fromEntries([['SSO_RATE_LIMIT_MAX', 0]])

/** Failures show the assertion message of the smallest counterexample. */
const FC_OPTIONS = { includeErrorInReport: true } as const

const nowSeconds = () => Math.floor(Date.now() / 1000)
const SID_A = 'prop-alice-a'

/** A token with no signature algorithm (alg: none). */
function unsigned (claims: Record<string, unknown>): string {
  const header = base64url.encode(JSON.stringify({ alg: 'none', typ: 'JWT' }))
  return `${header}.${base64url.encode(JSON.stringify(claims))}.`
}

const TOKENS = {
  aliceA: await mintUst({ sub: 'alice', sid: SID_A }),
  aliceB: await mintUst({ sub: 'alice', sid: 'prop-alice-b' }),
  bob: await mintUst({ sub: 'bob', sid: 'prop-bob' }),
  root: await mintUst({ sub: 'root', sid: 'prop-root', roles: ['sso:super-user'] })
}
const FRESH = await Promise.all(['f1', 'f2', 'f3', 'f4'].map(async (sid, index) => await mintUst({ sub: index % 2 === 0 ? 'alice' : 'carol', sid: `prop-${sid}` })))
const VALID_TOKENS = [...Object.values(TOKENS), ...FRESH]
const BAD_TOKENS = [
  await mintUst({ sid: SID_A, expiresIn: nowSeconds() - 3600 }),
  await mintUst({ sid: SID_A, audience: 'another-service' }),
  await mintUst({ sid: SID_A, issuer: 'https://evil.test' }),
  await mintUst({ sid: SID_A, secret: 'another-secret-that-is-at-least-32-bytes!' }),
  await mintUst({ sid: SID_A, claims: { sid: 42 } }),
  unsigned({ iss: TEST_ISSUER, aud: TEST_AUDIENCE, sub: 'alice', sid: SID_A, exp: nowSeconds() + 600 })
]

// ---- arbitraries -------------------------------------------------------------------------

const charsOf = (text: string) => fc.constantFrom(...text.split(''))
const printable = (maxLength = 40) => fc.string({ unit: fc.integer({ min: 0x20, max: 0x7e }).map((code) => String.fromCharCode(code)), maxLength })

/** A valid token with one character replaced: signature, header or payload tampering. */
const tamperedToken = fc.tuple(fc.constantFrom(...VALID_TOKENS), fc.nat(), charsOf('AZaz09-_.=+/ ')).map(([token, at, char]) => {
  const index = at % token.length
  return `${token.slice(0, index)}${char}${token.slice(index + 1)}`
})

const tokenArb: fc.Arbitrary<string> = fc.oneof(
  { weight: 5, arbitrary: fc.constantFrom(...VALID_TOKENS) },
  { weight: 2, arbitrary: fc.constantFrom(...BAD_TOKENS) },
  { weight: 1, arbitrary: tamperedToken },
  { weight: 1, arbitrary: fc.string({ maxLength: 20 }) }
)

const authorizationArb: fc.Arbitrary<string> = fc.oneof(
  { weight: 6, arbitrary: tokenArb.map((token) => `Bearer ${token}`) },
  { weight: 1, arbitrary: tokenArb.map((token) => `bearer  ${token}  `) },
  {
    weight: 2,
    arbitrary: fc.constantFrom(
      'Bearer', 'Bearer ', '', 'Basic YWxpY2U6c2VjcmV0', 'Token abc', 'Bearer a b',
      `Bearer ${TOKENS.aliceA} ${TOKENS.bob}`, `Bearer ${TOKENS.aliceA}, Bearer ${TOKENS.bob}`, `Bearer ${TOKENS.aliceA},${TOKENS.bob}`
    )
  },
  { weight: 1, arbitrary: printable() }
)

const contentTypeArb: fc.Arbitrary<string> = fc.oneof(
  { weight: 6, arbitrary: fc.constantFrom('application/json', 'application/json; charset=utf-8', 'APPLICATION/JSON') },
  {
    weight: 4,
    arbitrary: fc.constantFrom(
      'application/json;charset=UTF-16', 'application/json; charset=latin1', 'application/x-www-form-urlencoded', 'text/plain',
      'text/html', 'multipart/form-data; boundary=x', 'application/xml', 'application/jsonx', 'application/merge-patch+json',
      'application/json, text/plain', ';;;', '', 'application/octet-stream', 'application/json; boundary="', 'json'
    )
  },
  { weight: 1, arbitrary: printable(30) }
)

const EXTRA_HEADERS = ['x-cid', 'x-request-id', 'x-forwarded-for', 'x-real-ip', 'forwarded', 'accept', 'accept-encoding', 'origin',
  'cookie', 'x-http-method-override', 'content-encoding', 'host', 'user-agent', 'if-none-match', 'range'] as const
const extraHeadersArb = fc.dictionary(fc.constantFrom(...EXTRA_HEADERS), printable(), { maxKeys: 3 })

interface HeaderChoice {
  contentType?: string | undefined
  authorization?: string | undefined
  extra: Record<string, string>
}
const headersArb: fc.Arbitrary<HeaderChoice> = fc.record({
  contentType: fc.option(contentTypeArb, { nil: undefined }),
  authorization: fc.option(authorizationArb, { nil: undefined }),
  extra: extraHeadersArb
})

const nameArb: fc.Arbitrary<unknown> = fc.oneof(
  { weight: 16, arbitrary: fc.constantFrom('theme', 'secret', 'counter', 'missing', 'cart', 'new-1', 'new-2') },
  { weight: 1, arbitrary: fc.constantFrom('__proto__', 'constructor', 'hasOwnProperty', 'toString', '', ' ', 'a:b', '{x}', '*', 'n'.repeat(191), 'n'.repeat(192)) },
  { weight: 2, arbitrary: fc.string({ maxLength: 12 }) },
  { weight: 1, arbitrary: fc.string({ unit: 'binary', maxLength: 6 }) },
  { weight: 1, arbitrary: fc.oneof(fc.integer(), fc.boolean(), fc.constant(null), fc.array(fc.string(), { maxLength: 2 })) }
)
const boolishArb: fc.Arbitrary<unknown> = fc.oneof({ weight: 12, arbitrary: fc.boolean() }, { weight: 1, arbitrary: fc.constantFrom('true', 'false', 0, 1, null, 'yes') })
const expirationArb: fc.Arbitrary<unknown> = fc.oneof(
  { weight: 12, arbitrary: fc.integer({ min: 1, max: 100_000 }) },
  { weight: 2, arbitrary: fc.constant(null) },
  { weight: 1, arbitrary: fc.constantFrom(0, -1, '60', 1.5, 1e308, 2 ** 53, true) },
  { weight: 1, arbitrary: fc.double() }
)
const versionArb: fc.Arbitrary<unknown> = fc.oneof(
  { weight: 12, arbitrary: fc.integer({ min: 1, max: 4 }) },
  { weight: 1, arbitrary: fc.constantFrom(0, -1) },
  { weight: 1, arbitrary: fc.constantFrom('1', 1.5, null, 2 ** 53) }
)
const appArb: fc.Arbitrary<unknown> = fc.oneof(
  { weight: 16, arbitrary: fc.constantFrom('CRM', 'Portal') },
  { weight: 2, arbitrary: fc.constantFrom('crm', 'CRM ', '', 'Evil', 'CRM,Portal') },
  { weight: 1, arbitrary: fc.oneof(fc.string({ maxLength: 8 }), fc.integer(), fc.constant(null)) }
)
const valueArb = fc.oneof({ weight: 5, arbitrary: fc.jsonValue({ maxDepth: 3 }) }, { weight: 1, arbitrary: fc.string({ minLength: 1000, maxLength: 3000 }) })

const writeItemArb = fc.record({
  name: nameArb,
  value: valueArb,
  encrypt: boolishArb,
  expiration: expirationArb,
  if_version: versionArb
}, { requiredKeys: ['name'] })

/** Bodies shaped like real requests, every field optional and its value random. */
const requestFieldsArb = fc.tuple(
  fc.record({
    current_app: appArb,
    current_ust: tokenArb,
    target_ust: tokenArb,
    name: nameArb,
    value: valueArb,
    encrypt: boolishArb,
    expiration: expirationArb,
    if_version: versionArb,
    decrypt: boolishArb,
    data: fc.oneof(
      { weight: 3, arbitrary: fc.array(writeItemArb, { maxLength: 4 }) },
      { weight: 3, arbitrary: fc.array(nameArb, { maxLength: 4 }) },
      { weight: 1, arbitrary: fc.jsonValue({ maxDepth: 2 }) }
    )
  }, { requiredKeys: [] }),
  fc.option(fc.tuple(fc.oneof(fc.constantFrom('logout_token', 'admin', 'sid', 'prefix'), fc.string({ maxLength: 8 })), fc.jsonValue({ maxDepth: 1 })), { nil: undefined })
).map(([fields, extra]) => {
  const result: Record<string, unknown> = { ...fields }
  // defineProperty: a generated "__proto__" stays an own key instead of setting the prototype.
  if (extra !== undefined) Object.defineProperty(result, extra[0], { value: extra[1], enumerable: true, writable: true, configurable: true })
  return result
})

const POISON = ['"__proto__":{"polluted":true}', '"constructor":{"prototype":{"polluted":true}}', '"__proto__":null']
/** Raw JSON text: garbage, a damaged request, or a request carrying a prototype-poisoning key. */
const rawBodyArb: fc.Arbitrary<string> = fc.oneof(
  fc.string({ maxLength: 40 }),
  fc.tuple(requestFieldsArb, fc.nat(), charsOf('{}[]",:\\ 0\u0000')).map(([fields, at, char]) => {
    const text = JSON.stringify(fields)
    const index = at % (text.length + 1)
    return at % 2 === 0 ? `${text.slice(0, index)}${char}${text.slice(index)}` : `${text.slice(0, index)}${text.slice(index + 1)}`
  }),
  fc.tuple(requestFieldsArb, fc.constantFrom(...POISON), fc.constantFrom('top', 'item', 'value')).map(([fields, poison, where]) => {
    const text = JSON.stringify({ current_app: 'CRM', name: 'poisoned', value: 1, ...fields })
    if (where === 'top') return `{${poison},${text.slice(1)}`
    if (where === 'item') return JSON.stringify({ current_app: 'CRM', data: [{ name: 'x', value: 1 }] }).replace('{"name"', `{${poison},"name"`)
    return `{"current_app":"CRM","name":"poisoned","value":{"a":1,${poison}}}`
  })
)

const bodyArb: fc.Arbitrary<string | undefined> = fc.oneof(
  { weight: 2, arbitrary: fc.constant(undefined) },
  { weight: 2, arbitrary: fc.jsonValue({ maxDepth: 3 }).map((value) => JSON.stringify(value)) },
  { weight: 2, arbitrary: fc.object({ maxDepth: 2, values: [fc.jsonValue({ maxDepth: 1 })] }).map((value) => JSON.stringify(value)) },
  { weight: 5, arbitrary: requestFieldsArb.map((fields) => JSON.stringify(fields)) },
  { weight: 2, arbitrary: rawBodyArb }
)

const QUERY_KEYS = ['current_app', 'current_ust', 'target_ust', 'name', 'data', 'decrypt', 'if_version', 'value', 'expiration',
  'encrypt', '__proto__', 'constructor[prototype][polluted]', 'data[]', 'logout_token', 'a[b]'] as const
const queryValueArb = fc.oneof(
  { weight: 4, arbitrary: fc.constantFrom('CRM', 'Portal', 'theme', 'secret', 'counter', 'missing', 'true', 'false', '1', '0', '-1', '') },
  { weight: 2, arbitrary: tokenArb },
  { weight: 2, arbitrary: fc.string({ maxLength: 12 }) }
)
const structuredQueryArb = fc.array(fc.tuple(fc.oneof({ weight: 4, arbitrary: fc.constantFrom(...QUERY_KEYS) }, { weight: 1, arbitrary: fc.string({ maxLength: 6 }) }), queryValueArb), { maxLength: 6 })
  .map((pairs) => new URLSearchParams(pairs).toString())
const rawQueryArb = fc.array(fc.oneof(charsOf('abcnme_=&;+.-~[]09'), fc.constantFrom('%', '%00', '%FF', '%E0%A4%A', '%zz', '%20', '%2e', '%5B', 'name=', 'data=', 'current_app=CRM&')), { maxLength: 20 })
  .map((parts) => parts.join(''))
const queryArb = fc.oneof({ weight: 2, arbitrary: fc.constant('') }, { weight: 3, arbitrary: structuredQueryArb }, { weight: 1, arbitrary: rawQueryArb })

const ATTR_SUFFIXES = ['', '/', '/exists', '/names', '/exists/', '/names/']
const KNOWN_PATHS = [
  ...[P, Z].flatMap((prefix) => ATTR_SUFFIXES.map((suffix) => `${prefix}${suffix}`)),
  '/healthz', '/readyz', '/sso/session', '/zato/sso/session', '/sso/backchannel-logout', '/zato/sso/backchannel-logout'
]
const ODD_PATHS = ['/', '//sso/session/attr', `${P}/..`, `${P}/%2e%2e/names`, `${P}/../../etc/passwd`, `${P}%00`, `${P};x`, '/SSO/SESSION/ATTR',
  `${P}/exists/extra`, '/zato', '/sso', '/healthz/x', '/%', '/%ZZ', `${P}%E0%A4%A`, '/readyz?', `${P}/names%2F`]
/** Swagger UI serves HTML and assets under these: not envelopes, and not part of this contract. */
const isDocsPath = (path: string) => {
  const pathname = new URL(path, 'http://localhost').pathname
  return pathname.startsWith('/docs') || pathname.startsWith('/openapi')
}
const unknownPathArb = fc.array(fc.string({ unit: charsOf('abcdefghijklmnopqrstuvwxyz0123456789-._~%:@!$'), minLength: 1, maxLength: 10 }), { minLength: 1, maxLength: 4 })
  .map((segments) => `/${segments.join('/')}`)
const pathArb = fc.oneof(
  { weight: 8, arbitrary: fc.constantFrom(...KNOWN_PATHS) },
  { weight: 2, arbitrary: fc.constantFrom(...ODD_PATHS) },
  { weight: 2, arbitrary: unknownPathArb }
).filter((path) => !isDocsPath(path))

type Method = 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE' | 'OPTIONS'
const methodArb = fc.constantFrom<Method>('GET', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS')

interface RequestShape {
  method: Method
  path: string
  query: string
  headers: HeaderChoice
  body: string | undefined
}

const OPERATIONS: Array<[Method, string]> = [
  ['POST', ''], ['PATCH', ''], ['PUT', ''], ['GET', ''], ['DELETE', ''], ['GET', '/exists'], ['GET', '/names']
]

// Inputs close to what each operation takes, so that a good share of requests succeed and
// the rejected ones are rejected for one wrong detail rather than for everything at once.
const commonFieldsArb = fc.record({
  current_app: appArb,
  current_ust: tokenArb,
  target_ust: fc.oneof({ weight: 3, arbitrary: fc.constantFrom(...VALID_TOKENS) }, { weight: 1, arbitrary: tokenArb })
}, { requiredKeys: ['current_app'] }).map((fields) => {
  // target_ust in one request out of four or so (record keys are present half of the time).
  const { target_ust: target, ...rest } = fields
  return target !== undefined && target.length % 2 === 0 ? { ...rest, target_ust: target } : rest
})
const singleFieldsArb = fc.record({
  name: nameArb,
  value: valueArb,
  encrypt: boolishArb,
  expiration: expirationArb,
  if_version: versionArb,
  decrypt: boolishArb
}, { requiredKeys: ['name'] })
const batchFieldsArb = fc.record({
  items: fc.array(writeItemArb, { minLength: 1, maxLength: 4 }),
  names: fc.array(nameArb, { minLength: 1, maxLength: 4 }),
  encrypt: boolishArb,
  expiration: expirationArb,
  decrypt: boolishArb
}, { requiredKeys: ['items', 'names'] })

type Fields = Record<string, unknown>

function fieldsFor (method: Method, suffix: string, seed: number, common: Fields, single: Fields, batch: Fields, noise: Fields | undefined): Fields {
  const fields: Fields = { ...common }
  const pick = (source: Fields, keys: string[]) => {
    for (const key of keys) if (Object.hasOwn(source, key)) fields[key] = source[key]
  }
  const write = method === 'POST' || method === 'PATCH' || method === 'PUT'
  if (suffix === '/names') {
    // names takes no name or data
  } else if (seed % 2 === 0) {
    pick(single, method === 'POST' ? ['name', 'value', 'encrypt', 'expiration'] : write ? ['name', 'value', 'encrypt', 'expiration', 'if_version'] : method === 'DELETE' ? ['name', 'if_version'] : suffix === '' ? ['name', 'decrypt'] : ['name'])
  } else {
    // Create takes no if_version: the items of a POST keep theirs one time in eight only.
    const items = method === 'POST' && seed % 8 !== 1
      ? (batch.items as Fields[]).map(({ if_version: _version, ...item }) => item)
      : batch.items
    fields.data = write ? items : batch.names
    pick(batch, write ? ['encrypt', 'expiration'] : suffix === '' && method === 'GET' ? ['decrypt'] : [])
  }
  // Now and then one field from anywhere: the wrong field for this operation, or a wrong type.
  if (noise !== undefined) {
    const keys = Object.keys(noise)
    const key = keys[seed % Math.max(1, keys.length)]
    if (key !== undefined) Object.defineProperty(fields, key, { value: noise[key], enumerable: true, writable: true, configurable: true })
  }
  return fields
}

// ---- the checks --------------------------------------------------------------------------

let redis: RedisServer
let inspect: Redis
let app: App
let last: Snapshot
const outcomes = new Map<string, number>()

before(async () => {
  redis = await RedisServer.start()
  inspect = redis.client()
  app = await build(undefined, { SSO_STORE: 'redis', REDIS_URL: redis.url, ...NO_RATE_LIMIT })
  // Data for the rejected requests to (not) touch: plain, encrypted and expiring attributes.
  const seed = async (token: string, body: Record<string, unknown>) => {
    const reply = await app.inject({ method: 'PUT', url: P, headers: { authorization: `Bearer ${token}` }, payload: body })
    assert.equal(reply.statusCode, 200, reply.body)
  }
  await seed(TOKENS.aliceA, {
    current_app: 'CRM',
    data: [{ name: 'theme', value: 'dark' }, { name: 'secret', value: { key: 's3cr3t' }, encrypt: true }, { name: 'counter', value: 0, expiration: 3600 }]
  })
  await seed(TOKENS.bob, { current_app: 'CRM', name: 'cart', value: [1, 2, 3] })
  await seed(TOKENS.root, { current_app: 'Portal', name: 'theme', value: 'light', encrypt: true })
  last = await snapshot(inspect)
  assert.equal(Object.keys(last.keys).filter((key) => key.endsWith(':a')).length, 3, 'three seeded sessions')
})

after(async () => {
  await app?.close()
  inspect?.disconnect()
  await redis?.close()
})

function headersOf (choice: HeaderChoice): Record<string, string> {
  const headers: Record<string, string> = { ...choice.extra }
  if (choice.contentType !== undefined) headers['content-type'] = choice.contentType
  if (choice.authorization !== undefined) headers.authorization = choice.authorization
  return headers
}

/** Sends one request and checks every invariant; returns the envelope's status. */
async function check (request: RequestShape): Promise<'ok' | 'error'> {
  const url = request.query === '' ? request.path : `${request.path}?${request.query}`
  const headers = headersOf(request.headers)
  const what = `${request.method} ${url} ${JSON.stringify(headers)} body=${JSON.stringify(request.body)?.slice(0, 300)}`
  const reply = await app.inject({ method: request.method, url, headers, ...(request.body !== undefined ? { payload: request.body } : {}) })
  const after = await snapshot(inspect)
  const before = last
  last = after

  assert.ok(reply.statusCode < 500, `${reply.statusCode} ${reply.body.slice(0, 300)} for ${what}`)
  assert.match(String(reply.headers['content-type']), /^application\/json/, `content type for ${what}`)
  let body: Record<string, unknown>
  try {
    body = reply.json<Record<string, unknown>>()
  } catch {
    assert.fail(`not JSON (${reply.statusCode}): ${reply.body.slice(0, 200)} for ${what}`)
  }
  assert.ok(body !== null && typeof body === 'object' && !Array.isArray(body), `an object envelope for ${what}`)
  assert.match(String(body.cid), CID, `cid for ${what}`)
  assert.equal(reply.headers['x-cid'], body.cid, `x-cid header for ${what}`)
  if (headers['x-cid'] !== undefined) assert.notEqual(body.cid, headers['x-cid'], 'a client-sent x-cid is not echoed')
  assert.ok(body.status === 'ok' || body.status === 'error', `status for ${what}: ${String(body.status)}`)
  if (body.status === 'ok') {
    assert.ok(reply.statusCode >= 200 && reply.statusCode < 300, `ok with ${reply.statusCode} for ${what}`)
    // Zato's success envelopes carried an empty sub_status; the canonical ones have none.
    if (request.path.startsWith('/zato/')) assert.deepEqual(body.sub_status, [], `sub_status on an ok Zato answer for ${what}`)
    else assert.equal(Object.hasOwn(body, 'sub_status'), false, `sub_status on an ok answer for ${what}`)
  } else {
    assert.ok(reply.statusCode >= 400, `error with ${reply.statusCode} for ${what}`)
    assert.ok(Array.isArray(body.sub_status) && body.sub_status.length > 0, `sub_status for ${what}`)
    for (const code of body.sub_status as unknown[]) assert.match(String(code), CODE, `sub_status code for ${what}`)
    assertUnchanged(before, after, what)
  }
  assertAllKeysExpire(after, what)
  const outcome = `${reply.statusCode} ${body.status === 'ok' ? 'ok' : (body.sub_status as string[]).join(',')}`
  outcomes.set(outcome, (outcomes.get(outcome) ?? 0) + 1)
  return body.status
}

function report (t: TestContext, ok: number, total: number): void {
  t.diagnostic(`${ok} of ${total} requests answered ok; outcomes: ${[...outcomes].sort((a, b) => b[1] - a[1]).map(([key, count]) => `${key} x${count}`).join(', ')}`)
  outcomes.clear()
}

function toQuery (fields: Record<string, unknown>): string {
  const params = new URLSearchParams()
  for (const [key, value] of Object.entries(fields)) {
    for (const item of Array.isArray(value) ? value : [value]) params.append(key, typeof item === 'string' ? item : JSON.stringify(item))
  }
  return params.toString()
}

describe('property: hostile requests on every route', { timeout: 120_000 }, () => {
  test('any method, path, query string, headers and body: never a 5xx, always an envelope, a rejected request stores nothing', async (t) => {
    let ok = 0
    let total = 0
    await fc.assert(fc.asyncProperty(fc.record({ method: methodArb, path: pathArb, query: queryArb, headers: headersArb, body: bodyArb }), async (request) => {
      total++
      if (await check(request) === 'ok') ok++
    }), { ...FC_OPTIONS, numRuns: 600 })
    report(t, ok, total)
  })

  test('request-shaped inputs on the attribute routes (JSON body, query string or both): the same, and some succeed', async (t) => {
    let ok = 0
    let total = 0
    const shaped = fc.record({
      operation: fc.constantFrom(...OPERATIONS),
      prefix: fc.constantFrom(P, Z),
      seed: fc.nat(),
      common: commonFieldsArb,
      single: singleFieldsArb,
      batch: batchFieldsArb,
      noise: fc.oneof({ weight: 6, arbitrary: fc.constant(undefined) }, { weight: 1, arbitrary: requestFieldsArb }),
      bearer: fc.option(tokenArb, { nil: undefined, freq: 8 }),
      delivery: fc.constantFrom('json', 'json', 'json', 'query', 'split', 'form')
    })
    await fc.assert(fc.asyncProperty(shaped, async ({ operation: [method, suffix], prefix, seed, common, single, batch, noise, bearer, delivery: generatedDelivery }) => {
      let delivery = generatedDelivery
      const fields = fieldsFor(method, suffix, seed, common, single, batch, noise)
      // The bearer header is the usual way; a body current_ust must then agree with it (mostly).
      if (bearer !== undefined && fields.current_ust !== undefined && seed % 5 !== 0) fields.current_ust = bearer
      // Writes take a body, and tokens stay out of query strings: mostly keep to that.
      const write = method === 'POST' || method === 'PATCH' || method === 'PUT'
      if (write && (delivery === 'query' || delivery === 'split') && seed % 4 !== 0) delivery = 'json'
      if (delivery === 'form' && prefix === P && seed % 4 !== 0) delivery = 'json'
      if (delivery !== 'json' && delivery !== 'form' && seed % 4 !== 0) delete fields.current_ust
      let body: string | undefined
      let query = ''
      let contentType: string | undefined = 'application/json'
      if (delivery === 'json' || delivery === 'form') {
        body = JSON.stringify(fields)
        if (delivery === 'form') contentType = 'application/x-www-form-urlencoded'
      } else if (delivery === 'query') {
        query = toQuery(fields)
        contentType = undefined
      } else {
        const entries = Object.entries(fields)
        const cut = seed % (entries.length + 1)
        query = toQuery(Object.fromEntries(entries.slice(0, cut)))
        body = JSON.stringify(Object.fromEntries(entries.slice(cut)))
      }
      const headers: HeaderChoice = { contentType, authorization: bearer !== undefined ? `Bearer ${bearer}` : undefined, extra: {} }
      total++
      if (await check({ method, path: `${prefix}${suffix}`, query, headers, body }) === 'ok') ok++
    }), { ...FC_OPTIONS, numRuns: 1500 })
    report(t, ok, total)
    assert.ok(ok > total / 20, `the generators reach the success path often enough (${ok} of ${total})`)
  })

  test('arbitrary headers around a valid write: never a 5xx, always an envelope, a rejected write stores nothing', async (t) => {
    let ok = 0
    let total = 0
    const arb = fc.record({
      headers: headersArb,
      prefix: fc.constantFrom(P, Z),
      method: fc.constantFrom<Method>('PUT', 'POST', 'PATCH', 'DELETE', 'GET'),
      name: fc.constantFrom('theme', 'secret', 'h-new')
    })
    await fc.assert(fc.asyncProperty(arb, async ({ headers, prefix, method, name }) => {
      const body = JSON.stringify(method === 'GET' || method === 'DELETE'
        ? { current_app: 'CRM', name }
        : { current_app: 'CRM', name, value: { from: 'headers' }, expiration: 3600 })
      total++
      if (await check({ method, path: prefix, query: '', headers, body }) === 'ok') ok++
    }), { ...FC_OPTIONS, numRuns: 400 })
    report(t, ok, total)
    assert.ok(ok > 0, 'some header combinations are valid')
  })

  test('arbitrary query strings on the GET and DELETE routes with a valid bearer', async (t) => {
    let ok = 0
    let total = 0
    const arb = fc.record({
      route: fc.constantFrom<[Method, string]>(
        ['GET', P], ['GET', Z], ['DELETE', P], ['DELETE', Z], ['GET', `${P}/exists`], ['GET', `${Z}/exists`],
        ['GET', `${P}/names`], ['GET', `${Z}/names`], ['GET', '/healthz'], ['GET', '/readyz'], ['DELETE', '/sso/session']
      ),
      query: fc.oneof(structuredQueryArb, rawQueryArb, structuredQueryArb.map((query) => `current_app=CRM&${query}`)),
      token: fc.constantFrom(...VALID_TOKENS)
    })
    await fc.assert(fc.asyncProperty(arb, async ({ route: [method, path], query, token }) => {
      total++
      if (await check({ method, path, query, headers: { authorization: `Bearer ${token}`, extra: {} }, body: undefined }) === 'ok') ok++
    }), { ...FC_OPTIONS, numRuns: 400 })
    report(t, ok, total)
    assert.ok(ok > 0, 'some query strings are valid')
  })

  test('afterwards: no prototype was polluted, the service still answers, and every key carries a TTL', async () => {
    assert.equal(({} as Record<string, unknown>).polluted, undefined, 'Object.prototype is untouched')
    assert.equal(Object.getPrototypeOf({}), Object.prototype)
    // A session of its own: the runs above may have ended any of theirs (DELETE /sso/session).
    const reply = await app.inject({ method: 'GET', url: `${P}/names?current_app=CRM`, headers: { authorization: `Bearer ${await mintUst({ sub: 'bob', sid: 'prop-final' })}` } })
    assert.equal(reply.statusCode, 200, reply.body)
    assertAllKeysExpire(await snapshot(inspect), 'the whole run')
  })
})
