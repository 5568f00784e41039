import assert from 'node:assert/strict'
import { randomUUID } from 'node:crypto'
import type { AddressInfo } from 'node:net'
import { Writable } from 'node:stream'
import { after, before, describe, test, type TestContext } from 'node:test'
import { setTimeout as sleep } from 'node:timers/promises'
import { SignJWT } from 'jose'
import { pino } from 'pino'
import { loggerOptions, type App } from '../../src/app.ts'
import { BACKCHANNEL_LOGOUT_EVENT } from '../../src/logout-token.ts'
import type { Config } from '../../src/config.ts'
import { sessionIdOf } from '../../src/ust.ts'
import { compareEventIds } from '../../src/events/event-log.ts'
import { createStore } from '../../plugins/store.ts'
import { resolveSettings } from '../../src/settings.ts'
import { RedisServer } from '../fixtures/redis.ts'
import { build, mintUst, TEST_AUDIENCE, TEST_ISSUER, TEST_SECRET, testConfig } from '../helper.ts'
import { RpcClient, type RpcMessage } from './ws-client.ts'

// The JSON-RPC 2.0 WebSocket API over a real socket with the `ws` client: every method, every
// error code, every limit, and the connection's end with its UST (expiry, logout).

const SUPER_USER = 'sso:super-user'

interface Served {
  app: App
  url: string
  http: string
  audits: () => Array<Record<string, unknown>>
}

async function serve (t: TestContext, overrides: Partial<Config> = {}): Promise<Served> {
  const lines: string[] = []
  const stream = new Writable({
    write (chunk: Buffer, _encoding, callback) {
      lines.push(...chunk.toString().split('\n').filter((line) => line !== ''))
      callback()
    }
  })
  const config = { LOG_LEVEL: 'info' as const, ...overrides }
  const app = await build(t, config, { loggerInstance: pino(loggerOptions(testConfig(config)), stream) })
  await app.listen({ port: 0, host: '127.0.0.1' })
  const { port } = app.server.address() as AddressInfo
  const audits = () => lines.map((line) => JSON.parse(line) as { msg: string, audit: Record<string, unknown> }).filter((line) => line.msg === 'audit').map((line) => line.audit)
  return { app, url: `ws://127.0.0.1:${port}/api/current`, http: `http://127.0.0.1:${port}`, audits }
}

async function connect (t: TestContext, served: Served, ust?: string, path = '/api/current?app=CRM'): Promise<RpcClient> {
  const client = await RpcClient.open(served.url.replace('/api/current', path), ust === undefined ? {} : { headers: { authorization: `Bearer ${ust}` } })
  t.after(() => client.close())
  return client
}

function assertError (answer: RpcMessage, code: number, errname: string, subStatus?: string): void {
  assert.ok(answer.error !== undefined, `an error, got ${JSON.stringify(answer)}`)
  assert.equal(answer.error.code, code, JSON.stringify(answer.error))
  assert.equal(answer.error.data?.errname, errname, JSON.stringify(answer.error))
  if (subStatus !== undefined) assert.equal(answer.error.data?.sub_status[0], subStatus)
  // Never a stack: only these members.
  assert.deepEqual(Object.keys(answer.error.data!).filter((key) => !['error', 'errname', 'reason', 'sub_status', 'details'].includes(key)), [])
  assert.doesNotMatch(JSON.stringify(answer.error), /\bat [^ ]+ \(|\.ts:\d+/)
}

async function rest (served: Served, method: string, path: string, ust: string, body?: unknown) {
  const response = await fetch(`${served.http}${path}`, {
    method,
    headers: { authorization: `Bearer ${ust}`, ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
    ...(body !== undefined ? { body: JSON.stringify(body) } : {})
  })
  return { status: response.status, body: await response.json() as Record<string, any> }
}

describe('WebSocket API: authentication', { timeout: 30_000 }, () => {
  test('before auth: core.ping answers, any other call is -32001 ENOTAUTHENTICATED; a bad token is AUTH_ERR; a good one SUCCESS with user_info; a second login EBUSY', async (t) => {
    const served = await serve(t)
    const client = await connect(t, served)
    assert.equal(await client.result('core.ping'), 'pong')
    assertError(await client.call('session.attr.names'), -32001, 'ENOTAUTHENTICATED', 'E007001')
    assertError(await client.call('auth.me'), -32001, 'ENOTAUTHENTICATED')
    assert.deepEqual(await client.result('auth.login_with_token', ['not-a-token']), { response_type: 'AUTH_ERR' })
    assert.deepEqual(await client.result('auth.login_with_token', [await mintUst({ secret: 'another-secret-of-at-least-32-bytes!!' })]), { response_type: 'AUTH_ERR' })
    const ust = await mintUst({ sub: 'alice', roles: ['reader'] })
    const login = await client.result('auth.login_with_token', [ust])
    assert.equal(login.response_type, 'SUCCESS')
    assert.equal(login.user_info.sub, 'alice')
    assert.deepEqual(login.user_info.roles, ['reader'])
    assert.deepEqual(login.user_info.attributes, {})
    assertError(await client.call('auth.login_with_token', [ust]), -32001, 'EBUSY')
    // Calls sent right behind a login wait for it.
    const eager = await connect(t, served)
    const [login2, me] = await Promise.all([eager.call('auth.login_with_token', [await mintUst({ sub: 'eager' })]), eager.call('auth.me')])
    assert.equal((login2.result as { response_type: string }).response_type, 'SUCCESS')
    assert.equal((me.result as { sub: string }).sub, 'eager')
    assert.deepEqual(await client.result('session.attr.names'), { result: [] })
  })

  test('a Bearer UST on the upgrade authenticates; a bad one is refused 401 before the upgrade; an unknown ?app= 403', async (t) => {
    const served = await serve(t)
    const client = await connect(t, served, await mintUst())
    assert.deepEqual(await client.result('session.attr.names'), { result: [] })
    await assert.rejects(connect(t, served, 'bad.token.here'), (error: Error & { statusCode?: number, body?: string }) => {
      assert.equal(error.statusCode, 401)
      assert.equal(JSON.parse(error.body!).sub_status[0], 'E007001')
      return true
    })
    await assert.rejects(connect(t, served, await mintUst(), '/api/v1?app=Nope'), (error: Error & { statusCode?: number }) => error.statusCode === 403)
    // A plain GET is told to upgrade, in the envelope.
    const plain = await fetch(`${served.http}/api/current`)
    assert.equal(plain.status, 426)
    assert.equal(plain.headers.get('upgrade'), 'websocket')
    assert.equal((await plain.json() as { sub_status: string[] }).sub_status[0], 'E008001')
    // /api/v1 is the same API.
    const v1 = await connect(t, served, await mintUst(), '/api/v1?app=Portal')
    assert.equal(await v1.result('core.ping'), 'pong')
  })

  test('SSO_WS_ENABLED=false: no WebSocket paths, no /demo', async (t) => {
    const app = await build(t, { SSO_WS_ENABLED: false })
    for (const url of ['/api/current', '/api/v1', '/demo']) assert.equal((await app.inject({ url })).statusCode, 404, url)
    assert.equal(app.rpc, null)
  })

  test('the connection closes at the UST\'s exp: a connection_closing notice, then close 4002', async (t) => {
    const served = await serve(t, { SSO_CLOCK_TOLERANCE: 0 })
    const client = await connect(t, served, await mintUst({ expiresIn: '2s' }))
    const notice = await client.notification('connection_closing', undefined)
    assert.deepEqual(notice, { code: 4002, reason: 'token expired' })
    assert.deepEqual(await client.closed, { code: 4002, reason: 'token expired' })
  })

  test('logout closes it: DELETE /sso/session on this instance, and the feed\'s `ended` from another instance; a back-channel logout by sub too', async (t) => {
    const served = await serve(t)
    const ust = await mintUst({ sub: 'carol' })
    const client = await connect(t, served)
    assert.equal((await client.result('auth.login_with_token', [ust])).response_type, 'SUCCESS')
    const ended = await rest(served, 'DELETE', '/sso/session?current_app=CRM', ust)
    assert.equal(ended.status, 200)
    assert.deepEqual(await client.notification('connection_closing'), { code: 4003, reason: 'session ended' })
    assert.deepEqual(await client.closed, { code: 4003, reason: 'session ended' })
    // A session ended in the store by someone else (another instance does just this): the
    // store's `ended` event closes the connection, without this instance's lifecycle knowing.
    const sid = randomUUID()
    const other = await connect(t, served, await mintUst({ sub: 'carol', sid }))
    assert.deepEqual(await other.result('core.ping'), 'pong')
    await served.app.store.endSession(sessionIdOf(TEST_ISSUER, sid), 60_000)
    assert.deepEqual(await other.closed, { code: 4003, reason: 'session ended' })
    // A UST of an ended session cannot come back.
    assert.deepEqual(await (await connect(t, served)).result('auth.login_with_token', [ust]), { response_type: 'AUTH_ERR' })
    // A back-channel logout by sub ends every session of the user, and their connections.
    const first = await connect(t, served, await mintUst({ sub: 'lena' }))
    const second = await connect(t, served, await mintUst({ sub: 'lena' }))
    const bystander = await connect(t, served, await mintUst({ sub: 'mona' }))
    const token = await new SignJWT({ events: { [BACKCHANNEL_LOGOUT_EVENT]: {} }, jti: randomUUID(), sub: 'lena' })
      .setProtectedHeader({ alg: 'HS256', typ: 'logout+jwt' }).setIssuedAt().setIssuer(TEST_ISSUER).setAudience(TEST_AUDIENCE).setExpirationTime('2m')
      .sign(new TextEncoder().encode(TEST_SECRET))
    const logout = await fetch(`${served.http}/sso/backchannel-logout`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams({ logout_token: token }).toString() })
    assert.equal(logout.status, 200)
    assert.deepEqual(await first.closed, { code: 4003, reason: 'session ended' })
    assert.deepEqual(await second.closed, { code: 4003, reason: 'session ended' })
    assert.equal(await bystander.result('core.ping'), 'pong')
  })
  test('a server that shuts down says so and closes with 1001', async (t) => {
    const served = await serve(t)
    const client = await connect(t, served, await mintUst())
    await served.app.close()
    assert.deepEqual(await client.notification('connection_closing'), { code: 1001, reason: 'server shutting down' })
    assert.deepEqual(await client.closed, { code: 1001, reason: 'server shutting down' })
  })
})

for (const store of ['memory', 'redis'] as const) {
  describe(`WebSocket API: methods [${store}]`, { timeout: 30_000 }, () => {
    let redis: RedisServer | undefined
    before(async () => { if (store === 'redis') redis = await RedisServer.start() })
    after(async () => { await redis?.close() })
    const storeConfig = (): Partial<Config> => redis === undefined ? {} : { SSO_STORE: 'redis', REDIS_URL: redis.url }

    test('session.attr.*: every operation, single and batch, positional and object params, the same store as REST', async (t) => {
      const served = await serve(t, storeConfig())
      const ust = await mintUst()
      const client = await connect(t, served, ust)
      const created = await client.result('session.attr.create', ['theme', 'dark', { expiration: 60 }])
      assert.equal(created.name, 'theme')
      assert.equal(created.version, 1)
      assert.match(created.expiration_time, /^\d{4}-\d\d-\d\dT/)
      assertError(await client.call('session.attr.create', ['theme', 'light']), -32001, 'EEXIST', 'E009001')
      assert.equal((await client.result('session.attr.update', { name: 'theme', value: 'light', if_version: 1 })).version, 2)
      assertError(await client.call('session.attr.update', ['theme', 'x', { if_version: 1 }]), -32001, 'EINVAL', 'E011005')
      assertError(await client.call('session.attr.update', ['missing', 1]), -32001, 'ENOENT', 'E009002')
      const batch = await client.result('session.attr.set', [[{ name: 'a', value: 1 }, { name: 'b', value: { x: [1] }, encrypt: true }]])
      assert.deepEqual(Object.keys(batch.result), ['a', 'b'])
      // What WebSocket wrote, REST reads, and the other way round.
      const viaRest = await rest(served, 'GET', '/sso/session/attr?current_app=CRM&name=theme', ust)
      assert.equal(viaRest.body.value, 'light')
      assert.equal((await rest(served, 'PUT', '/sso/session/attr', ust, { current_app: 'CRM', name: 'c', value: [3] })).status, 200)
      const single = await client.result('session.attr.get', ['c'])
      assert.deepEqual([single.found, single.value, single.version], [true, [3], 1])
      const many = await client.result('session.attr.get', [['a', 'b', 'zzz'], { decrypt: false }])
      assert.equal(many.result.a.value, 1)
      assert.equal(many.result.b.is_encrypted, true)
      assert.equal(typeof many.result.b.value, 'string')
      assert.deepEqual(many.result.zzz, { found: false })
      assert.deepEqual((await client.result('session.attr.get', [['b']])).result.b.value, { x: [1] })
      assert.deepEqual(await client.result('session.attr.exists', ['a']), { result: true })
      assert.deepEqual(await client.result('session.attr.exists', [['a', 'nope']]), { result: { a: true, nope: false } })
      assert.deepEqual(await client.result('session.attr.names'), { result: ['a', 'b', 'c', 'theme'] })
      assert.deepEqual(await client.result('session.attr.delete', ['a']), { deleted: true })
      assert.deepEqual(await client.result('session.attr.delete', [['b', 'nope']]), { result: { b: true, nope: false } })
      assert.deepEqual(await client.result('session.attr.names', [{}]), { result: ['c', 'theme'] })
      // Another session of the same user, by target_ust.
      const second = await mintUst()
      await client.result('session.attr.set', ['other', true, { target_ust: second }])
      assert.equal((await rest(served, 'GET', '/sso/session/attr?current_app=CRM&name=other', second)).body.value, true)
    })

    test('user.attr.*, auth.set_attribute and auth.me: the user\'s attributes; another user\'s need the super-user role, audited', async (t) => {
      const served = await serve(t, storeConfig())
      const alice = await mintUst({ sub: 'alice-u' })
      const client = await connect(t, served, alice)
      assert.equal(await client.result('auth.set_attribute', ['preferences', { lifetime: 900 }]), null)
      assert.equal(await client.result('auth.set_attribute', { key: 'dashState', value: [1, 2] }), null)
      assertError(await client.call('auth.set_attribute', ['a', 1, 2]), -32602, 'EINVAL')
      assertError(await client.call('auth.set_attribute', ['only-key']), -32602, 'EINVAL', 'E008003')
      assert.deepEqual((await client.result('auth.me')).attributes, { dashState: [1, 2], preferences: { lifetime: 900 } })
      // Same store as /sso/user/attr.
      assert.deepEqual((await rest(served, 'GET', '/sso/user/attr?current_app=CRM&name=preferences', alice)).body.value, { lifetime: 900 })
      await client.result('user.attr.create', [[{ name: 'x', value: 1 }, { name: 'y', value: 2 }]])
      assert.equal((await client.result('user.attr.update', ['x', 10])).version, 2)
      assert.deepEqual((await client.result('user.attr.get', [['x', 'y']])).result.x.value, 10)
      assert.deepEqual(await client.result('user.attr.exists', ['y']), { result: true })
      assert.deepEqual(await client.result('user.attr.delete', ['y']), { deleted: true })
      assert.deepEqual(await client.result('user.attr.names'), { result: ['dashState', 'preferences', 'x'] })
      assertError(await client.call('user.attr.get', ['x', { target_user: 'bob' }]), -32001, 'EACCES', 'E005001')
      const admin = await connect(t, served, await mintUst({ sub: 'admin', roles: [SUPER_USER] }))
      assert.equal((await admin.result('user.attr.get', ['x', { target_user: 'alice-u' }])).value, 10)
      const onBehalf = served.audits().find((entry) => entry.on_behalf === true && entry.transport === 'websocket')
      assert.equal(onBehalf?.target_user, 'alice-u')
      assert.equal(onBehalf?.operation, 'get')
      // Writes are audited as on REST, never with a value or a token.
      const write = served.audits().find((entry) => entry.transport === 'websocket' && entry.operation === 'set')
      assert.deepEqual(write?.names, ['preferences'])
      assert.doesNotMatch(JSON.stringify(served.audits()), /lifetime|eyJ/)
    })
  })
}

describe('WebSocket API: errors', { timeout: 30_000 }, () => {
  test('-32700, -32600, -32601, -32602 with JSON Pointer details; notifications get no answer; batches answer as arrays', async (t) => {
    const served = await serve(t)
    const client = await connect(t, served, await mintUst())
    client.send('{not json')
    assertError(await client.next((message) => message.error?.code === -32700), -32700, 'EINVAL')
    client.send('{"jsonrpc":"2.0","id":1,"id":2,"method":"core.ping"}')
    const duplicate = await client.next((message) => message.error?.code === -32700)
    assert.match(duplicate.error!.data!.reason, /Duplicate key at \/id/)
    client.send({ jsonrpc: '1.0', id: 'v', method: 'core.ping' })
    const invalid = await client.next((message) => message.id === 'v')
    assertError(invalid, -32600, 'EINVAL')
    client.send({ jsonrpc: '2.0', id: 'p', method: 'core.ping', params: 3 })
    assertError(await client.next((message) => message.id === 'p'), -32600, 'EINVAL')
    client.send([])
    assertError(await client.next((message) => message.error?.code === -32600 && message.id === null), -32600, 'EINVAL')
    assertError(await client.call('session.attr.frobnicate'), -32601, 'EINVAL')
    const bad = await client.call('session.attr.set', [[{ name: 'a', value: 1 }, { name: 'b', value: 2, expiration: -1 }]])
    assertError(bad, -32602, 'EINVAL', 'E008002')
    assert.deepEqual(bad.error!.data!.details!.map((detail) => detail.path), ['/data/1/expiration'])
    const unknown = await client.call('session.attr.get', ['a', { colour: 'red' }])
    assert.deepEqual(unknown.error!.data!.details, [{ path: '/colour', message: 'is not a known field' }])
    assertError(await client.call('session.attr.get', ['a', { decrypt: true }, 'extra']), -32602, 'EINVAL')
    assertError(await client.call('session.attr.get', ['a', { current_ust: 'x' }]), -32602, 'EINVAL')
    assertError(await client.call('session.attr.get'), -32602, 'EINVAL', 'E008003')
    assertError(await client.call('session.attr.get', [['a'], { data: ['b'] }]), -32602, 'EINVAL')
    // A notification (no id) runs and is not answered; a batch answers only its calls.
    client.send({ jsonrpc: '2.0', method: 'session.attr.set', params: ['quiet', 1] })
    // Calls on a connection run concurrently: the batch below must not overtake the write.
    await sleep(100)
    client.send([
      { jsonrpc: '2.0', id: 'b1', method: 'session.attr.get', params: ['quiet'] },
      { jsonrpc: '2.0', method: 'core.ping' },
      { jsonrpc: '2.0', id: 'b2', method: 'nope' }
    ])
    const answers = await client.next((message) => Array.isArray(message)) as unknown as RpcMessage[]
    assert.equal(answers.length, 2)
    assert.equal((answers[0]!.result as { value: number }).value, 1)
    assert.equal(answers[1]!.error!.code, -32601)
  })
})

describe('WebSocket API: limits', { timeout: 30_000 }, () => {
  test('batch size, in-flight calls, message size before and after auth', async (t) => {
    const served = await serve(t, { SSO_WS_MAX_BATCH: 3, SSO_WS_MAX_IN_FLIGHT: 2, SSO_WS_MAX_MESSAGE_BYTES: 4096, SSO_WS_MAX_UNAUTHENTICATED_MESSAGE_BYTES: 1024 })
    const client = await connect(t, served, await mintUst())
    const call = (id: number) => ({ jsonrpc: '2.0', id, method: 'session.attr.names' })
    client.send([call(1), call(2), call(3), call(4)])
    const tooMany = await client.next((message) => message.id === null)
    assertError(tooMany, -32600, 'EINVAL')
    assert.match(tooMany.error!.data!.reason, /at most 3/)
    client.send([call(5), call(6), call(7)])
    const answers = await client.next((message) => Array.isArray(message)) as unknown as RpcMessage[]
    assert.deepEqual(answers.map((answer) => answer.error?.data?.errname ?? 'ok'), ['ok', 'ok', 'EBUSY'])
    client.send({ jsonrpc: '2.0', id: 8, method: 'session.attr.set', params: ['big', 'x'.repeat(5000)] })
    assert.equal((await client.closed).code, 1009)
    const anonymous = await connect(t, served)
    anonymous.send({ jsonrpc: '2.0', id: 1, method: 'auth.login_with_token', params: ['x'.repeat(2000)] })
    assert.deepEqual(await anonymous.closed, { code: 1009, reason: 'message too big' })
  })

  test('connections per user and per instance; the origin check', async (t) => {
    const served = await serve(t, { SSO_WS_MAX_CONNECTIONS_PER_USER: 2, SSO_WS_MAX_CONNECTIONS: 4, SSO_WS_ALLOWED_ORIGINS: 'https://app.example' })
    const dave = await mintUst({ sub: 'dave' })
    await connect(t, served, dave)
    await connect(t, served, await mintUst({ sub: 'dave' }))
    await assert.rejects(connect(t, served, dave), (error: Error & { statusCode?: number }) => error.statusCode === 429)
    const third = await connect(t, served)
    assertError(await third.call('auth.login_with_token', [dave]), -32001, 'EBUSY')
    await connect(t, served)
    await assert.rejects(connect(t, served), (error: Error & { statusCode?: number }) => error.statusCode === 503)
    third.close()
    await third.closed
    await sleep(50)
    const allowed = await RpcClient.open(served.url, { origin: 'https://app.example' })
    allowed.close()
    await assert.rejects(RpcClient.open(served.url, { origin: 'https://evil.example' }), (error: Error & { statusCode?: number }) => error.statusCode === 403)
  })

  test('authentication timeout (4001) and idle timeout without pongs (4004)', async (t) => {
    const served = await serve(t, { SSO_WS_AUTH_TIMEOUT: 1, SSO_WS_IDLE_TIMEOUT: 1 })
    const anonymous = await connect(t, served)
    const quiet = await RpcClient.open(served.url, { headers: { authorization: `Bearer ${await mintUst()}` }, autoPong: false })
    t.after(() => quiet.close())
    const answering = await connect(t, served, await mintUst())
    assert.deepEqual(await anonymous.closed, { code: 4001, reason: 'authentication timeout' })
    assert.deepEqual(await quiet.closed, { code: 4004, reason: 'idle timeout' })
    // A client that answers pings stays.
    assert.equal(await answering.result('core.ping'), 'pong')
  })

  test('a slow consumer is disconnected (4008) and counted; calls share the REST rate limit', async (t) => {
    // An hour's window, so that no window ends halfway through (they are aligned to the epoch).
    const served = await serve(t, { SSO_WS_SEND_BUFFER_BYTES: 1024, SSO_RATE_LIMIT_MAX: 6, SSO_RATE_LIMIT_WINDOW: 3600, SSO_RATE_LIMIT_SYNC_MS: 10 })
    const ust = await mintUst({ sub: 'erin' })
    for (let index = 0; index < 3; index++) assert.equal((await rest(served, 'GET', '/sso/session/attr/names?current_app=CRM', ust)).status, 200)
    await sleep(300)
    const client = await connect(t, served, ust)
    const outcomes = []
    for (let index = 0; index < 4; index++) {
      outcomes.push((await client.call('session.attr.names')).error?.data?.errname ?? 'ok')
      // The counts meet in the store every SSO_RATE_LIMIT_SYNC_MS (as across instances); a
      // loaded CI machine delays the timer, hence far more than 10 ms.
      await sleep(300)
    }
    // 3 REST requests + the upgrade + 2 calls = 6; then refused.
    assert.deepEqual(outcomes, ['ok', 'ok', 'EBUSY', 'EBUSY'])
    assert.equal((await client.call('session.attr.names')).error?.data?.sub_status[0], 'E011002')

    // The slow consumer on an instance without the rate limit: its writes must all go in.
    const roomy = await serve(t, { SSO_WS_SEND_BUFFER_BYTES: 1024 })
    const reader = await connect(t, roomy, await mintUst({ sub: 'frank' }))
    const frank = await mintUst({ sub: 'frank', sid: 'slow-sid' })
    const slow = await connect(t, roomy, frank)
    await slow.result('core.subscribe', ['session.attr'])
    slow.socket.pause()
    // The kernel's socket buffers take the first megabytes; then the server's queue grows.
    const open = () => roomy.app.rpc!.connections.all.size
    const before = open()
    const big = 'v'.repeat(60_000)
    for (let index = 0; index < 400 && open() === before; index++) {
      const write = await roomy.app.inject({ method: 'PUT', url: '/sso/session/attr', headers: { authorization: `Bearer ${frank}` }, payload: { current_app: 'CRM', name: 'n', value: `${index}${big}` } })
      assert.equal(write.statusCode, 200)
      if (index % 10 === 9) await sleep(5)
    }
    assert.equal(open(), before - 1, 'the server let the slow consumer go')
    slow.socket.resume()
    assert.equal((await slow.closed).code, 4008)
    const metrics = await (await fetch(`${roomy.http}/metrics`)).text()
    assert.match(metrics, /sso_ws_slow_consumers_dropped_total 1/)
    assert.match(metrics, /sso_ws_connections \d/)
    assert.ok(reader)
  })
})

for (const store of ['memory', 'redis'] as const) {
  describe(`WebSocket API: subscriptions to the store's events [${store}]`, { timeout: 30_000 }, () => {
    let redis: RedisServer | undefined
    before(async () => { if (store === 'redis') redis = await RedisServer.start() })
    after(async () => { await redis?.close() })
    const storeConfig = (): Partial<Config> => redis === undefined ? {} : { SSO_STORE: 'redis', REDIS_URL: redis.url }

    test('writes through REST and WebSocket arrive as collection_update with event ids: added, changed, removed, expired; encrypted without value; names_only and replay with since; resync past the window; unsubscribe', async (t) => {
      const served = await serve(t, storeConfig())
      const ust = await mintUst({ sub: 'gina' })
      const client = await connect(t, served, ust)
      const writer = await connect(t, served, ust)
      const subscription = await client.result('core.subscribe', ['session.attr'])
      assert.deepEqual([subscription.replayed, subscription.resync], [0, false])
      const next = async (msg: string) => await client.notification('collection_update', (params) => params.subscription === subscription.id && params.msg === msg)

      assert.equal((await rest(served, 'PUT', '/sso/session/attr', ust, { current_app: 'CRM', name: 'a', value: 'one' })).status, 200)
      const added = await next('added')
      assert.deepEqual(added.fields, { name: 'a', version: 1, expiration_time: null, is_encrypted: false, value: 'one' })
      assert.equal(added.collection, 'session.attr')
      assert.match(String(added.id), /^\d+-\d+$/)

      const updated = await writer.result('session.attr.update', ['a', { x: 1 }, { expiration: 3600 }])
      const changed = await next('changed')
      assert.deepEqual(changed.fields, { name: 'a', version: 2, expiration_time: updated.expiration_time, is_encrypted: false, value: { x: 1 } })

      await writer.result('session.attr.set', ['secret', 'pssst-value', { encrypt: true }])
      const encrypted = await next('added')
      assert.deepEqual(encrypted.fields, { name: 'secret', version: 1, expiration_time: null, is_encrypted: true })

      assert.deepEqual((await rest(served, 'DELETE', '/sso/session/attr?current_app=CRM&name=a', ust)).body.deleted, true)
      assert.deepEqual((await next('removed')).fields, { name: 'a' })

      // Attributes expire lazily; a watched owner's `expired` comes at its time, unasked (D73).
      await writer.result('session.attr.set', ['brief', 1, { expiration: 1 }])
      await next('added')
      assert.deepEqual((await next('expired')).fields, { name: 'brief' })

      const live = [added, changed, encrypted]
      const ids = [added.id, changed.id, encrypted.id].map(String)
      assert.deepEqual([...ids].sort(compareEventIds), ids, 'ids increase')
      assert.doesNotMatch(JSON.stringify(client.received) + JSON.stringify(live), /pssst/)

      // Replay after the first event, names only: the five that followed, then live.
      const replay = await client.result('core.subscribe', ['session.attr', { since: added.id, names_only: true }])
      assert.deepEqual([replay.replayed, replay.resync], [5, false])
      const replayed = []
      for (let index = 0; index < 5; index++) replayed.push(await client.notification('collection_update', (params) => params.subscription === replay.id))
      assert.deepEqual(replayed.map((params) => `${String(params.msg)} ${String((params.fields as { name: string }).name)}`), ['changed a', 'added secret', 'removed a', 'added brief', 'expired brief'])
      assert.equal(replayed[0]!.id, changed.id)
      assert.ok(replayed.every((params) => !Object.hasOwn(params.fields as object, 'value')))
      await rest(served, 'PUT', '/sso/session/attr', ust, { current_app: 'CRM', name: 'after', value: 'live' })
      const afterReplay = await client.notification('collection_update', (params) => params.subscription === replay.id)
      assert.deepEqual(afterReplay.fields, { name: 'after', version: 1, expiration_time: null, is_encrypted: false })

      // The store keeps the last 100-120 events of an owner (D71): 140 more push `since` out of it.
      for (let batch = 0; batch < 2; batch++) {
        const data = Array.from({ length: 70 }, (_, index) => ({ name: `bulk-${batch}-${index}`, value: index }))
        assert.equal((await rest(served, 'PUT', '/sso/session/attr', ust, { current_app: 'CRM', data })).status, 200)
      }
      const stale = await client.result('core.subscribe', ['session.attr', { since: added.id }])
      assert.deepEqual([stale.replayed, stale.resync], [0, true])
      // A resynced subscription goes on live.
      await writer.result('session.attr.set', ['fresh', true])
      assert.equal((await client.notification('collection_update', (params) => params.subscription === stale.id)).msg, 'added')

      const metrics = await (await fetch(`${served.http}/metrics`)).text()
      assert.match(metrics, /^sso_ws_subscriptions 3$/m)
      // The first subscription: 6 events and 'after'; the replaying one: 5 and 'after'; both
      // the 140 of the bulk; all three 'fresh'.
      assert.equal(Number(/^sso_ws_events_sent_total (\d+)$/m.exec(metrics)![1]), (6 + 1) + (5 + 1) + 2 * 140 + 3)
      assert.equal(await client.result('core.unsubscribe', [subscription.id]), null)
      assertError(await client.call('core.unsubscribe', [subscription.id]), -32001, 'ENOENT')
    })

    test('user.attr for oneself; another user\'s is super-user only and audited; a subscription to a session that logs out ends; the limit', async (t) => {
      const served = await serve(t, { SSO_WS_MAX_SUBSCRIPTIONS: 3, ...storeConfig() })
      const hank = await mintUst({ sub: 'hank' })
      const client = await connect(t, served, hank)
      const mine = await client.result('core.subscribe', ['user.attr'])
      assert.equal(await client.result('auth.set_attribute', ['p', true]), null)
      const own = await client.notification('collection_update')
      assert.deepEqual([own.subscription, own.collection, own.msg, (own.fields as { value: unknown }).value], [mine.id, 'user.attr', 'added', true])
      assertError(await client.call('core.subscribe', ['user.attr', { target_user: 'ivy' }]), -32001, 'EACCES', 'E005001')
      assertError(await client.call('core.subscribe', ['disk.query']), -32602, 'EINVAL')
      assertError(await client.call('core.subscribe', ['session.attr', { since: 'yesterday' }]), -32602, 'EINVAL')

      const admin = await connect(t, served, await mintUst({ sub: 'root', roles: [SUPER_USER] }))
      const ivys = await admin.result('core.subscribe', ['user.attr', { target_user: 'ivy' }])
      const audit = served.audits().find((entry) => entry.operation === 'subscribe')
      assert.deepEqual([audit?.target_user, audit?.on_behalf, audit?.transport, audit?.outcome], ['ivy', true, 'websocket', 'ok'])
      assert.equal((await rest(served, 'PUT', '/sso/user/attr', await mintUst({ sub: 'ivy' }), { current_app: 'CRM', name: 'lang', value: 'fi' })).status, 200)
      const ivy = await admin.notification('collection_update', (params) => params.subscription === ivys.id)
      assert.deepEqual(ivy.fields, { name: 'lang', version: 1, expiration_time: null, is_encrypted: false, value: 'fi' })
      // Hank's own write is not Ivy's.
      assert.equal(admin.received.length, 0)

      const jill = await mintUst({ sub: 'jill' })
      await rest(served, 'PUT', '/sso/session/attr', jill, { current_app: 'CRM', name: 'cart', value: [1] })
      const watched = await admin.result('core.subscribe', ['session.attr', { target_ust: jill }])
      await admin.result('core.subscribe', ['session.attr'])
      assertError(await admin.call('core.subscribe', ['session.attr']), -32001, 'EBUSY')
      assert.equal((await rest(served, 'DELETE', '/sso/session?current_app=CRM', jill)).status, 200)
      assert.equal((await admin.notification('collection_update', (params) => params.subscription === watched.id)).msg, 'ended')
      assert.equal((await admin.notification('notify_unsubscribed')).subscription, watched.id)
      // The admin's own connection stays open.
      assert.equal(await admin.result('core.ping'), 'pong')
      assertError(await admin.call('core.unsubscribe', [watched.id]), -32001, 'ENOENT')
    })

    test('a logout ends the subscriber\'s own session: the connection closes with 4003', async (t) => {
      const served = await serve(t, storeConfig())
      const ust = await mintUst({ sub: 'kate' })
      const client = await connect(t, served, ust)
      await client.result('core.subscribe', ['session.attr'])
      await rest(served, 'PUT', '/sso/session/attr', ust, { current_app: 'CRM', name: 'x', value: 1 })
      assert.equal((await client.notification('collection_update')).msg, 'added')
      assert.equal((await rest(served, 'DELETE', '/sso/session?current_app=CRM', ust)).status, 200)
      assert.deepEqual(await client.notification('connection_closing'), { code: 4003, reason: 'session ended' })
      assert.deepEqual(await client.closed, { code: 4003, reason: 'session ended' })
      assert.equal(served.app.rpc!.connections.all.size, 0)
    })
  })
}

test('a store that records no events: core.subscribe is -32001 EOPNOTSUPP, every other call works', async (t) => {
  const memory = createStore(await resolveSettings(testConfig()))
  // The store's real operations without its feed, as a Store of someone else's would be.
  const withoutEvents = new Proxy(memory, {
    get: (target, name) => {
      if (name === 'createEventFeed') return undefined
      const member: unknown = Reflect.get(target, name)
      return typeof member === 'function' ? member.bind(target) : member
    }
  })
  const app = await build(t, {}, { store: withoutEvents })
  await app.listen({ port: 0, host: '127.0.0.1' })
  const client = await RpcClient.open(`ws://127.0.0.1:${(app.server.address() as AddressInfo).port}/api/current?app=CRM`, { headers: { authorization: `Bearer ${await mintUst()}` } })
  t.after(() => client.close())
  assertError(await client.call('core.subscribe', ['session.attr']), -32001, 'EOPNOTSUPP', 'E011003')
  assert.equal((await client.result('session.attr.set', ['a', 1])).version, 1)
})
