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
import { sessionIdOf, userIdOf } from '../../src/ust.ts'
import { sessionOwner, userOwner } from '../../src/store/types.ts'
import { RecordingEventFeed } from '../fixtures/event-feed.ts'
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
  feed: RecordingEventFeed
}

async function serve (t: TestContext, overrides: Partial<Config> = {}, withFeed = true): Promise<Served> {
  const lines: string[] = []
  const stream = new Writable({
    write (chunk: Buffer, _encoding, callback) {
      lines.push(...chunk.toString().split('\n').filter((line) => line !== ''))
      callback()
    }
  })
  const feed = new RecordingEventFeed(5)
  const config = { LOG_LEVEL: 'info' as const, ...overrides }
  const app = await build(t, config, { loggerInstance: pino(loggerOptions(testConfig(config)), stream), ...(withFeed ? { eventFeed: feed } : {}) })
  await app.listen({ port: 0, host: '127.0.0.1' })
  const { port } = app.server.address() as AddressInfo
  const audits = () => lines.map((line) => JSON.parse(line) as { msg: string, audit: Record<string, unknown> }).filter((line) => line.msg === 'audit').map((line) => line.audit)
  return { app, url: `ws://127.0.0.1:${port}/api/current`, http: `http://127.0.0.1:${port}`, audits, feed }
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
    // A session that ended elsewhere: the feed says so.
    const sid = randomUUID()
    const other = await connect(t, served, await mintUst({ sub: 'carol', sid }))
    assert.deepEqual(await other.result('core.ping'), 'pong')
    served.feed.publish(sessionOwner(sessionIdOf(TEST_ISSUER, sid)), { kind: 'ended' })
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
    const served = await serve(t, { SSO_WS_SEND_BUFFER_BYTES: 1024, SSO_RATE_LIMIT_MAX: 6, SSO_RATE_LIMIT_SYNC_MS: 10 })
    const ust = await mintUst({ sub: 'erin' })
    for (let index = 0; index < 3; index++) assert.equal((await rest(served, 'GET', '/sso/session/attr/names?current_app=CRM', ust)).status, 200)
    await sleep(100)
    const client = await connect(t, served, ust)
    const outcomes = []
    for (let index = 0; index < 4; index++) {
      outcomes.push((await client.call('session.attr.names')).error?.data?.errname ?? 'ok')
      // The counts meet in the store every SSO_RATE_LIMIT_SYNC_MS (as across instances).
      await sleep(60)
    }
    // 3 REST requests + the upgrade + 2 calls = 6; then refused.
    assert.deepEqual(outcomes, ['ok', 'ok', 'EBUSY', 'EBUSY'])
    assert.equal((await client.call('session.attr.names')).error?.data?.sub_status[0], 'E011002')

    const reader = await connect(t, served, await mintUst({ sub: 'frank' }))
    const feedOwner = sessionOwner(sessionIdOf(TEST_ISSUER, 'slow-sid'))
    const slow = await connect(t, served, await mintUst({ sub: 'frank', sid: 'slow-sid' }))
    await slow.result('core.subscribe', ['session.attr'])
    slow.socket.pause()
    // The kernel's socket buffers take the first megabytes; then the server's queue grows.
    const open = () => served.app.rpc!.connections.all.size
    const before = open()
    for (let index = 0; index < 4000 && open() === before; index++) {
      served.feed.publish(feedOwner, { kind: 'changed', name: 'n', version: index + 1, expiresAt: null, payload: JSON.stringify('v'.repeat(8000)) })
      if (index % 50 === 49) await sleep(5)
    }
    assert.equal(open(), before - 1, 'the server let the slow consumer go')
    slow.socket.resume()
    assert.equal((await slow.closed).code, 4008)
    const metrics = await (await fetch(`${served.http}/metrics`)).text()
    assert.match(metrics, /sso_ws_slow_consumers_dropped_total 1/)
    assert.match(metrics, /sso_ws_connections \d/)
    assert.ok(reader)
  })
})

describe('WebSocket API: subscriptions', { timeout: 30_000 }, () => {
  test('collection_update for session.attr with event ids, replay with since, resync, names_only, encrypted values left out, unsubscribe', async (t) => {
    const served = await serve(t)
    const sid = randomUUID()
    const client = await connect(t, served, await mintUst({ sub: 'gina', sid }))
    const owner = sessionOwner(sessionIdOf(TEST_ISSUER, sid))
    const first = served.feed.publish(owner, { kind: 'added', name: 'a', version: 1, expiresAt: null, payload: '"one"' })
    const subscription = await client.result('core.subscribe', ['session.attr'])
    assert.deepEqual([subscription.replayed, subscription.resync], [0, false])
    served.feed.publish(owner, { kind: 'changed', name: 'a', version: 2, expiresAt: Date.parse('2030-01-01T00:00:00Z'), payload: '{"x":1}' })
    const changed = await client.notification('collection_update')
    assert.deepEqual(changed.fields, { name: 'a', version: 2, expiration_time: '2030-01-01T00:00:00.000Z', is_encrypted: false, value: { x: 1 } })
    assert.equal(changed.msg, 'changed')
    assert.equal(changed.collection, 'session.attr')
    assert.equal(changed.subscription, subscription.id)
    assert.match(String(changed.id), /^\d+-\d+$/)
    served.feed.publish(owner, { kind: 'added', name: 'secret', version: 1, expiresAt: null, encrypted: true })
    assert.deepEqual((await client.notification('collection_update')).fields, { name: 'secret', version: 1, expiration_time: null, is_encrypted: true })
    served.feed.publish(owner, { kind: 'removed', name: 'a' })
    assert.deepEqual((await client.notification('collection_update', (params) => params.msg === 'removed')).fields, { name: 'a' })
    // Replay after the first event: the three that followed, then live.
    const replay = await client.result('core.subscribe', ['session.attr', { since: first.id, names_only: true }])
    assert.deepEqual([replay.replayed, replay.resync], [3, false])
    const replayed = []
    for (let index = 0; index < 3; index++) replayed.push(await client.notification('collection_update', (params) => params.subscription === replay.id))
    assert.deepEqual(replayed.map((params) => params.msg), ['changed', 'added', 'removed'])
    assert.ok(replayed.every((params) => !Object.hasOwn(params.fields as object, 'value')))
    // The feed retains 5: an id older than the window asks for a resync.
    for (let index = 0; index < 6; index++) served.feed.publish(owner, { kind: 'changed', name: 'a', version: index + 3, expiresAt: null, payload: '1' })
    const stale = await client.result('core.subscribe', ['session.attr', { since: first.id }])
    assert.equal(stale.resync, true)
    const metrics = await (await fetch(`${served.http}/metrics`)).text()
    assert.match(metrics, /^sso_ws_subscriptions 3$/m)
    assert.match(metrics, /^sso_ws_events_sent_total (\d+)$/m)
    assert.ok(Number(/^sso_ws_events_sent_total (\d+)$/m.exec(metrics)![1]) >= 6)
    assert.equal(await client.result('core.unsubscribe', [subscription.id]), null)
    assertError(await client.call('core.unsubscribe', [subscription.id]), -32001, 'ENOENT')
  })

  test('user.attr for oneself; another user\'s is super-user only and audited; the limits; a subscription to an ended session ends', async (t) => {
    const served = await serve(t, { SSO_WS_MAX_SUBSCRIPTIONS: 3 })
    const client = await connect(t, served, await mintUst({ sub: 'hank' }))
    const mine = await client.result('core.subscribe', ['user.attr'])
    served.feed.publish(userOwner(userIdOf(TEST_ISSUER, 'hank')), { kind: 'added', name: 'p', version: 1, expiresAt: null, payload: 'true' })
    assert.equal((await client.notification('collection_update')).subscription, mine.id)
    assertError(await client.call('core.subscribe', ['user.attr', { target_user: 'ivy' }]), -32001, 'EACCES', 'E005001')
    assertError(await client.call('core.subscribe', ['disk.query']), -32602, 'EINVAL')
    assertError(await client.call('core.subscribe', ['session.attr', { since: 'yesterday' }]), -32602, 'EINVAL')
    const admin = await connect(t, served, await mintUst({ sub: 'root', roles: [SUPER_USER] }))
    await admin.result('core.subscribe', ['user.attr', { target_user: 'ivy' }])
    const audit = served.audits().find((entry) => entry.operation === 'subscribe')
    assert.equal(audit?.target_user, 'ivy')
    assert.equal(audit?.on_behalf, true)
    const sid = randomUUID()
    const target = await mintUst({ sub: 'jill', sid })
    const watched = await admin.result('core.subscribe', ['session.attr', { target_ust: target }])
    await admin.result('core.subscribe', ['session.attr'])
    assertError(await admin.call('core.subscribe', ['session.attr']), -32001, 'EBUSY')
    served.feed.publish(sessionOwner(sessionIdOf(TEST_ISSUER, sid)), { kind: 'ended' })
    assert.equal((await admin.notification('collection_update', (params) => params.subscription === watched.id)).msg, 'ended')
    assert.equal((await admin.notification('notify_unsubscribed')).subscription, watched.id)
    // The admin's own connection stays open.
    assert.equal(await admin.result('core.ping'), 'pong')
    assertError(await admin.call('core.unsubscribe', [watched.id]), -32001, 'ENOENT')
  })
})

describe('WebSocket API: two instances on one Redis', { timeout: 30_000 }, () => {
  let redis: RedisServer
  before(async () => { redis = await RedisServer.start() })
  after(async () => { await redis.close() })

  test('a REST write through A is read over a WebSocket on B; after a logout through A, B refuses the connection\'s calls', async (t) => {
    const shared = { SSO_STORE: 'redis' as const, REDIS_URL: redis.url, SSO_KEY_PREFIX: `two-${randomUUID().slice(0, 8)}:` }
    const a = await serve(t, shared)
    const b = await serve(t, shared)
    const ust = await mintUst({ sub: 'nina' })
    assert.equal((await rest(a, 'PUT', '/sso/session/attr', ust, { current_app: 'CRM', name: 'seen', value: 'from A' })).status, 200)
    const onB = await connect(t, b, ust)
    assert.equal((await onB.result('session.attr.get', ['seen'])).value, 'from A')
    await onB.result('user.attr.set', ['lang', 'de'])
    assert.equal((await rest(a, 'GET', '/sso/user/attr?current_app=CRM&name=lang', ust)).body.value, 'de')
    assert.equal((await rest(a, 'DELETE', '/sso/session?current_app=CRM', ust)).status, 200)
    // B has no event feed here: the connection stays, but the store refuses the ended session.
    assertError(await onB.call('session.attr.get', ['seen']), -32001, 'ENOTAUTHENTICATED', 'E007001')
    assertError(await onB.call('user.attr.get', ['lang']), -32001, 'ENOTAUTHENTICATED', 'E007001')
  })
})
