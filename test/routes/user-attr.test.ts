import assert from 'node:assert/strict'
import { randomUUID } from 'node:crypto'
import { Writable } from 'node:stream'
import { setTimeout as sleep } from 'node:timers/promises'
import { describe, test, type TestContext } from 'node:test'
import { pino } from 'pino'
import { loggerOptions, type App } from '../../src/app.ts'
import type { AttributeView } from '../../src/attribute-service.ts'
import { StoreUnavailableError } from '../../src/errors.ts'
import { MemoryStore } from '../../src/store/memory-store.ts'
import { userOwner, type Store } from '../../src/store/types.ts'
import { userIdOf } from '../../src/ust.ts'
import { build, mintUst, TEST_ISSUER, testConfig, type UstOptions } from '../helper.ts'

// User attributes (/sso/user/attr and Zato's /zato/sso/user/attr): the seven operations, the
// target user, the caller's session end, encryption bound to the user, DELETE /sso/user.

const PREFIXES = ['/sso/user/attr', '/zato/sso/user/attr'] as const
const SUPER_USER = 'sso:super-user'

type Method = 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE'
type Fields = Record<string, unknown>

interface Envelope extends Partial<AttributeView> {
  cid: string
  status: 'ok' | 'error'
  sub_status?: string[]
  message?: string
  details?: Array<{ path: string, message: string }>
  deleted?: boolean
  erased?: number
  result?: unknown
  version?: number
}

interface Reply {
  statusCode: number
  body: Envelope
  text: string
}

async function send (app: App, method: Method, url: string, ust: string | undefined, body?: Fields): Promise<Reply> {
  const headers: Record<string, string> = {}
  if (ust !== undefined) headers.authorization = `Bearer ${ust}`
  if (body !== undefined) headers['content-type'] = 'application/json'
  const response = await app.inject({ method, url, headers, ...(body !== undefined ? { payload: JSON.stringify(body) } : {}) })
  return { statusCode: response.statusCode, body: response.json<Envelope>(), text: response.body }
}

/** The operations of one prefix for one caller's UST; `current_app` defaults to CRM. */
function client (app: App, prefix: string, ust: string | undefined) {
  const call = (method: Method, path: string, body: Fields) => send(app, method, `${prefix}${path}`, ust, { current_app: 'CRM', ...body })
  return {
    create: (body: Fields) => call('POST', '', body),
    update: (body: Fields) => call('PATCH', '', body),
    set: (body: Fields) => call('PUT', '', body),
    get: (body: Fields) => call('GET', '', body),
    delete: (body: Fields) => call('DELETE', '', body),
    exists: (body: Fields) => call('GET', '/exists', body),
    names: (body: Fields = {}) => call('GET', '/names', body)
  }
}

function ok (reply: Reply): Envelope {
  assert.equal(reply.statusCode, 200, reply.text)
  assert.equal(reply.body.status, 'ok')
  return reply.body
}

function refused (reply: Reply, statusCode: number, code: string): Envelope {
  assert.equal(reply.statusCode, statusCode, reply.text)
  assert.equal(reply.body.status, 'error')
  assert.deepEqual(reply.body.sub_status, [code])
  return reply.body
}

async function ust (options: UstOptions = {}): Promise<string> {
  return await mintUst({ sid: randomUUID(), ...options })
}

/** What the store holds for a user, read behind the API. */
async function storedNames (app: App, sub: string): Promise<string[]> {
  return await app.store.names(userOwner(userIdOf(TEST_ISSUER, sub)))
}

for (const prefix of PREFIXES) {
  describe(`${prefix}: the seven operations`, () => {
    test('create, get, update, set, exists, names and delete, single and batch, with versions', async (t) => {
      const app = await build(t)
      const alice = client(app, prefix, await ust({ sub: 'alice' }))
      assert.equal(ok(await alice.create({ name: 'theme', value: 'dark', expiration: 3600 })).version, 1)
      refused(await alice.create({ name: 'theme', value: 'light' }), 409, 'E009001')
      const got = ok(await alice.get({ name: 'theme' }))
      assert.equal(got.found, true)
      assert.equal(got.value, 'dark')
      assert.equal(typeof got.expiration_time, 'string')
      assert.equal(ok(await alice.update({ name: 'theme', value: 'light', if_version: 1 })).version, 2)
      refused(await alice.update({ name: 'theme', value: 'x', if_version: 1 }), 409, 'E011005')
      refused(await alice.update({ name: 'missing', value: 'x' }), 404, 'E009002')
      ok(await alice.set({ data: [{ name: 'lang', value: 'fr' }, { name: 'theme', value: 'dark' }] }))
      const batch = ok(await alice.get({ data: ['lang', 'theme', 'nope'] })).result as Record<string, AttributeView>
      assert.deepEqual([batch.lang?.value, batch.lang?.version, batch.theme?.value, batch.theme?.version, batch.nope], ['fr', 1, 'dark', 3, { found: false }])
      assert.deepEqual(ok(await alice.exists({ data: ['lang', 'nope'] })).result, { lang: true, nope: false })
      assert.equal(ok(await alice.exists({ name: 'theme' })).result, true)
      assert.deepEqual(ok(await alice.names()).result, ['lang', 'theme'])
      refused(await alice.delete({ name: 'theme', if_version: 1 }), 409, 'E011005')
      assert.equal(ok(await alice.delete({ name: 'theme', if_version: 3 })).deleted, true)
      assert.deepEqual(ok(await alice.delete({ data: ['lang', 'nope'] })).result, { lang: true, nope: false })
      assert.deepEqual(ok(await alice.names()).result, [])
    })

    test('every session of the user sees the same attributes; another user sees none of them', async (t) => {
      const app = await build(t)
      ok(await client(app, prefix, await ust({ sub: 'alice' })).create({ name: 'theme', value: 'dark' }))
      assert.equal(ok(await client(app, prefix, await ust({ sub: 'alice' })).get({ name: 'theme' })).value, 'dark')
      assert.equal(ok(await client(app, prefix, await ust({ sub: 'bob' })).get({ name: 'theme' })).found, false)
      // Session attributes of the same name are another thing altogether.
      assert.equal(ok(await client(app, '/sso/session/attr', await ust({ sub: 'alice' })).get({ name: 'theme' })).found, false)
    })

    test('encrypt, decrypt=false, and encryption toggled without a value', async (t) => {
      const app = await build(t)
      const alice = client(app, prefix, await ust({ sub: 'alice' }))
      ok(await alice.create({ name: 'card', value: '4111', encrypt: true }))
      const got = ok(await alice.get({ name: 'card' }))
      assert.equal(got.value, '4111')
      assert.equal(got.is_encrypted, true)
      assert.match(String(ok(await alice.get({ name: 'card', decrypt: false })).value), /^gcm1\.k1\./)
      ok(await alice.update({ name: 'card', encrypt: false }))
      assert.equal(ok(await alice.get({ name: 'card', decrypt: false })).value, '4111')
    })

    test('bad input gets a 4xx envelope and stores nothing', async (t) => {
      const app = await build(t, { SSO_MAX_VALUE_BYTES: 16 })
      const token = await ust({ sub: 'alice' })
      const alice = client(app, prefix, token)
      // target_ust is no field of user attributes; the Zato path ignores it as Zato did (D30),
      // so there a field Zato never declared stands in.
      refused(await alice.create({ name: 'a', value: 'x', ...(prefix.startsWith('/zato') ? { colour: 'red' } : { target_ust: token }) }), 400, 'E008002')
      refused(await alice.create({ name: 'a', value: 'x'.repeat(40) }), 413, 'E011001')
      refused(await alice.create({ name: 'bad\u0001name', value: 1 }), 400, 'E008002')
      refused(await alice.create({ name: 'a', value: 1, current_app: 'Unknown' }), 403, 'E004001')
      refused(await alice.create({ value: 1 }), 400, 'E008003')
      refused(await client(app, prefix, undefined).create({ name: 'a', value: 1 }), 401, 'E007001')
      refused(await client(app, prefix, 'not-a-token').create({ name: 'a', value: 1 }), 401, 'E007001')
      assert.deepEqual(await storedNames(app, 'alice'), [])
    })
  })
}

describe('target_user (Zato: user_id)', () => {
  test('a super-user reads and writes another user\'s attributes; anyone else gets 403 E005001 and stores nothing', async (t) => {
    const app = await build(t)
    const admin = client(app, PREFIXES[0], await ust({ sub: 'root', roles: [SUPER_USER] }))
    ok(await admin.create({ target_user: 'bob', name: 'lang', value: 'de' }))
    assert.equal(ok(await client(app, PREFIXES[0], await ust({ sub: 'bob' })).get({ name: 'lang' })).value, 'de')
    assert.deepEqual(await storedNames(app, 'root'), [], 'nothing landed on the caller')
    const alice = client(app, PREFIXES[0], await ust({ sub: 'alice' }))
    for (const reply of [
      await alice.create({ target_user: 'bob', name: 'x', value: 1 }),
      await alice.get({ target_user: 'bob', name: 'lang' }),
      await alice.names({ target_user: 'bob' }),
      await alice.delete({ target_user: 'bob', name: 'lang' })
    ]) refused(reply, 403, 'E005001')
    assert.deepEqual(await storedNames(app, 'bob'), ['lang'])
    // Naming oneself needs no role.
    ok(await alice.create({ target_user: 'alice', name: 'own', value: 1 }))
    assert.deepEqual(await storedNames(app, 'alice'), ['own'])
  })

  test('Zato 3.2\'s fields: ust for the caller, user_id for the target; 3.0\'s current_ust works too', async (t) => {
    const app = await build(t)
    const root = await ust({ sub: 'root', roles: [SUPER_USER] })
    const zato = client(app, PREFIXES[1], undefined)
    // As Zato's own tests send them (test_user_attr_create.py, test_user_attr_get.py).
    ok(await zato.create({ ust: root, user_id: 'root', name: 'theme', value: 'dark', expiration: 900 }))
    refused(await zato.create({ ust: root, user_id: 'root', name: 'theme', value: 'dark' }), 409, 'E009001')
    ok(await zato.create({ ust: root, user_id: 'carol', name: 'theme', value: 'light' }))
    const got = ok(await zato.get({ ust: root, user_id: 'root', name: 'theme' }))
    assert.equal(got.value, 'dark')
    assert.equal(ok(await zato.get({ current_ust: root, user_id: 'carol', name: 'theme' })).value, 'light')
    refused(await zato.create({ ust: await ust({ sub: 'dave' }), user_id: 'carol', name: 'x', value: 1 }), 403, 'E005001')
    // The same thing under two names must agree.
    refused(await zato.get({ ust: root, current_ust: await ust({ sub: 'root' }), name: 'theme' }), 400, 'E008002')
    refused(await zato.get({ ust: root, user_id: 'carol', target_user: 'root', name: 'theme' }), 400, 'E008002')
    refused(await send(app, 'GET', PREFIXES[1], await ust({ sub: 'eve' }), { current_app: 'CRM', ust: root, name: 'theme' }), 400, 'E008002')
    // user_id is Zato's field only.
    refused(await client(app, PREFIXES[0], root).get({ user_id: 'carol', name: 'theme' }), 400, 'E008002')
  })
})

describe('Zato\'s own user-attribute tests, as Zato sends them (zato-sso/test/zato/test_user_attr_*.py, 3.2)', () => {
  test('update, delete, exists and names, everything in a JSON body with ust and user_id', async (t) => {
    const app = await build(t)
    const root = await ust({ sub: 'root', roles: [SUPER_USER] })
    const zato = client(app, PREFIXES[1], undefined)
    const who = { ust: root, user_id: 'root' }
    ok(await zato.create({ ...who, name: 'n1', value: 'v1', expiration: 900 }))
    const updated = ok(await zato.update({ ...who, name: 'n1', value: 'v2', expiration: 123 }))
    assert.equal(updated.version, 2)
    assert.equal(ok(await zato.get({ ...who, name: 'n1' })).value, 'v2')
    ok(await zato.delete({ ...who, name: 'n1' }))
    assert.equal(ok(await zato.get({ ...who, name: 'n1' })).found, false)
    ok(await zato.create({ ...who, data: [{ name: 'a1', value: 'x' }, { name: 'a2', value: 'y' }] }))
    assert.equal(ok(await zato.exists({ ...who, name: 'a1' })).result, true)
    assert.deepEqual(ok(await zato.names(who)).result, ['a1', 'a2'])
    // A regular user's UST on another user's attributes (test_update_for_another_user_by_regular_user).
    refused(await zato.update({ ust: await ust({ sub: 'user1' }), user_id: 'root', name: 'a1', value: 'z' }), 403, 'E005001')
  })
})

describe('sessions ending', () => {
  test('an ended session leaves the user\'s attributes intact, and its own UST is refused with 401 E007001', async (t) => {
    const app = await build(t)
    const first = await ust({ sub: 'alice' })
    const alice = client(app, PREFIXES[0], first)
    ok(await alice.create({ name: 'theme', value: 'dark' }))
    ok(await send(app, 'DELETE', '/sso/session', first, { current_app: 'CRM' }))
    for (const reply of [
      await alice.get({ name: 'theme' }), await alice.exists({ name: 'theme' }), await alice.names(),
      await alice.create({ name: 'new', value: 1 }), await alice.set({ name: 'theme', value: 'x' }),
      await alice.update({ name: 'theme', value: 'x' }), await alice.delete({ name: 'theme' })
    ]) refused(reply, 401, 'E007001')
    const second = client(app, PREFIXES[0], await ust({ sub: 'alice' }))
    const got = ok(await second.get({ name: 'theme' }))
    assert.equal(got.value, 'dark')
    assert.equal(got.version, 1)
  })

  test('a logout by sub refuses the user\'s older tokens and leaves the attributes to the next login', async (t) => {
    const app = await build(t)
    const before = await ust({ sub: 'alice' })
    ok(await client(app, PREFIXES[0], before).create({ name: 'theme', value: 'dark' }))
    await app.sessions.endUser(userIdOf(TEST_ISSUER, 'alice'))
    refused(await client(app, PREFIXES[0], before).get({ name: 'theme' }), 401, 'E007001')
    // iat has a resolution of one second: a token of the same second counts as older.
    await sleep(1100)
    assert.equal(ok(await client(app, PREFIXES[0], await ust({ sub: 'alice' })).get({ name: 'theme' })).value, 'dark')
  })
})

describe('encryption is bound to the user and the name', () => {
  test('a ciphertext moved to another user\'s record, or to another name, answers 422 E011006', async (t) => {
    const app = await build(t)
    ok(await client(app, PREFIXES[0], await ust({ sub: 'alice' })).create({ name: 'card', value: '4111', encrypt: true }))
    const [stored] = await app.store.get(userOwner(userIdOf(TEST_ISSUER, 'alice')), ['card'])
    assert.ok(stored?.encrypted === true)
    const bob = userOwner(userIdOf(TEST_ISSUER, 'bob'))
    await app.store.write(bob, 'create', [
      { name: 'card', value: { kind: 'cipher', cipher: stored.payload }, expiry: { kind: 'keep' } },
      { name: 'other', value: { kind: 'cipher', cipher: stored.payload }, expiry: { kind: 'keep' } }
    ])
    await app.store.write(userOwner(userIdOf(TEST_ISSUER, 'alice')), 'create', [{ name: 'moved', value: { kind: 'cipher', cipher: stored.payload }, expiry: { kind: 'keep' } }])
    const bobClient = client(app, PREFIXES[0], await ust({ sub: 'bob' }))
    refused(await bobClient.get({ name: 'card' }), 422, 'E011006')
    refused(await bobClient.get({ name: 'other' }), 422, 'E011006')
    refused(await client(app, PREFIXES[0], await ust({ sub: 'alice' })).get({ name: 'moved' }), 422, 'E011006')
    assert.equal(ok(await client(app, PREFIXES[0], await ust({ sub: 'alice' })).get({ name: 'card' })).value, '4111')
  })
})

describe('SSO_USER_CLAIM', () => {
  test('another claim names the user; a token without it gets 401 E007001 on user attributes only', async (t) => {
    const app = await build(t, { SSO_USER_CLAIM: 'email' })
    const withEmail = client(app, PREFIXES[0], await ust({ sub: 'id-1', claims: { email: 'a@example.com' } }))
    ok(await withEmail.create({ name: 'theme', value: 'dark' }))
    // Another subject with the same email is the same user here.
    assert.equal(ok(await client(app, PREFIXES[0], await ust({ sub: 'id-2', claims: { email: 'a@example.com' } })).get({ name: 'theme' })).value, 'dark')
    assert.deepEqual(await app.store.names(userOwner(userIdOf(TEST_ISSUER, 'a@example.com'))), ['theme'])
    const without = await ust({ sub: 'id-3' })
    refused(await client(app, PREFIXES[0], without).get({ name: 'theme' }), 401, 'E007001')
    ok(await client(app, '/sso/session/attr', without).create({ name: 'theme', value: 'x' }))
  })
})

/** A memory store whose attribute calls and session checks fail as an unreachable Redis does. */
function unavailableStore (): Store {
  const inner = new MemoryStore({ sessionIdleTtlMs: 3_600_000, sessionMaxTtlMs: 86_400_000, maxAttributesPerSession: 1000 })
  const fail = async (): Promise<never> => { throw new StoreUnavailableError(new Error('connection refused')) }
  return {
    kind: 'redis',
    write: fail,
    get: fail,
    exists: fail,
    delete: fail,
    names: fail,
    eraseUserAttributes: fail,
    isSessionEnded: fail,
    ping: fail,
    close: async () => await inner.close(),
    endSession: fail,
    endUserSessions: fail,
    admitSession: async () => {},
    indexSession: fail,
    rememberOnce: fail,
    forgetOnce: fail,
    countHits: fail
  }
}

describe('store failures', () => {
  test('a store that cannot answer gives 503 E011003 on every operation and DELETE /sso/user', async (t) => {
    const app = await build(t, {}, { store: unavailableStore() })
    const root = await ust({ sub: 'root', roles: [SUPER_USER] })
    const user = client(app, PREFIXES[0], root)
    for (const reply of [
      await user.create({ name: 'a', value: 1 }), await user.get({ name: 'a' }), await user.exists({ name: 'a' }),
      await user.names(), await user.delete({ name: 'a' }), await send(app, 'DELETE', '/sso/user', root, { current_app: 'CRM', target_user: 'bob' })
    ]) refused(reply, 503, 'E011003')
  })
})

async function loggedApp (t: TestContext) {
  const lines: string[] = []
  const stream = new Writable({
    write (chunk: Buffer, _encoding, callback) {
      lines.push(...chunk.toString().split('\n').filter((line) => line !== ''))
      callback()
    }
  })
  const app = await build(t, { LOG_LEVEL: 'info' }, { loggerInstance: pino(loggerOptions(testConfig({ LOG_LEVEL: 'info' })), stream) })
  const audits = () => lines.map((line) => JSON.parse(line) as { msg: string, audit: Record<string, unknown> }).filter((line) => line.msg === 'audit').map((line) => line.audit)
  return { app, audits, text: () => lines.join('\n') }
}

describe('DELETE /sso/user', () => {
  test('a super-user erases every attribute of a user at once, audited; the user\'s sessions and other users keep theirs', async (t) => {
    const { app, audits, text } = await loggedApp(t)
    const bobUst = await ust({ sub: 'bob' })
    const bob = client(app, PREFIXES[0], bobUst)
    ok(await bob.create({ data: [{ name: 'theme', value: 'secret-dark' }, { name: 'card', value: '4111', encrypt: true }, { name: 'lang', value: 'de', expiration: 60 }] }))
    ok(await client(app, '/sso/session/attr', bobUst).create({ name: 'cart', value: [1] }))
    ok(await client(app, PREFIXES[0], await ust({ sub: 'alice' })).create({ name: 'theme', value: 'light' }))
    const root = await ust({ sub: 'root', roles: [SUPER_USER] })
    const erased = ok(await send(app, 'DELETE', '/sso/user', root, { current_app: 'CRM', target_user: 'bob' }))
    assert.equal(erased.erased, 3)
    assert.deepEqual(ok(await bob.names()).result, [])
    assert.deepEqual(await storedNames(app, 'bob'), [])
    assert.deepEqual(await storedNames(app, 'alice'), ['theme'])
    assert.deepEqual(ok(await client(app, '/sso/session/attr', bobUst).names()).result, ['cart'])
    assert.equal(ok(await send(app, 'DELETE', '/sso/user?current_app=CRM&target_user=bob', root)).erased, 0, 'idempotent')
    const lines = audits().filter((line) => line.operation === 'erase-user')
    assert.deepEqual(lines.map((line) => [line.caller, line.target_user, line.on_behalf, line.attributes_erased, line.status]), [
      ['root', 'bob', true, 3, 200], ['root', 'bob', true, 0, 200]
    ])
    assert.doesNotMatch(text(), /secret-dark|4111/)
    assert.equal(text().includes(root), false, 'no token in the logs')
  })

  test('anyone but a super-user gets 403 E005001 and nothing is erased, also for their own attributes; the refusal is audited', async (t) => {
    const { app, audits } = await loggedApp(t)
    const aliceUst = await ust({ sub: 'alice' })
    ok(await client(app, PREFIXES[0], aliceUst).create({ name: 'theme', value: 'dark' }))
    ok(await client(app, PREFIXES[0], await ust({ sub: 'bob' })).create({ name: 'theme', value: 'dark' }))
    refused(await send(app, 'DELETE', '/sso/user', aliceUst, { current_app: 'CRM', target_user: 'bob' }), 403, 'E005001')
    refused(await send(app, 'DELETE', '/sso/user', aliceUst, { current_app: 'CRM' }), 403, 'E005001')
    refused(await send(app, 'DELETE', '/sso/user', await ust({ sub: 'root', roles: [SUPER_USER] }), { current_app: 'CRM', target_ust: aliceUst }), 400, 'E008002')
    assert.deepEqual(await storedNames(app, 'alice'), ['theme'])
    assert.deepEqual(await storedNames(app, 'bob'), ['theme'])
    assert.deepEqual(audits().filter((line) => line.operation === 'erase-user').map((line) => [line.caller, line.target_user, line.on_behalf, line.status, line.sub_status]), [
      ['alice', 'bob', true, 403, 'E005001'], ['alice', 'alice', false, 403, 'E005001']
    ])
  })

  test('on-behalf user-attribute access is audited with the target user; one\'s own reads are not', async (t) => {
    const { app, audits } = await loggedApp(t)
    const root = client(app, PREFIXES[0], await ust({ sub: 'root', roles: [SUPER_USER] }))
    ok(await root.create({ target_user: 'bob', name: 'theme', value: 'dark' }))
    ok(await root.get({ target_user: 'bob', name: 'theme' }))
    ok(await client(app, PREFIXES[0], await ust({ sub: 'bob' })).get({ name: 'theme' }))
    assert.deepEqual(audits().map((line) => [line.operation, line.caller, line.target_user, line.on_behalf, line.target_session]), [
      ['create', 'root', 'bob', true, undefined], ['get', 'root', 'bob', true, undefined]
    ])
  })
})

describe('metrics', () => {
  test('store calls are labelled by scope', async (t) => {
    const app = await build(t)
    const token = await ust({ sub: 'alice' })
    ok(await client(app, PREFIXES[0], token).create({ name: 'a', value: 1 }))
    ok(await client(app, '/sso/session/attr', token).create({ data: [{ name: 'a', value: 1 }, { name: 'b', value: 2 }] }))
    const text = (await app.inject({ method: 'GET', url: '/metrics' })).body
    assert.match(text, /sso_attrs_store_command_duration_seconds_count\{store="memory",scope="user",command="write",outcome="ok"\} 1/)
    assert.match(text, /sso_attrs_store_command_duration_seconds_count\{store="memory",scope="session",command="write",outcome="ok"\} 1/)
    assert.match(text, /sso_attrs_attributes_written_total\{scope="user"\} 1/)
    assert.match(text, /sso_attrs_attributes_written_total\{scope="session"\} 2/)
    assert.match(text, /sso_attrs_http_requests_total\{operation="createUserAttributes",status="200"/)
  })
})
