import assert from 'node:assert/strict'
import { randomUUID } from 'node:crypto'
import { describe, test, type TestContext } from 'node:test'
import type { App } from '../../src/app.ts'
import type { AttributeView } from '../../src/attribute-service.ts'
import { StoreUnavailableError } from '../../src/errors.ts'
import { MemoryStore } from '../../src/store/memory-store.ts'
import { sessionOwner, type Store } from '../../src/store/types.ts'
import { sessionIdOf } from '../../src/ust.ts'
import { build, mintUst, TEST_ISSUER, type UstOptions } from '../helper.ts'

const PREFIXES = ['/sso/session/attr', '/zato/sso/session/attr'] as const
const CID = /^[0-9a-f]{24}$/
const ISO_UTC = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/

type Method = 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE'
type Fields = Record<string, unknown>

interface Detail {
  path: string
  message: string
}

interface Envelope extends AttributeView {
  cid: string
  status: 'ok' | 'error'
  sub_status?: string[]
  message?: string
  details?: Detail[]
  deleted?: boolean
  result?: unknown
}

interface Reply {
  url: string
  statusCode: number
  headers: Record<string, string | string[] | number | undefined>
  text: string
  body: Envelope
}

interface Call {
  method: Method
  url: string
  /** Sent as `Authorization: Bearer`. */
  ust?: string
  /** Sent as a JSON body. */
  body?: Fields
  /** Raw body; give its content type in `headers`. */
  payload?: string
  /** Repeated keys as arrays: `{ data: ['a', 'b'] }` is `data=a&data=b`. */
  query?: Record<string, string | string[]>
  headers?: Record<string, string>
}

interface Session {
  ust: string
  sid: string
  sub: string
  /** The store's id of the session, to read back what was (not) stored. */
  sessionId: string
}

async function newSession (options: UstOptions = {}): Promise<Session> {
  const sid = options.sid ?? randomUUID()
  const sub = options.sub ?? 'alice'
  return { ust: await mintUst({ ...options, sid, sub }), sid, sub, sessionId: sessionIdOf(options.issuer ?? TEST_ISSUER, sid) }
}

function queryString (query: Record<string, string | string[]>): string {
  const params = new URLSearchParams()
  for (const [key, value] of Object.entries(query)) {
    for (const item of Array.isArray(value) ? value : [value]) params.append(key, item)
  }
  return params.toString()
}

async function send (app: App, call: Call): Promise<Reply> {
  const headers: Record<string, string> = { ...call.headers }
  if (call.ust !== undefined) headers.authorization = `Bearer ${call.ust}`
  let payload: string | undefined = call.payload
  if (call.body !== undefined) {
    payload = JSON.stringify(call.body)
    headers['content-type'] ??= 'application/json'
  }
  const url = call.query !== undefined ? `${call.url}?${queryString(call.query)}` : call.url
  const response = await app.inject({ method: call.method, url, headers, ...(payload !== undefined ? { payload } : {}) })
  let body: Envelope
  try {
    body = response.json<Envelope>()
  } catch {
    assert.fail(`${call.method} ${url} answered ${response.statusCode} with a body that is not JSON: ${response.body}`)
  }
  return { url: call.url, statusCode: response.statusCode, headers: response.headers, text: response.body, body }
}

/** The operations of one prefix on behalf of one session; `current_app` defaults to CRM. */
function client (app: App, prefix: string, session: Session) {
  const withApp = (fields: Fields): Fields => ({ current_app: 'CRM', ...fields })
  const call = (method: Method, path: string, body: Fields) => send(app, { method, url: `${prefix}${path}`, ust: session.ust, body: withApp(body) })
  return {
    create: (body: Fields) => call('POST', '', body),
    update: (body: Fields) => call('PATCH', '', body),
    set: (body: Fields) => call('PUT', '', body),
    get: (body: Fields) => call('GET', '', body),
    delete: (body: Fields) => call('DELETE', '', body),
    exists: (body: Fields) => call('GET', '/exists', body),
    names: (body: Fields = {}) => call('GET', '/names', body),
    query: (method: Method, path: string, query: Record<string, string | string[]>) =>
      send(app, { method, url: `${prefix}${path}`, ust: session.ust, query: { current_app: 'CRM', ...query } })
  }
}

function assertOk (reply: Reply): Envelope {
  assert.equal(reply.statusCode, 200, reply.text)
  assert.equal(reply.body.status, 'ok')
  assert.match(reply.body.cid, CID)
  assert.equal(reply.headers['x-cid'], reply.body.cid)
  // Zato's success envelopes carried an empty sub_status; the canonical ones have none.
  if (reply.url.startsWith('/zato/')) assert.deepEqual(reply.body.sub_status, [])
  else assert.equal(Object.hasOwn(reply.body, 'sub_status'), false, 'sub_status only on errors')
  return reply.body
}

function assertError (reply: Reply, statusCode: number, code: string, path?: string): Envelope {
  assert.equal(reply.statusCode, statusCode, reply.text)
  assert.equal(reply.body.status, 'error')
  assert.deepEqual(reply.body.sub_status, [code])
  assert.match(reply.body.cid, CID)
  assert.equal(reply.headers['x-cid'], reply.body.cid)
  assert.match(String(reply.headers['content-type']), /^application\/json/)
  if (path !== undefined) {
    const paths = (reply.body.details ?? []).map((detail) => detail.path)
    assert.ok(paths.includes(path), `expected a detail at ${path}, got ${JSON.stringify(reply.body.details)}`)
  }
  return reply.body
}

/** What the store holds for a session, read directly, bypassing the API. */
async function storedNames (app: App, session: Session): Promise<string[]> {
  return await app.store.names(sessionOwner(session.sessionId))
}

async function storedAttribute (app: App, session: Session, name: string) {
  const [attribute] = await app.store.get(sessionOwner(session.sessionId), [name])
  return attribute ?? null
}

function secondsUntil (iso: string | null | undefined): number {
  assert.equal(typeof iso, 'string')
  assert.match(iso as string, ISO_UTC)
  return (Date.parse(iso as string) - Date.now()) / 1000
}

function resultOf<T> (body: Envelope): Record<string, T> {
  assert.equal(typeof body.result, 'object')
  assert.notEqual(body.result, null)
  return body.result as Record<string, T>
}

for (const prefix of PREFIXES) {
  describe(`POST ${prefix}`, () => {
    test('creates one attribute and answers with its version and no expiry', async (t) => {
      const app = await build(t)
      const alice = await newSession()
      const api = client(app, prefix, alice)
      const created = assertOk(await api.create({ name: 'theme', value: 'dark' }))
      assert.equal(created.name, 'theme')
      assert.equal(created.version, 1)
      assert.equal(created.expiration_time, null)
      const got = assertOk(await api.get({ name: 'theme' }))
      assert.equal(got.value, 'dark')
      assert.equal(got.is_encrypted, false)
      const stored = await storedAttribute(app, alice, 'theme')
      assert.equal(stored?.payload, '"dark"')
    })

    test('takes current_ust from the body instead of the Authorization header', async (t) => {
      const app = await build(t)
      const alice = await newSession()
      assertOk(await send(app, { method: 'POST', url: prefix, body: { current_app: 'CRM', current_ust: alice.ust, name: 'a', value: 1 } }))
      assert.deepEqual(await storedNames(app, alice), ['a'])
    })

    test('accepts current_ust in both the body and the header when they are the same token', async (t) => {
      const app = await build(t)
      const alice = await newSession()
      assertOk(await send(app, { method: 'POST', url: prefix, ust: alice.ust, body: { current_app: 'CRM', current_ust: alice.ust, name: 'a', value: 1 } }))
      assert.deepEqual(await storedNames(app, alice), ['a'])
    })

    test('sets an expiry of its own in seconds from now', async (t) => {
      const app = await build(t)
      const api = client(app, prefix, await newSession())
      const created = assertOk(await api.create({ name: 'otp', value: '123456', expiration: 60 }))
      const left = secondsUntil(created.expiration_time)
      assert.ok(left > 55 && left <= 60, `expires in ${left}s`)
      const got = assertOk(await api.get({ name: 'otp' }))
      assert.equal(got.expiration_time, created.expiration_time)
    })

    test('an expiration never reaches past the session lifetime cap', async (t) => {
      const app = await build(t, { SSO_SESSION_MAX_TTL: 100, SSO_SESSION_IDLE_TTL: 50 })
      const api = client(app, prefix, await newSession())
      const created = assertOk(await api.create({ name: 'long', value: 1, expiration: 10_000 }))
      const left = secondsUntil(created.expiration_time)
      assert.ok(left > 90 && left <= 100, `expires in ${left}s`)
    })

    test('batch: creates every item; top-level encrypt and expiration are defaults that items override', async (t) => {
      const app = await build(t)
      const alice = await newSession()
      const api = client(app, prefix, alice)
      const created = assertOk(await api.create({
        encrypt: true,
        expiration: 30,
        data: [
          { name: 'a', value: { x: 1 } },
          { name: 'b', value: 2, encrypt: false, expiration: null },
          { name: 'c', value: 3, expiration: 600 }
        ]
      }))
      assert.equal(Object.hasOwn(created, 'name'), false)
      const result = resultOf<{ name: string, version: number, expiration_time: string | null }>(created)
      assert.deepEqual(Object.keys(result).sort(), ['a', 'b', 'c'])
      assert.equal(result.a!.version, 1)
      const leftA = secondsUntil(result.a!.expiration_time)
      assert.ok(leftA > 25 && leftA <= 30)
      assert.equal(result.b!.expiration_time, null)
      const leftC = secondsUntil(result.c!.expiration_time)
      assert.ok(leftC > 590 && leftC <= 600)

      const got = resultOf<AttributeView>(assertOk(await api.get({ data: ['a', 'b', 'c'] })))
      assert.deepEqual(got.a!.value, { x: 1 })
      assert.equal(got.a!.is_encrypted, true)
      assert.equal(got.b!.value, 2)
      assert.equal(got.b!.is_encrypted, false)
      assert.equal(got.c!.is_encrypted, true)
      assert.equal((await storedAttribute(app, alice, 'a'))?.encrypted, true)
      assert.equal((await storedAttribute(app, alice, 'b'))?.encrypted, false)
    })

    test('409 E009001 when the name exists, and the stored attribute is untouched', async (t) => {
      const app = await build(t)
      const alice = await newSession()
      const api = client(app, prefix, alice)
      assertOk(await api.create({ name: 'a', value: 'first' }))
      assertError(await api.create({ name: 'a', value: 'second' }), 409, 'E009001', '/name')
      const got = assertOk(await api.get({ name: 'a' }))
      assert.equal(got.value, 'first')
      assert.equal(got.version, 1)
    })

    test('batch is all-or-nothing: one existing name stores none of the others', async (t) => {
      const app = await build(t)
      const alice = await newSession()
      const api = client(app, prefix, alice)
      assertOk(await api.create({ name: 'b', value: 'old' }))
      assertError(await api.create({ data: [{ name: 'a', value: 1 }, { name: 'b', value: 2 }, { name: 'c', value: 3 }] }), 409, 'E009001', '/data/1/name')
      assert.deepEqual(await storedNames(app, alice), ['b'])
      assert.equal((await storedAttribute(app, alice, 'b'))?.payload, '"old"')
    })

    test('400 E008002 for duplicate names inside one batch, nothing stored', async (t) => {
      const app = await build(t)
      const alice = await newSession()
      const api = client(app, prefix, alice)
      assertError(await api.create({ data: [{ name: 'a', value: 1 }, { name: 'b', value: 2 }, { name: 'a', value: 3 }] }), 400, 'E008002', '/data/2/name')
      assert.deepEqual(await storedNames(app, alice), [])
    })

    test('400 E008003 when an item has no value', async (t) => {
      const app = await build(t)
      const alice = await newSession()
      assertError(await client(app, prefix, alice).create({ name: 'a' }), 400, 'E008003', '/value')
      assert.deepEqual(await storedNames(app, alice), [])
    })

    test('400 E008002 for a value given at the top level of the batch form', async (t) => {
      const app = await build(t)
      const alice = await newSession()
      assertError(await client(app, prefix, alice).create({ value: 1, data: [{ name: 'a', value: 2 }] }), 400, 'E008002', '/value')
      assert.deepEqual(await storedNames(app, alice), [])
    })

    test('400 E008002 for an empty batch', async (t) => {
      const app = await build(t)
      const alice = await newSession()
      assertError(await client(app, prefix, alice).create({ data: [] }), 400, 'E008002', '/data')
    })

    test('400 E008002 for inputs in the query string: write inputs belong in the body', async (t) => {
      const app = await build(t)
      const alice = await newSession()
      assertError(await send(app, { method: 'POST', url: prefix, ust: alice.ust, query: { name: 'x' }, body: { current_app: 'CRM', value: 1 } }), 400, 'E008002', '/name')
      assert.deepEqual(await storedNames(app, alice), [])
    })

    test('a name is free for create again once deleted', async (t) => {
      const app = await build(t)
      const api = client(app, prefix, await newSession())
      assertOk(await api.create({ name: 'a', value: 1 }))
      assertOk(await api.delete({ name: 'a' }))
      const again = assertOk(await api.create({ name: 'a', value: 2 }))
      assert.equal(again.version, 1)
    })
  })

  describe(`PATCH ${prefix}`, () => {
    test('updates an existing attribute: new value, version + 1, creation time kept', async (t) => {
      const app = await build(t)
      const api = client(app, prefix, await newSession())
      assertOk(await api.create({ name: 'a', value: 'one' }))
      const before = assertOk(await api.get({ name: 'a' }))
      await new Promise((resolve) => setTimeout(resolve, 5))
      const updated = assertOk(await api.update({ name: 'a', value: 'two' }))
      assert.equal(updated.version, 2)
      const after = assertOk(await api.get({ name: 'a' }))
      assert.equal(after.value, 'two')
      assert.equal(after.version, 2)
      assert.equal(after.creation_time, before.creation_time)
      assert.ok(Date.parse(after.last_modified!) > Date.parse(before.last_modified!), 'last_modified moves on')
    })

    for (const falsy of [0, false, '', null]) {
      test(`writes the falsy value ${JSON.stringify(falsy)}`, async (t) => {
        const app = await build(t)
        const api = client(app, prefix, await newSession())
        assertOk(await api.create({ name: 'a', value: 'truthy' }))
        assertOk(await api.update({ name: 'a', value: falsy }))
        const got = assertOk(await api.get({ name: 'a' }))
        assert.equal(got.found, true)
        assert.equal(Object.hasOwn(got, 'value'), true)
        assert.deepEqual(got.value, falsy)
        assert.equal(got.version, 2)
      })
    }

    test('404 E009002 for a missing attribute, and nothing is created', async (t) => {
      const app = await build(t)
      const alice = await newSession()
      assertError(await client(app, prefix, alice).update({ name: 'ghost', value: 1 }), 404, 'E009002', '/name')
      assert.deepEqual(await storedNames(app, alice), [])
    })

    test('batch is all-or-nothing: one missing name updates none of the others', async (t) => {
      const app = await build(t)
      const alice = await newSession()
      const api = client(app, prefix, alice)
      assertOk(await api.create({ data: [{ name: 'a', value: 'a1' }, { name: 'c', value: 'c1' }] }))
      assertError(await api.update({ data: [{ name: 'a', value: 'a2' }, { name: 'b', value: 'b2' }, { name: 'c', value: 'c2' }] }), 404, 'E009002', '/data/1/name')
      assert.deepEqual(await storedNames(app, alice), ['a', 'c'])
      const got = resultOf<AttributeView>(assertOk(await api.get({ data: ['a', 'c'] })))
      assert.equal(got.a!.value, 'a1')
      assert.equal(got.a!.version, 1)
      assert.equal(got.c!.value, 'c1')
    })

    test('omitted expiration keeps the expiry; expiration: null removes it', async (t) => {
      const app = await build(t)
      const api = client(app, prefix, await newSession())
      const created = assertOk(await api.create({ name: 'a', value: 1, expiration: 120 }))
      const kept = assertOk(await api.update({ name: 'a', value: 2 }))
      assert.equal(kept.expiration_time, created.expiration_time)
      assert.equal(assertOk(await api.get({ name: 'a' })).expiration_time, created.expiration_time)
      const cleared = assertOk(await api.update({ name: 'a', value: 3, expiration: null }))
      assert.equal(cleared.expiration_time, null)
      assert.equal(assertOk(await api.get({ name: 'a' })).expiration_time, null)
    })

    test('expiration alone (no value) changes only the expiry', async (t) => {
      const app = await build(t)
      const api = client(app, prefix, await newSession())
      assertOk(await api.create({ name: 'a', value: 'v' }))
      const updated = assertOk(await api.update({ name: 'a', expiration: 60 }))
      assert.ok(secondsUntil(updated.expiration_time) > 55)
      const got = assertOk(await api.get({ name: 'a' }))
      assert.equal(got.value, 'v')
      assert.equal(got.version, 2)
    })

    test('omitted encrypt keeps an encrypted attribute encrypted', async (t) => {
      const app = await build(t)
      const alice = await newSession()
      const api = client(app, prefix, alice)
      assertOk(await api.create({ name: 'secret', value: 's1', encrypt: true }))
      assertOk(await api.update({ name: 'secret', value: 's2' }))
      const stored = await storedAttribute(app, alice, 'secret')
      assert.equal(stored?.encrypted, true)
      assert.match(stored!.payload, /^gcm1\./)
      // The value's JSON text, quotes included: random base64url can hold s2 but never a quote.
      assert.ok(!stored!.payload.includes('"s2"'), stored!.payload)
      const got = assertOk(await api.get({ name: 'secret' }))
      assert.equal(got.value, 's2')
      assert.equal(got.is_encrypted, true)
    })

    test('encrypt: true alone encrypts the stored value; encrypt: false alone decrypts it', async (t) => {
      const app = await build(t)
      const alice = await newSession()
      const api = client(app, prefix, alice)
      assertOk(await api.create({ name: 'card', value: { pan: '4111' } }))
      const encrypted = assertOk(await api.update({ name: 'card', encrypt: true }))
      assert.equal(encrypted.version, 2)
      let stored = await storedAttribute(app, alice, 'card')
      assert.equal(stored?.encrypted, true)
      assert.doesNotMatch(stored!.payload, /4111/)
      let got = assertOk(await api.get({ name: 'card' }))
      assert.deepEqual(got.value, { pan: '4111' })
      assert.equal(got.is_encrypted, true)

      assertOk(await api.update({ name: 'card', encrypt: false }))
      stored = await storedAttribute(app, alice, 'card')
      assert.equal(stored?.encrypted, false)
      assert.equal(stored?.payload, '{"pan":"4111"}')
      got = assertOk(await api.get({ name: 'card' }))
      assert.deepEqual(got.value, { pan: '4111' })
      assert.equal(got.is_encrypted, false)
      assert.equal(got.version, 3)
    })

    test('400 E008003 when an update gives nothing to change', async (t) => {
      const app = await build(t)
      const api = client(app, prefix, await newSession())
      assertOk(await api.create({ name: 'a', value: 1 }))
      assertError(await api.update({ name: 'a' }), 400, 'E008003', '/value')
      assertError(await api.update({ data: [{ name: 'a' }] }), 400, 'E008003', '/data/0/value')
      assert.equal(assertOk(await api.get({ name: 'a' })).version, 1)
    })

    test('if_version: a match writes, a mismatch is 409 E011005 and changes nothing', async (t) => {
      const app = await build(t)
      const api = client(app, prefix, await newSession())
      assertOk(await api.create({ name: 'a', value: 'v1' }))
      assertOk(await api.update({ name: 'a', value: 'v2', if_version: 1 }))
      assertError(await api.update({ name: 'a', value: 'v3', if_version: 1 }), 409, 'E011005', '/name')
      const got = assertOk(await api.get({ name: 'a' }))
      assert.equal(got.value, 'v2')
      assert.equal(got.version, 2)
    })

    test('batch if_version mismatch on one item rejects the whole batch', async (t) => {
      const app = await build(t)
      const api = client(app, prefix, await newSession())
      assertOk(await api.create({ data: [{ name: 'a', value: 'a1' }, { name: 'b', value: 'b1' }] }))
      assertError(await api.update({ data: [{ name: 'a', value: 'a2', if_version: 1 }, { name: 'b', value: 'b2', if_version: 7 }] }), 409, 'E011005', '/data/1/name')
      const got = resultOf<AttributeView>(assertOk(await api.get({ data: ['a', 'b'] })))
      assert.equal(got.a!.value, 'a1')
      assert.equal(got.b!.value, 'b1')
    })
  })

  describe(`PUT ${prefix}`, () => {
    test('creates a missing attribute (version 1) and overwrites an existing one (version 2)', async (t) => {
      const app = await build(t)
      const api = client(app, prefix, await newSession())
      assert.equal(assertOk(await api.set({ name: 'a', value: 'one' })).version, 1)
      assert.equal(assertOk(await api.set({ name: 'a', value: 'two' })).version, 2)
      assert.equal(assertOk(await api.get({ name: 'a' })).value, 'two')
    })

    test('set of an encrypted attribute without encrypt stays encrypted', async (t) => {
      const app = await build(t)
      const alice = await newSession()
      const api = client(app, prefix, alice)
      assertOk(await api.set({ name: 'token', value: 'first-secret', encrypt: true }))
      assertOk(await api.set({ name: 'token', value: 'second-secret' }))
      const stored = await storedAttribute(app, alice, 'token')
      assert.equal(stored?.encrypted, true)
      assert.doesNotMatch(stored!.payload, /second-secret/)
      const raw = assertOk(await api.get({ name: 'token', decrypt: false }))
      assert.equal(raw.is_encrypted, true)
      assert.match(String(raw.value), /^gcm1\./)
      assert.equal(assertOk(await api.get({ name: 'token' })).value, 'second-secret')
    })

    test('set without encrypt of a new attribute stores it in clear; encrypt: false on an encrypted one decrypts', async (t) => {
      const app = await build(t)
      const alice = await newSession()
      const api = client(app, prefix, alice)
      assertOk(await api.set({ name: 'a', value: 'plain' }))
      assert.equal((await storedAttribute(app, alice, 'a'))?.encrypted, false)
      assertOk(await api.set({ name: 'b', value: 'x', encrypt: true }))
      assertOk(await api.set({ name: 'b', value: 'y', encrypt: false }))
      const stored = await storedAttribute(app, alice, 'b')
      assert.equal(stored?.encrypted, false)
      assert.equal(stored?.payload, '"y"')
    })

    test('omitted expiration keeps the expiry; expiration: null removes it', async (t) => {
      const app = await build(t)
      const api = client(app, prefix, await newSession())
      const first = assertOk(await api.set({ name: 'a', value: 1, expiration: 300 }))
      assert.equal(assertOk(await api.set({ name: 'a', value: 2 })).expiration_time, first.expiration_time)
      assert.equal(assertOk(await api.set({ name: 'a', value: 3, expiration: null })).expiration_time, null)
      assert.equal(assertOk(await api.get({ name: 'a' })).expiration_time, null)
    })

    test('400 E008003 when value is missing (set needs a value)', async (t) => {
      const app = await build(t)
      const alice = await newSession()
      assertError(await client(app, prefix, alice).set({ name: 'a', expiration: 10 }), 400, 'E008003', '/value')
      assert.deepEqual(await storedNames(app, alice), [])
    })

    test('if_version mismatch is 409 E011005, also for a missing attribute', async (t) => {
      const app = await build(t)
      const alice = await newSession()
      const api = client(app, prefix, alice)
      assertError(await api.set({ name: 'new', value: 1, if_version: 1 }), 409, 'E011005', '/name')
      assert.deepEqual(await storedNames(app, alice), [])
      assertOk(await api.set({ name: 'a', value: 'v1' }))
      assertError(await api.set({ name: 'a', value: 'v2', if_version: 2 }), 409, 'E011005')
      assert.equal(assertOk(await api.get({ name: 'a' })).value, 'v1')
      assert.equal(assertOk(await api.set({ name: 'a', value: 'v2', if_version: 1 })).version, 2)
    })

    test('batch: upserts every item, defaults from the top level', async (t) => {
      const app = await build(t)
      const alice = await newSession()
      const api = client(app, prefix, alice)
      assertOk(await api.set({ name: 'a', value: 'old' }))
      const result = resultOf<{ version: number }>(assertOk(await api.set({ encrypt: true, data: [{ name: 'a', value: 'new' }, { name: 'b', value: 'fresh' }] })))
      assert.equal(result.a!.version, 2)
      assert.equal(result.b!.version, 1)
      assert.equal((await storedAttribute(app, alice, 'a'))?.encrypted, true)
      assert.equal((await storedAttribute(app, alice, 'b'))?.encrypted, true)
    })

    test('batch is all-or-nothing: one oversized value stores nothing', async (t) => {
      const app = await build(t, { SSO_MAX_VALUE_BYTES: 100 })
      const alice = await newSession()
      const api = client(app, prefix, alice)
      assertError(await api.set({ data: [{ name: 'a', value: 1 }, { name: 'b', value: 'x'.repeat(200) }] }), 413, 'E011001', '/data/1/value')
      assert.deepEqual(await storedNames(app, alice), [])
    })
  })

  describe(`GET ${prefix}`, () => {
    test('single: every field, times as ISO 8601 UTC with Z', async (t) => {
      const app = await build(t)
      const api = client(app, prefix, await newSession())
      const started = Date.now()
      assertOk(await api.create({ name: 'a', value: 'v', expiration: 60 }))
      const got = assertOk(await api.get({ name: 'a' }))
      const envelope = prefix.startsWith('/zato/') ? ['sub_status'] : []
      assert.deepEqual(Object.keys(got).sort(), ['cid', 'creation_time', 'expiration_time', 'found', 'is_encrypted', 'last_modified', 'name', 'status', ...envelope, 'value', 'version'])
      assert.equal(got.found, true)
      assert.equal(got.name, 'a')
      assert.equal(got.value, 'v')
      assert.equal(got.is_encrypted, false)
      assert.equal(got.version, 1)
      for (const field of ['creation_time', 'last_modified', 'expiration_time'] as const) assert.match(String(got[field]), ISO_UTC)
      const created = Date.parse(got.creation_time!)
      assert.ok(created >= started - 1 && created <= Date.now(), 'creation_time is now')
      assert.equal(got.last_modified, got.creation_time)
      assert.equal(Date.parse(got.expiration_time!), created + 60_000)
    })

    test('single: expiration_time is null when the attribute has no expiry', async (t) => {
      const app = await build(t)
      const api = client(app, prefix, await newSession())
      assertOk(await api.create({ name: 'a', value: 1 }))
      const got = assertOk(await api.get({ name: 'a' }))
      assert.equal(Object.hasOwn(got, 'expiration_time'), true)
      assert.equal(got.expiration_time, null)
    })

    test('single: found: false and nothing else for a missing name', async (t) => {
      const app = await build(t)
      const got = assertOk(await client(app, prefix, await newSession()).get({ name: 'ghost' }))
      assert.equal(got.found, false)
      assert.deepEqual(Object.keys(got).sort(), ['cid', 'found', 'status', ...(prefix.startsWith('/zato/') ? ['sub_status'] : [])])
    })

    test('reads inputs from the query string', async (t) => {
      const app = await build(t)
      const api = client(app, prefix, await newSession())
      assertOk(await api.create({ name: 'a', value: 'from-query' }))
      const got = assertOk(await api.query('GET', '', { name: 'a' }))
      assert.equal(got.value, 'from-query')
    })

    test('batch from repeated data= in the query string, keyed by name', async (t) => {
      const app = await build(t)
      const api = client(app, prefix, await newSession())
      assertOk(await api.create({ data: [{ name: 'a', value: 1 }, { name: 'b', value: [2] }] }))
      const result = resultOf<AttributeView>(assertOk(await api.query('GET', '', { data: ['a', 'b', 'ghost'] })))
      assert.deepEqual(Object.keys(result).sort(), ['a', 'b', 'ghost'])
      assert.equal(result.a!.found, true)
      assert.equal(result.a!.value, 1)
      assert.equal(result.a!.version, 1)
      assert.match(String(result.a!.creation_time), ISO_UTC)
      assert.deepEqual(result.b!.value, [2])
      assert.deepEqual(result.ghost, { found: false })
    })

    test('a single data= in the query string is still the batch form', async (t) => {
      const app = await build(t)
      const api = client(app, prefix, await newSession())
      assertOk(await api.create({ name: 'a', value: 1 }))
      const body = assertOk(await api.query('GET', '', { data: 'a' }))
      assert.equal(Object.hasOwn(body, 'found'), false)
      assert.equal(resultOf<AttributeView>(body).a!.value, 1)
    })

    test('batch from a JSON body', async (t) => {
      const app = await build(t)
      const api = client(app, prefix, await newSession())
      assertOk(await api.create({ data: [{ name: 'x', value: 'X' }, { name: 'y', value: 'Y' }] }))
      const result = resultOf<AttributeView>(assertOk(await api.get({ data: ['y', 'x'] })))
      assert.equal(result.x!.value, 'X')
      assert.equal(result.y!.value, 'Y')
    })

    test('decrypt: false returns the gcm1. ciphertext string with is_encrypted: true (body and query)', async (t) => {
      const app = await build(t)
      const alice = await newSession()
      const api = client(app, prefix, alice)
      assertOk(await api.create({ name: 's', value: { pin: 1234 }, encrypt: true }))
      const fromBody = assertOk(await api.get({ name: 's', decrypt: false }))
      assert.equal(fromBody.is_encrypted, true)
      assert.equal(typeof fromBody.value, 'string')
      assert.match(fromBody.value as string, /^gcm1\.k1\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/)
      assert.equal(fromBody.value, (await storedAttribute(app, alice, 's'))?.payload)
      const fromQuery = assertOk(await api.query('GET', '', { name: 's', decrypt: 'false' }))
      assert.equal(fromQuery.value, fromBody.value)
      const decrypted = assertOk(await api.query('GET', '', { name: 's' }))
      assert.deepEqual(decrypted.value, { pin: 1234 })
      assert.equal(decrypted.is_encrypted, true)
      const batch = resultOf<AttributeView>(assertOk(await api.get({ data: ['s'], decrypt: false })))
      assert.equal(batch.s!.value, fromBody.value)
    })

    const values: Array<[string, unknown]> = [
      ['object', { a: 1, b: 'two', c: [true, null] }],
      ['array', [1, 'two', { three: 3 }]],
      ['integer', 42],
      ['float', -3.25],
      ['null', null],
      ['true', true],
      ['string with unicode', 'żółć ✓ 🎉 "quoted" \\ slash'],
      ['nested', { level1: { level2: { level3: [{ deep: ['x', { deeper: 0 }] }] } } }],
      ['empty object', {}],
      ['empty array', []]
    ]
    for (const [label, value] of values) {
      test(`round-trips a JSON ${label}, in clear and encrypted`, async (t) => {
        const app = await build(t)
        const api = client(app, prefix, await newSession())
        assertOk(await api.create({ data: [{ name: 'clear', value }, { name: 'enc', value, encrypt: true }] }))
        const result = resultOf<AttributeView>(assertOk(await api.get({ data: ['clear', 'enc'] })))
        assert.deepEqual(result.clear!.value, value)
        assert.deepEqual(result.enc!.value, value)
      })
    }

    test('target_ust in the query string with the UST in the Authorization header', async (t) => {
      const app = await build(t)
      const mine = await newSession({ sub: 'alice' })
      const other = await newSession({ sub: 'alice' })
      assertOk(await client(app, prefix, other).create({ name: 'a', value: 'other-session' }))
      const got = assertOk(await client(app, prefix, mine).query('GET', '', { name: 'a', target_ust: other.ust }))
      assert.equal(got.value, 'other-session')
    })

    test('400 E008002 for duplicate names in a batch', async (t) => {
      const app = await build(t)
      const api = client(app, prefix, await newSession())
      assertError(await api.get({ data: ['a', 'b', 'a'] }), 400, 'E008002', '/data/2')
      assertError(await api.query('GET', '', { data: ['a', 'a'] }), 400, 'E008002', '/data/1')
    })

    test('400 E008002 for a field given in both the query string and the body', async (t) => {
      const app = await build(t)
      const alice = await newSession()
      const reply = await send(app, { method: 'GET', url: prefix, ust: alice.ust, query: { name: 'a' }, body: { current_app: 'CRM', name: 'a' } })
      assertError(reply, 400, 'E008002', '/name')
    })

    test('400 E008002 for current_ust in the query string: tokens stay out of URLs', async (t) => {
      const app = await build(t)
      const alice = await newSession()
      const reply = await send(app, { method: 'GET', url: prefix, query: { current_app: 'CRM', name: 'a', current_ust: alice.ust } })
      assertError(reply, 400, 'E008002', '/current_ust')
    })

    test('400 E008002 for an unknown query parameter and for a non-boolean decrypt', async (t) => {
      const app = await build(t)
      const api = client(app, prefix, await newSession())
      assertError(await api.query('GET', '', { name: 'a', bogus: '1' }), 400, 'E008002', '/bogus')
      assertError(await api.query('GET', '', { name: 'a', decrypt: 'maybe' }), 400, 'E008002', '/decrypt')
      // Zato's SimpleIO took "true"/"false" for a boolean, so its path does (test/routes/zato-transport.test.ts).
      if (!prefix.startsWith('/zato/')) assertError(await api.get({ name: 'a', decrypt: 'false' }), 400, 'E008002', '/decrypt')
      assertError(await api.get({ name: 'a', decrypt: 'no' }), 400, 'E008002', '/decrypt')
    })

    test('expired attributes are invisible at once, and their names are free for create', async (t) => {
      let now = Date.now()
      const store = new MemoryStore({ sessionIdleTtlMs: 3_600_000, sessionMaxTtlMs: 86_400_000, maxAttributesPerSession: 1000, now: () => now })
      const app = await build(t, {}, { store })
      const alice = await newSession()
      const api = client(app, prefix, alice)
      assertOk(await api.create({ data: [{ name: 'short', value: 1, expiration: 10 }, { name: 'long', value: 2 }] }))
      now += 10_000
      assert.equal(assertOk(await api.get({ name: 'short' })).found, false)
      assert.deepEqual(resultOf<boolean>(assertOk(await api.exists({ data: ['short', 'long'] }))), { short: false, long: true })
      assert.deepEqual(assertOk(await api.names()).result, ['long'])
      assertError(await api.update({ name: 'short', value: 3 }), 404, 'E009002')
      assert.equal(assertOk(await api.create({ name: 'short', value: 4 })).version, 1)
    })
  })

  describe(`DELETE ${prefix}`, () => {
    test('deletes one attribute from a JSON body; deleting it again is ok with deleted: false', async (t) => {
      const app = await build(t)
      const alice = await newSession()
      const api = client(app, prefix, alice)
      assertOk(await api.create({ data: [{ name: 'a', value: 1 }, { name: 'b', value: 2 }] }))
      assert.equal(assertOk(await api.delete({ name: 'a' })).deleted, true)
      assert.deepEqual(await storedNames(app, alice), ['b'])
      const again = assertOk(await api.delete({ name: 'a' }))
      assert.equal(again.deleted, false)
    })

    test('deletes from the query string, single and batch', async (t) => {
      const app = await build(t)
      const alice = await newSession()
      const api = client(app, prefix, alice)
      assertOk(await api.create({ data: [{ name: 'a', value: 1 }, { name: 'b', value: 2 }, { name: 'c', value: 3 }] }))
      assert.equal(assertOk(await api.query('DELETE', '', { name: 'a' })).deleted, true)
      const batch = assertOk(await api.query('DELETE', '', { data: ['b', 'ghost'] }))
      assert.deepEqual(batch.result, { b: true, ghost: false })
      assert.deepEqual(await storedNames(app, alice), ['c'])
    })

    test('batch from a JSON body: result keyed by name', async (t) => {
      const app = await build(t)
      const alice = await newSession()
      const api = client(app, prefix, alice)
      assertOk(await api.create({ data: [{ name: 'a', value: 1 }, { name: 'b', value: 2 }] }))
      assert.deepEqual(assertOk(await api.delete({ data: ['a', 'b', 'c'] })).result, { a: true, b: true, c: false })
      assert.deepEqual(await storedNames(app, alice), [])
    })

    test('if_version: a mismatch is 409 E011005 and keeps the attribute; a match deletes', async (t) => {
      const app = await build(t)
      const alice = await newSession()
      const api = client(app, prefix, alice)
      assertOk(await api.create({ name: 'a', value: 1 }))
      assertOk(await api.update({ name: 'a', value: 2 }))
      assertError(await api.delete({ name: 'a', if_version: 1 }), 409, 'E011005', '/name')
      assert.deepEqual(await storedNames(app, alice), ['a'])
      assertError(await api.query('DELETE', '', { name: 'a', if_version: '3' }), 409, 'E011005')
      assert.deepEqual(await storedNames(app, alice), ['a'])
      assert.equal(assertOk(await api.delete({ name: 'a', if_version: 2 })).deleted, true)
      assert.deepEqual(await storedNames(app, alice), [])
    })

    test('400 E008002 for if_version with the batch form, nothing deleted', async (t) => {
      const app = await build(t)
      const alice = await newSession()
      const api = client(app, prefix, alice)
      assertOk(await api.create({ name: 'a', value: 1 }))
      assertError(await api.delete({ data: ['a'], if_version: 1 }), 400, 'E008002', '/if_version')
      assert.deepEqual(await storedNames(app, alice), ['a'])
    })

    test('400 E008002 for duplicate names in a batch, nothing deleted', async (t) => {
      const app = await build(t)
      const alice = await newSession()
      const api = client(app, prefix, alice)
      assertOk(await api.create({ data: [{ name: 'a', value: 1 }, { name: 'b', value: 2 }] }))
      assertError(await api.delete({ data: ['a', 'b', 'a'] }), 400, 'E008002', '/data/2')
      assert.deepEqual(await storedNames(app, alice), ['a', 'b'])
    })
  })

  describe(`GET ${prefix}/exists`, () => {
    test('single: a boolean result, from a body or the query string', async (t) => {
      const app = await build(t)
      const api = client(app, prefix, await newSession())
      assertOk(await api.create({ name: 'a', value: 1 }))
      assert.equal(assertOk(await api.exists({ name: 'a' })).result, true)
      assert.equal(assertOk(await api.exists({ name: 'b' })).result, false)
      assert.equal(assertOk(await api.query('GET', '/exists', { name: 'a' })).result, true)
      assert.equal(assertOk(await api.query('GET', '/exists', { name: 'b' })).result, false)
    })

    test('batch: an object name -> boolean, from a body or repeated data=', async (t) => {
      const app = await build(t)
      const api = client(app, prefix, await newSession())
      assertOk(await api.create({ data: [{ name: 'a', value: 1 }, { name: 'c', value: 0 }] }))
      assert.deepEqual(assertOk(await api.exists({ data: ['a', 'b', 'c'] })).result, { a: true, b: false, c: true })
      assert.deepEqual(assertOk(await api.query('GET', '/exists', { data: ['a', 'b'] })).result, { a: true, b: false })
    })

    test('an attribute holding null exists', async (t) => {
      const app = await build(t)
      const api = client(app, prefix, await newSession())
      assertOk(await api.create({ name: 'n', value: null }))
      assert.equal(assertOk(await api.exists({ name: 'n' })).result, true)
    })
  })

  describe(`GET ${prefix}/names`, () => {
    test('lists live names sorted by code point', async (t) => {
      const app = await build(t)
      const api = client(app, prefix, await newSession())
      assert.deepEqual(assertOk(await api.names()).result, [])
      assertOk(await api.create({ data: ['b', 'a', 'C', 'aa', 'é', '_', '10', '9'].map((name) => ({ name, value: name })) }))
      assert.deepEqual(assertOk(await api.names()).result, ['10', '9', 'C', '_', 'a', 'aa', 'b', 'é'])
      assertOk(await api.delete({ name: 'aa' }))
      assert.deepEqual(assertOk(await api.names()).result, ['10', '9', 'C', '_', 'a', 'b', 'é'])
    })

    test('takes its inputs from the query string', async (t) => {
      const app = await build(t)
      const api = client(app, prefix, await newSession())
      assertOk(await api.create({ name: 'x', value: 1 }))
      assert.deepEqual(assertOk(await api.query('GET', '/names', {})).result, ['x'])
    })

    test('each session has its own names', async (t) => {
      const app = await build(t)
      const one = client(app, prefix, await newSession())
      const two = client(app, prefix, await newSession())
      assertOk(await one.create({ name: 'only-one', value: 1 }))
      assertOk(await two.create({ name: 'only-two', value: 2 }))
      assert.deepEqual(assertOk(await one.names()).result, ['only-one'])
      assert.deepEqual(assertOk(await two.names()).result, ['only-two'])
    })

    test('400 E008002 when given name or data: names takes neither', async (t) => {
      const app = await build(t)
      const api = client(app, prefix, await newSession())
      // Zato's names ignored a name in the body, so its path does (test/routes/zato-transport.test.ts).
      if (!prefix.startsWith('/zato/')) assertError(await api.names({ name: 'a' }), 400, 'E008002', '/name')
      assertError(await api.query('GET', '/names', { data: 'a' }), 400, 'E008002', '/data')
    })
  })
}

interface Operation {
  label: string
  method: Method
  path: string
  /** A single-form body aimed at the seeded attribute (or a new one, for create). */
  single: Fields
  /** A batch-form body, when the operation has one. */
  batch?: Fields
}

const OPERATIONS: Operation[] = [
  { label: 'create', method: 'POST', path: '', single: { name: 'fresh', value: 'new' }, batch: { data: [{ name: 'fresh', value: 'new' }] } },
  { label: 'update', method: 'PATCH', path: '', single: { name: 'seed', value: 'changed' }, batch: { data: [{ name: 'seed', value: 'changed' }] } },
  { label: 'set', method: 'PUT', path: '', single: { name: 'seed', value: 'changed' }, batch: { data: [{ name: 'seed', value: 'changed' }] } },
  { label: 'get', method: 'GET', path: '', single: { name: 'seed' }, batch: { data: ['seed'] } },
  { label: 'delete', method: 'DELETE', path: '', single: { name: 'seed' }, batch: { data: ['seed'] } },
  { label: 'exists', method: 'GET', path: '/exists', single: { name: 'seed' }, batch: { data: ['seed'] } },
  { label: 'names', method: 'GET', path: '/names', single: {} }
]

/** An app with one attribute `seed` = "orig" (version 1) in alice's session. */
async function seeded (t: TestContext, overrides: Parameters<typeof build>[1] = {}) {
  const app = await build(t, overrides)
  const alice = await newSession()
  assertOk(await client(app, PREFIXES[0], alice).create({ name: 'seed', value: 'orig' }))
  return { app, alice }
}

/** Nothing about a rejected request is stored: the session still holds exactly the seed. */
async function assertUntouched (app: App, session: Session): Promise<void> {
  assert.deepEqual(await storedNames(app, session), ['seed'])
  const seed = await storedAttribute(app, session, 'seed')
  assert.equal(seed?.payload, '"orig"')
  assert.equal(seed?.version, 1)
  assert.equal(seed?.encrypted, false)
}

for (const prefix of PREFIXES) {
  for (const op of OPERATIONS) {
    describe(`${op.method} ${prefix}${op.path} (${op.label}): rejected requests`, () => {
      const url = `${prefix}${op.path}`

      test('400 E008003 without current_app', async (t) => {
        const { app, alice } = await seeded(t)
        assertError(await send(app, { method: op.method, url, ust: alice.ust, body: op.single }), 400, 'E008003', '/current_app')
        await assertUntouched(app, alice)
      })

      test('401 E007001 without current_ust (no body field, no Authorization header), with a challenge and no error attribute', async (t) => {
        const { app, alice } = await seeded(t)
        for (const body of [{ current_app: 'CRM', ...op.single }, { ...op.single }]) {
          const reply = await send(app, { method: op.method, url, body })
          assertError(reply, 401, 'E007001')
          assert.equal(reply.headers['www-authenticate'], 'Bearer realm="sso-attrs"')
        }
        await assertUntouched(app, alice)
      })

      if (op.label !== 'names') {
        test('400 E008003 with neither name nor data', async (t) => {
          const { app, alice } = await seeded(t)
          assertError(await send(app, { method: op.method, url, ust: alice.ust, body: { current_app: 'CRM' } }), 400, 'E008003', '/name')
          await assertUntouched(app, alice)
        })

        test('400 E008002 with both name and data', async (t) => {
          const { app, alice } = await seeded(t)
          assertError(await send(app, { method: op.method, url, ust: alice.ust, body: { current_app: 'CRM', ...op.single, ...op.batch } }), 400, 'E008002', '/data')
          await assertUntouched(app, alice)
        })

        test('400 E008002 for a name of 192 characters (191 is the limit) and a name with control characters', async (t) => {
          const { app, alice } = await seeded(t)
          for (const name of ['n'.repeat(192), 'n'.repeat(2000), 'a\nb', 'a\u0000b', 'tab\there', 'del\u007f', 'c1\u009b']) {
            assertError(await send(app, { method: op.method, url, ust: alice.ust, body: { current_app: 'CRM', ...op.single, name } }), 400, 'E008002', '/name')
          }
          await assertUntouched(app, alice)
        })
      }

      test('400 E008002 for an unknown body field', async (t) => {
        const { app, alice } = await seeded(t)
        assertError(await send(app, { method: op.method, url, ust: alice.ust, body: { current_app: 'CRM', ...op.single, colour: 'red' } }), 400, 'E008002', '/colour')
        await assertUntouched(app, alice)
      })

      test('400 E008002 for malformed JSON', async (t) => {
        const { app, alice } = await seeded(t)
        const payload = '{"current_app": "CRM", "name": "seed", '
        assertError(await send(app, { method: op.method, url, ust: alice.ust, payload, headers: { 'content-type': 'application/json' } }), 400, 'E008002')
        await assertUntouched(app, alice)
      })

      test('400 E008002 for a wrong type in a common field', async (t) => {
        const { app, alice } = await seeded(t)
        assertError(await send(app, { method: op.method, url, ust: alice.ust, body: { ...op.single, current_app: 7 } }), 400, 'E008002', '/current_app')
        await assertUntouched(app, alice)
      })

      test('400 E008002 when the body current_ust differs from the bearer token', async (t) => {
        const { app, alice } = await seeded(t)
        const other = await newSession()
        assertError(await send(app, { method: op.method, url, ust: alice.ust, body: { current_app: 'CRM', current_ust: other.ust, ...op.single } }), 400, 'E008002', '/current_ust')
        await assertUntouched(app, alice)
      })

      test('401 E007001 for a token signed with another secret, expired, of another issuer or audience, without sid, or garbage', async (t) => {
        const { app, alice } = await seeded(t)
        const past = Math.floor(Date.now() / 1000) - 120
        const tokens = [
          await mintUst({ sid: alice.sid, secret: 'another-secret-that-is-at-least-32-bytes!!' }),
          await mintUst({ sid: alice.sid, expiresIn: past }),
          await mintUst({ sid: alice.sid, issuer: 'https://evil.test' }),
          await mintUst({ sid: alice.sid, audience: 'someone-else' }),
          await mintUst({ claims: { sid: undefined } }),
          await mintUst({ claims: { sid: '' } }),
          'garbage',
          'a.b.c'
        ]
        for (const ust of tokens) {
          const bearer = await send(app, { method: op.method, url, ust, body: { current_app: 'CRM', ...op.single } })
          const reply = assertError(bearer, 401, 'E007001')
          assert.doesNotMatch(JSON.stringify(reply), /at-least-32|garbage/)
          assert.match(String(bearer.headers['www-authenticate']), /^Bearer realm="sso-attrs", error="invalid_token", error_description="[^"]+"$/)
          const field = await send(app, { method: op.method, url, body: { current_app: 'CRM', current_ust: ust, ...op.single } })
          assertError(field, 401, 'E007001')
          assert.match(String(field.headers['www-authenticate']), /error="invalid_token"/)
        }
        await assertUntouched(app, alice)
      })

      test('401 E007001 for an Authorization header that is not Bearer', async (t) => {
        const { app, alice } = await seeded(t)
        const reply = await send(app, { method: op.method, url, headers: { authorization: `Basic ${alice.ust}` }, body: { current_app: 'CRM', ...op.single } })
        assertError(reply, 401, 'E007001')
        // Credentials of another scheme: the challenge names ours, with no error (RFC 6750 §3.1).
        assert.equal(reply.headers['www-authenticate'], 'Bearer realm="sso-attrs"')
        await assertUntouched(app, alice)
      })

      test('401 E007001 for an invalid target_ust', async (t) => {
        const { app, alice } = await seeded(t)
        const expiredTarget = await mintUst({ expiresIn: Math.floor(Date.now() / 1000) - 120 })
        for (const target of ['garbage', expiredTarget]) {
          assertError(await send(app, { method: op.method, url, ust: alice.ust, body: { current_app: 'CRM', target_ust: target, ...op.single } }), 401, 'E007001')
        }
        await assertUntouched(app, alice)
      })

      test('403 E004001 for an app that is not allowed', async (t) => {
        const { app, alice } = await seeded(t)
        for (const currentApp of ['ERP', 'crm', '']) {
          const reply = await send(app, { method: op.method, url, ust: alice.ust, body: { ...op.single, current_app: currentApp } })
          if (currentApp === '') assertError(reply, 400, 'E008002', '/current_app')
          else assertError(reply, 403, 'E004001')
        }
        await assertUntouched(app, alice)
      })

      test('the second allowed app (Portal) works', async (t) => {
        const { app, alice } = await seeded(t)
        const reply = await send(app, { method: op.method, url, ust: alice.ust, body: { ...op.single, current_app: 'Portal' } })
        assertOk(reply)
      })

      test('403 E005001 for another user\'s session without the super-user role', async (t) => {
        const { app, alice } = await seeded(t)
        const bob = await newSession({ sub: 'bob', roles: ['admin', 'sso:super-user-not'] })
        assertError(await send(app, { method: op.method, url, ust: bob.ust, body: { current_app: 'CRM', target_ust: alice.ust, ...op.single } }), 403, 'E005001')
        await assertUntouched(app, alice)
        assert.deepEqual(await storedNames(app, bob), [])
      })

      test('a super-user may touch another user\'s session; the target session is the one touched', async (t) => {
        const { app, alice } = await seeded(t)
        const root = await newSession({ sub: 'root', roles: ['sso:super-user'] })
        assertOk(await send(app, { method: op.method, url, ust: root.ust, body: { current_app: 'CRM', target_ust: alice.ust, ...op.single } }))
        assert.deepEqual(await storedNames(app, root), [])
        const expected = op.label === 'create' ? ['fresh', 'seed'] : op.label === 'delete' ? [] : ['seed']
        assert.deepEqual(await storedNames(app, alice), expected)
        if (op.label === 'update' || op.label === 'set') assert.equal((await storedAttribute(app, alice, 'seed'))?.payload, '"changed"')
      })

      test('the same user may touch another of their sessions', async (t) => {
        const { app, alice } = await seeded(t)
        const aliceElsewhere = await newSession({ sub: 'alice' })
        assertOk(await send(app, { method: op.method, url, ust: aliceElsewhere.ust, body: { current_app: 'CRM', target_ust: alice.ust, ...op.single } }))
        assert.deepEqual(await storedNames(app, aliceElsewhere), [])
        const expected = op.label === 'create' ? ['fresh', 'seed'] : op.label === 'delete' ? [] : ['seed']
        assert.deepEqual(await storedNames(app, alice), expected)
      })

      if (op.batch !== undefined) {
        test('413 E011001 for a batch over SSO_MAX_BATCH', async (t) => {
          const { app, alice } = await seeded(t, { SSO_MAX_BATCH: 3 })
          const names = ['seed', 'b', 'c', 'd']
          const data = op.method === 'GET' || op.method === 'DELETE' ? names : names.map((name) => ({ name, value: 1 }))
          assertError(await send(app, { method: op.method, url, ust: alice.ust, body: { current_app: 'CRM', data } }), 413, 'E011001', '/data')
          await assertUntouched(app, alice)
          if (op.label === 'update') assertOk(await client(app, prefix, alice).set({ data: [{ name: 'b', value: 1 }, { name: 'c', value: 1 }] }))
          const ok = await send(app, { method: op.method, url, ust: alice.ust, body: { current_app: 'CRM', data: data.slice(op.label === 'create' ? 1 : 0, 3) } })
          assertOk(ok)
        })
      }
    })
  }
}

describe('E008002: schema errors name the offending field with a JSON Pointer', () => {
  for (const prefix of PREFIXES) {
    test(`${prefix}: /data/2/expiration, with no coercion of "60" in bodies`, async (t) => {
      const { app, alice } = await seeded(t)
      const api = client(app, prefix, alice)
      for (const expiration of ['60', 0, -5, 1.5, true, {}]) {
        const reply = assertError(await api.set({ data: [{ name: 'a', value: 1 }, { name: 'b', value: 2 }, { name: 'c', value: 3, expiration }] }), 400, 'E008002', '/data/2/expiration')
        assert.deepEqual(reply.details!.map((detail) => detail.path), ['/data/2/expiration'])
        assert.equal(typeof reply.details![0]!.message, 'string')
      }
      assertError(await api.set({ name: 'seed', value: 1, expiration: '60' }), 400, 'E008002', '/expiration')
      await assertUntouched(app, alice)
    })

    test(`${prefix}: wrong types elsewhere: encrypt, if_version, name, data, items`, async (t) => {
      const { app, alice } = await seeded(t)
      const api = client(app, prefix, alice)
      assertError(await api.set({ name: 'seed', value: 1, encrypt: 'yes' }), 400, 'E008002', '/encrypt')
      assertError(await api.update({ name: 'seed', value: 1, if_version: '1' }), 400, 'E008002', '/if_version')
      assertError(await api.update({ name: 'seed', value: 1, if_version: 0 }), 400, 'E008002', '/if_version')
      assertError(await api.set({ name: 7, value: 1 }), 400, 'E008002', '/name')
      assertError(await api.set({ data: { name: 'seed', value: 1 } }), 400, 'E008002', '/data')
      assertError(await api.set({ data: [{ name: 'seed', value: 1 }, 'x'] }), 400, 'E008002', '/data/1')
      assertError(await api.set({ data: [{ name: 'seed', value: 1, extra: true }] }), 400, 'E008002', '/data/0/extra')
      assertError(await api.set({ data: [{ name: 'seed', value: 1 }, { value: 2 }] }), 400, 'E008003', '/data/1/name')
      assertError(await api.get({ data: ['seed', 5] }), 400, 'E008002', '/data/1')
      assertError(await api.delete({ name: ['seed'] }), 400, 'E008002', '/name')
      assertError(await api.create({ name: 'new', value: 1, if_version: 1 }), 400, 'E008002', '/if_version')
      await assertUntouched(app, alice)
    })

    test(`${prefix}: a name of exactly 191 characters is accepted; control characters in a batch name the item`, async (t) => {
      const { app, alice } = await seeded(t)
      const api = client(app, prefix, alice)
      assertError(await api.create({ data: [{ name: 'ok', value: 1 }, { name: 'bad\u0007', value: 1 }] }), 400, 'E008002', '/data/1/name')
      assertError(await api.get({ data: ['ok', 'x'.repeat(192)] }), 400, 'E008002', '/data/1')
      await assertUntouched(app, alice)
      assertOk(await api.create({ name: 'x'.repeat(191), value: 1 }))
      assert.deepEqual(await storedNames(app, alice), ['seed', 'x'.repeat(191)])
    })

    test(`${prefix}: an empty (or null) JSON body is 400 E008003; a body that is not an object is 400 E008002`, async (t) => {
      const { app, alice } = await seeded(t)
      const json = { 'content-type': 'application/json' }
      assertError(await send(app, { method: 'PUT', url: prefix, ust: alice.ust, payload: '', headers: json }), 400, 'E008003')
      assertError(await send(app, { method: 'PUT', url: prefix, ust: alice.ust, payload: 'null', headers: json }), 400, 'E008003', '/current_app')
      for (const payload of ['[1,2]', '"seed"', '5', 'true']) {
        assertError(await send(app, { method: 'PUT', url: prefix, ust: alice.ust, payload, headers: json }), 400, 'E008002', '')
      }
      await assertUntouched(app, alice)
    })

    test(`${prefix}: prototype pollution keys are refused`, async (t) => {
      const { app, alice } = await seeded(t)
      const payload = '{"current_app":"CRM","name":"seed","value":1,"__proto__":{"polluted":true}}'
      assertError(await send(app, { method: 'PUT', url: prefix, ust: alice.ust, payload, headers: { 'content-type': 'application/json' } }), 400, 'E008002')
      assert.equal(({} as Record<string, unknown>).polluted, undefined)
      await assertUntouched(app, alice)
    })
  }
})

describe('E011001: limits', () => {
  for (const prefix of PREFIXES) {
    test(`${prefix}: a value over 64 KiB serialized is refused; exactly 64 KiB is accepted (UTF-8 bytes count)`, async (t) => {
      const { app, alice } = await seeded(t)
      const api = client(app, prefix, alice)
      assertError(await api.set({ name: 'seed', value: 'x'.repeat(65_535) }), 413, 'E011001', '/value')
      assertError(await api.create({ name: 'big', value: 'é'.repeat(32_768) }), 413, 'E011001', '/value')
      assertError(await api.set({ data: [{ name: 'a', value: 1 }, { name: 'big', value: { s: 'x'.repeat(70_000) } }] }), 413, 'E011001', '/data/1/value')
      await assertUntouched(app, alice)
      assertOk(await api.create({ name: 'exact', value: 'x'.repeat(65_534) }))
      assertOk(await api.create({ name: 'exact2', value: 'é'.repeat(32_767) }))
      assert.equal(assertOk(await api.get({ name: 'exact2' })).value, 'é'.repeat(32_767))
    })

    test(`${prefix}: SSO_MAX_VALUE_BYTES is honoured, also for encrypted values and updates`, async (t) => {
      const { app, alice } = await seeded(t, { SSO_MAX_VALUE_BYTES: 100 })
      const api = client(app, prefix, alice)
      assertError(await api.create({ name: 'a', value: 'x'.repeat(99), encrypt: true }), 413, 'E011001', '/value')
      assertError(await api.update({ name: 'seed', value: 'x'.repeat(99) }), 413, 'E011001', '/value')
      await assertUntouched(app, alice)
      assertOk(await api.create({ name: 'a', value: 'x'.repeat(98), encrypt: true }))
    })

    test(`${prefix}: more than 100 items a batch by default`, async (t) => {
      const { app, alice } = await seeded(t)
      const api = client(app, prefix, alice)
      const items = (count: number) => Array.from({ length: count }, (_, index) => ({ name: `n${index}`, value: index }))
      assertError(await api.create({ data: items(101) }), 413, 'E011001', '/data')
      assertError(await api.get({ data: items(101).map((item) => item.name) }), 413, 'E011001', '/data')
      await assertUntouched(app, alice)
      assertOk(await api.create({ data: items(100) }))
      assert.equal((await storedNames(app, alice)).length, 101)
    })

    test(`${prefix}: attributes per session over SSO_MAX_ATTRS_PER_SESSION`, async (t) => {
      const { app, alice } = await seeded(t, { SSO_MAX_ATTRS_PER_SESSION: 3 })
      const api = client(app, prefix, alice)
      assertError(await api.create({ data: [{ name: 'a', value: 1 }, { name: 'b', value: 2 }, { name: 'c', value: 3 }] }), 413, 'E011001')
      await assertUntouched(app, alice)
      assertOk(await api.create({ data: [{ name: 'a', value: 1 }, { name: 'b', value: 2 }] }))
      assertError(await api.create({ name: 'c', value: 3 }), 413, 'E011001')
      assertError(await api.set({ name: 'c', value: 3 }), 413, 'E011001')
      assertError(await api.set({ data: [{ name: 'a', value: 'a2' }, { name: 'c', value: 3 }] }), 413, 'E011001')
      assert.deepEqual(await storedNames(app, alice), ['a', 'b', 'seed'])
      assert.equal((await storedAttribute(app, alice, 'a'))?.payload, '1')
      assert.equal(assertOk(await api.set({ name: 'a', value: 'a3' })).version, 2)
      assertOk(await api.delete({ name: 'b' }))
      assertOk(await api.create({ name: 'c', value: 3 }))
      assert.deepEqual(await storedNames(app, alice), ['a', 'c', 'seed'])
    })

    test(`${prefix}: a body over SSO_BODY_LIMIT is 413 E011001`, async (t) => {
      const { app, alice } = await seeded(t, { SSO_BODY_LIMIT: 2048 })
      const reply = await send(app, { method: 'PUT', url: prefix, ust: alice.ust, body: { current_app: 'CRM', name: 'seed', value: 'x'.repeat(3000) } })
      assertError(reply, 413, 'E011001')
      await assertUntouched(app, alice)
    })
  }
})

describe('E008001: unknown route, method or media type', () => {
  test('404 for an unknown route', async (t) => {
    const app = await build(t)
    const alice = await newSession()
    for (const url of ['/nope', '/sso/session/attrs', '/sso/session/attr/other', '/zato/sso/user/attr/other', '/sso/session/attr/names/x']) {
      const body = assertError(await send(app, { method: 'GET', url, ust: alice.ust }), 404, 'E008001')
      assert.equal(Object.hasOwn(body, 'details'), false)
    }
  })

  test('405 for a method a known path does not serve', async (t) => {
    const app = await build(t)
    const alice = await newSession()
    const calls: Array<[Method, string]> = [
      ['POST', '/sso/session/attr/exists'], ['DELETE', '/sso/session/attr/names'], ['PATCH', '/zato/sso/session/attr/names'],
      ['PUT', '/zato/sso/session/attr/exists'], ['POST', '/healthz'], ['DELETE', '/readyz']
    ]
    for (const [method, url] of calls) {
      assertError(await send(app, { method, url, ust: alice.ust, body: { current_app: 'CRM', name: 'a', value: 1 } }), 405, 'E008001')
    }
    assert.deepEqual(await storedNames(app, alice), [])
  })

  // The Zato path parses any content type as JSON: test/routes/zato-transport.test.ts.
  test('/sso/session/attr: 415 for text/plain, other media types and none', async (t) => {
    const { app, alice } = await seeded(t)
    const json = JSON.stringify({ current_app: 'CRM', name: 'seed', value: 'x' })
    for (const contentType of ['text/plain', 'application/xml', 'multipart/form-data; boundary=x', undefined]) {
      const headers: Record<string, string> = contentType === undefined ? {} : { 'content-type': contentType }
      assertError(await send(app, { method: 'PUT', url: PREFIXES[0], ust: alice.ust, payload: json, headers }), 415, 'E008001')
    }
    await assertUntouched(app, alice)
  })

  test('/sso/session/attr answers 415 to a JSON body sent as application/x-www-form-urlencoded', async (t) => {
    const { app, alice } = await seeded(t)
    const payload = JSON.stringify({ current_app: 'CRM', name: 'seed', value: 'x' })
    for (const method of ['POST', 'PUT', 'PATCH', 'GET', 'DELETE'] as const) {
      assertError(await send(app, { method, url: '/sso/session/attr', ust: alice.ust, payload, headers: { 'content-type': 'application/x-www-form-urlencoded' } }), 415, 'E008001')
    }
    await assertUntouched(app, alice)
  })
})

describe('Zato path: JSON sent as a form (curl -d)', () => {
  const form = { 'content-type': 'application/x-www-form-urlencoded' }

  test('every operation accepts a JSON body with the form content type', async (t) => {
    const app = await build(t)
    const alice = await newSession()
    const url = '/zato/sso/session/attr'
    const body = (fields: Fields) => JSON.stringify({ current_app: 'CRM', current_ust: alice.ust, ...fields })
    assertOk(await send(app, { method: 'POST', url, payload: body({ name: 'a', value: { x: 1 } }), headers: form }))
    assertOk(await send(app, { method: 'PATCH', url, payload: body({ name: 'a', value: { x: 2 } }), headers: form }))
    assertOk(await send(app, { method: 'PUT', url, payload: body({ name: 'b', value: 'b' }), headers: form }))
    const got = assertOk(await send(app, { method: 'GET', url, payload: body({ name: 'a' }), headers: form }))
    assert.deepEqual(got.value, { x: 2 })
    assert.equal(got.version, 2)
    assert.equal(assertOk(await send(app, { method: 'GET', url: `${url}/exists`, payload: body({ name: 'b' }), headers: form })).result, true)
    assert.deepEqual(assertOk(await send(app, { method: 'GET', url: `${url}/names`, payload: body({}), headers: form })).result, ['a', 'b'])
    assert.equal(assertOk(await send(app, { method: 'DELETE', url, payload: body({ name: 'b' }), headers: form })).deleted, true)
    assert.deepEqual(await storedNames(app, alice), ['a'])
  })

  test('a real form body (key=value) is 400 E008002, not stored', async (t) => {
    const { app, alice } = await seeded(t)
    assertError(await send(app, { method: 'PUT', url: '/zato/sso/session/attr', ust: alice.ust, payload: 'current_app=CRM&name=seed&value=x', headers: form }), 400, 'E008002')
    await assertUntouched(app, alice)
  })

  test('the schema still applies to a form-typed JSON body', async (t) => {
    const { app, alice } = await seeded(t)
    const payload = JSON.stringify({ current_app: 'CRM', data: [{ name: 'a', value: 1 }, { name: 'b', value: 1 }, { name: 'c', value: 1, expiration: '60' }] })
    assertError(await send(app, { method: 'POST', url: '/zato/sso/session/attr', ust: alice.ust, payload, headers: form }), 400, 'E008002', '/data/2/expiration')
    await assertUntouched(app, alice)
  })
})

describe('envelope', () => {
  test('cid is unique per request and equals the x-cid header, on success and on error', async (t) => {
    const app = await build(t)
    const alice = await newSession()
    const api = client(app, PREFIXES[0], alice)
    const replies: Reply[] = []
    for (let i = 0; i < 10; i++) {
      replies.push(await api.set({ name: 'a', value: i }))
      replies.push(await api.update({ name: 'ghost', value: i }))
      replies.push(await send(app, { method: 'GET', url: '/nope' }))
      replies.push(await send(app, { method: 'GET', url: '/healthz' }))
    }
    const cids = replies.map((reply) => {
      assert.match(reply.body.cid, CID)
      assert.equal(reply.headers['x-cid'], reply.body.cid)
      return reply.body.cid
    })
    assert.equal(new Set(cids).size, cids.length)
  })

  test('a client-sent x-cid or request-id header is not echoed as the cid', async (t) => {
    const app = await build(t)
    const alice = await newSession()
    const reply = await send(app, { method: 'GET', url: '/sso/session/attr/names', ust: alice.ust, query: { current_app: 'CRM' }, headers: { 'x-cid': 'mine', 'request-id': 'mine' } })
    assert.notEqual(assertOk(reply).cid, 'mine')
  })

  test('ok responses carry status ok and no sub_status; errors carry status error, sub_status and a message', async (t) => {
    const app = await build(t)
    const alice = await newSession()
    const api = client(app, PREFIXES[0], alice)
    const ok = assertOk(await api.create({ name: 'a', value: 1 }))
    assert.equal(Object.hasOwn(ok, 'details'), false)
    assert.equal(Object.hasOwn(ok, 'message'), false)
    const error = assertError(await api.create({ name: 'a', value: 1 }), 409, 'E009001')
    assert.equal(typeof error.message, 'string')
    assert.equal(Object.hasOwn(error, 'stack'), false)
  })

  test('responses are not cacheable', async (t) => {
    const app = await build(t)
    const alice = await newSession()
    const reply = await client(app, PREFIXES[0], alice).get({ name: 'a' })
    assert.equal(reply.headers['cache-control'], 'no-store')
  })
})

/** A memory store whose every call fails the way a store can fail. */
function failingStore (error: () => Error): Store {
  const inner = new MemoryStore({ sessionIdleTtlMs: 3_600_000, sessionMaxTtlMs: 86_400_000, maxAttributesPerSession: 1000 })
  const fail = async (): Promise<never> => { throw error() }
  // Token admission passes, so that each operation's own store call is the one that fails.
  return {
    kind: 'memory',
    write: fail,
    get: fail,
    exists: fail,
    delete: fail,
    names: fail,
    eraseUserAttributes: fail,
    ping: fail,
    close: async () => await inner.close(),
    endSession: fail,
    endUserSessions: fail,
    admitSession: async () => {},
    indexSession: fail,
    isSessionEnded: fail,
    rememberOnce: fail,
    forgetOnce: fail,
    countHits: fail
  }
}

describe('store failures', () => {
  for (const op of OPERATIONS) {
    test(`${op.label}: 503 E011003 with retry-after when the store is unavailable`, async (t) => {
      const app = await build(t, {}, { store: failingStore(() => new StoreUnavailableError(new Error('connect ECONNREFUSED 10.0.0.1:6379'))) })
      const alice = await newSession()
      const reply = await send(app, { method: op.method, url: `${PREFIXES[0]}${op.path}`, ust: alice.ust, body: { current_app: 'CRM', ...op.single } })
      assertError(reply, 503, 'E011003')
      assert.equal(reply.headers['retry-after'], '1')
      // The cid is random hex: it may contain 6379 by chance.
      assert.doesNotMatch(reply.text.replace(reply.body.cid, ''), /ECONNREFUSED|10\.0\.0\.1|6379/)
    })

    test(`${op.label}: 500 E008004 for an unexpected error, with no internal detail`, async (t) => {
      const app = await build(t, {}, { store: failingStore(() => new TypeError('Cannot read properties of undefined (reading \'secretThing\')')) })
      const alice = await newSession()
      const reply = await send(app, { method: op.method, url: `${PREFIXES[0]}${op.path}`, ust: alice.ust, body: { current_app: 'CRM', ...op.single } })
      assertError(reply, 500, 'E008004')
      assert.doesNotMatch(reply.text, /secretThing|TypeError|at .*\.ts|stack/)
    })
  }
})

describe('GET /sso/session/attr: encryption keys', () => {
  const key = (fill: number) => Buffer.alloc(32, fill).toString('base64url')

  test('after a rotation (new key first) old values still decrypt and new writes use the new key', async (t) => {
    const store = new MemoryStore({ sessionIdleTtlMs: 3_600_000, sessionMaxTtlMs: 86_400_000, maxAttributesPerSession: 1000 })
    const before = await build(t, { SSO_ENCRYPTION_KEYS: `old:${key(1)}` }, { store })
    const alice = await newSession()
    assertOk(await client(before, PREFIXES[0], alice).set({ name: 's', value: 'secret', encrypt: true }))
    const after = await build(t, { SSO_ENCRYPTION_KEYS: `new:${key(2)},old:${key(1)}` }, { store })
    const api = client(after, PREFIXES[0], alice)
    assert.equal(assertOk(await api.get({ name: 's' })).value, 'secret')
    assertOk(await api.set({ name: 's', value: 'rotated' }))
    assert.match(String(assertOk(await api.get({ name: 's', decrypt: false })).value), /^gcm1\.new\./)
    assert.equal(assertOk(await api.get({ name: 's' })).value, 'rotated')
  })

  test('a value under a key no longer configured is 422 E011006 + E011004 on get; decrypt: false, exists and names still work', async (t) => {
    const store = new MemoryStore({ sessionIdleTtlMs: 3_600_000, sessionMaxTtlMs: 86_400_000, maxAttributesPerSession: 1000 })
    const before = await build(t, { SSO_ENCRYPTION_KEYS: `old:${key(1)}` }, { store })
    const alice = await newSession()
    assertOk(await client(before, PREFIXES[0], alice).set({ name: 's', value: 'secret', encrypt: true }))
    const after = await build(t, { SSO_ENCRYPTION_KEYS: `new:${key(2)}` }, { store })
    const api = client(after, PREFIXES[0], alice)
    const reply = await api.get({ name: 's' })
    assert.equal(reply.statusCode, 422)
    // E011006 first, as 1.0 answered for every undecryptable value; E011004 names the cause.
    assert.deepEqual(reply.body.sub_status, ['E011006', 'E011004'])
    assert.doesNotMatch(reply.text, /secret/)
    assert.match(String(assertOk(await api.get({ name: 's', decrypt: false })).value), /^gcm1\.old\./)
    assert.equal(assertOk(await api.exists({ name: 's' })).result, true)
    assert.deepEqual(assertOk(await api.names()).result, ['s'])
    const toggle = await api.update({ name: 's', encrypt: false })
    assert.equal(toggle.statusCode, 422)
    assert.deepEqual(toggle.body.sub_status, ['E011006', 'E011004'])
    assert.equal((await storedAttribute(after, alice, 's'))?.version, 1)
  })
})

describe('batch answers keep every name', () => {
  // U+2028 and U+2029 are not control characters, so names may hold them; a key pattern of
  // `^.*$` in the response schema once left such names out of every batch answer.
  const names = ['line\u2028separator', 'paragraph\u2029separator', 'plain']
  test('create, set, get, exists and delete answer for names with U+2028 and U+2029', async (t) => {
    const app = await build(t)
    const api = client(app, PREFIXES[0], await newSession())
    const keys = (reply: Reply) => Object.keys(resultOf(assertOk(reply))).sort()
    assert.deepEqual(keys(await api.create({ data: names.map((name) => ({ name, value: name.length })) })), [...names].sort())
    assert.deepEqual(keys(await api.set({ data: names.map((name) => ({ name, value: name })) })), [...names].sort())
    const got = resultOf<{ found: boolean, value: unknown }>(assertOk(await api.get({ data: names })))
    for (const name of names) assert.deepEqual([got[name]?.found, got[name]?.value], [true, name], name)
    assert.deepEqual(resultOf(assertOk(await api.exists({ data: names }))), Object.fromEntries(names.map((name) => [name, true])))
    assert.deepEqual(resultOf(assertOk(await api.delete({ data: names }))), Object.fromEntries(names.map((name) => [name, true])))
    assert.deepEqual(assertOk(await api.names()).result, [])
  })
})
