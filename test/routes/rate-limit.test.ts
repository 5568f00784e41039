import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { after, before, describe, test } from 'node:test'
import { setTimeout as sleep } from 'node:timers/promises'
import type { App } from '../../src/app.ts'
import { RedisServer } from '../fixtures/redis.ts'
import { build, mintUst } from '../helper.ts'

const ATTR = '/sso/session/attr'
// Windows are aligned to the epoch: an hour-long one makes a test crossing a boundary unlikely.
const HOUR = 3600

async function put (app: App, ust: string, headers: Record<string, string> = {}, remoteAddress?: string) {
  const response = await app.inject({
    method: 'PUT',
    url: ATTR,
    headers: { authorization: `Bearer ${ust}`, 'content-type': 'application/json', ...headers },
    payload: JSON.stringify({ current_app: 'CRM', name: 'n', value: 1 }),
    ...(remoteAddress !== undefined ? { remoteAddress } : {})
  })
  return { statusCode: response.statusCode, headers: response.headers, body: response.json<{ status: string, sub_status?: string[], cid: string }>() }
}

describe('rate limiting (SSO_RATE_LIMIT_MAX, SSO_RATE_LIMIT_WINDOW)', () => {
  test('per caller: the request past the limit gets 429 E011002 with Retry-After; another user is not affected', async (t) => {
    const app = await build(t, { SSO_RATE_LIMIT_MAX: 3, SSO_RATE_LIMIT_WINDOW: HOUR })
    const alice = await mintUst({ sub: 'alice' })
    // Another token of the same user shares the budget: the key is issuer + subject.
    const aliceElsewhere = await mintUst({ sub: 'alice' })
    const bob = await mintUst({ sub: 'bob' })
    const first = await put(app, alice)
    assert.equal(first.statusCode, 200)
    assert.equal(first.headers['x-ratelimit-limit'], '3')
    assert.equal(first.headers['x-ratelimit-remaining'], '2')
    assert.equal((await put(app, alice)).statusCode, 200)
    assert.equal((await put(app, aliceElsewhere)).statusCode, 200)
    const limited = await put(app, aliceElsewhere)
    assert.equal(limited.statusCode, 429)
    assert.equal(limited.body.status, 'error')
    assert.deepEqual(limited.body.sub_status, ['E011002'])
    assert.match(limited.body.cid, /^[0-9a-f]{24}$/)
    const retryAfter = Number(limited.headers['retry-after'])
    assert.ok(retryAfter > 0 && retryAfter <= HOUR, `retry-after ${String(limited.headers['retry-after'])}`)
    assert.equal((await put(app, bob)).statusCode, 200)
  })

  test('a Zato client\'s UST in the body as `ust` (/zato/sso/user/attr) is counted per caller, not per address', async (t) => {
    const app = await build(t, { SSO_RATE_LIMIT_MAX: 2, SSO_RATE_LIMIT_WINDOW: HOUR })
    const alice = await mintUst({ sub: 'alice' })
    const zatoPut = async (ust: string, remoteAddress: string) => await app.inject({
      method: 'PUT', url: '/zato/sso/user/attr', remoteAddress, payload: JSON.stringify({ current_app: 'CRM', ust, name: 'n', value: 1 })
    })
    // From two addresses: counted per address, neither would reach the limit of 2.
    assert.equal((await zatoPut(alice, '127.0.0.11')).statusCode, 200)
    assert.equal((await zatoPut(alice, '127.0.0.12')).statusCode, 200)
    const limited = await zatoPut(alice, '127.0.0.13')
    assert.equal(limited.statusCode, 429, limited.body)
    assert.equal((await zatoPut(await mintUst({ sub: 'bob' }), '127.0.0.13')).statusCode, 200, 'another user from the same address')
  })

  test('failed authentication is counted per client IP, so it cannot spend a user\'s budget', async (t) => {
    const app = await build(t, { SSO_RATE_LIMIT_MAX: 2, SSO_RATE_LIMIT_WINDOW: HOUR })
    // Forged tokens naming alice as subject: they do not verify, so they count against the IP.
    const forged = await mintUst({ sub: 'alice', secret: 'a-different-secret-of-at-least-32-bytes!' })
    assert.equal((await put(app, forged, {}, '10.9.8.7')).statusCode, 401)
    assert.equal((await put(app, forged, {}, '10.9.8.7')).statusCode, 401)
    const limited = await put(app, forged, {}, '10.9.8.7')
    assert.equal(limited.statusCode, 429)
    assert.deepEqual(limited.body.sub_status, ['E011002'])
    assert.equal((await put(app, forged, {}, '10.9.8.8')).statusCode, 401, 'another address has its own budget')
    assert.equal((await put(app, await mintUst({ sub: 'alice' }), {}, '10.9.8.7')).statusCode, 200, 'alice herself is not limited')
  })

  test('SSO_RATE_LIMIT_MAX=0 turns it off: no headers, no 429', async (t) => {
    const app = await build(t, { SSO_RATE_LIMIT_MAX: 0 })
    const ust = await mintUst()
    for (let index = 0; index < 30; index++) {
      const reply = await put(app, ust)
      assert.equal(reply.statusCode, 200)
      assert.equal(reply.headers['x-ratelimit-limit'], undefined)
    }
  })

  test('health, readiness and docs are never limited', async (t) => {
    const app = await build(t, { SSO_RATE_LIMIT_MAX: 1, SSO_RATE_LIMIT_WINDOW: HOUR })
    for (let index = 0; index < 5; index++) {
      assert.equal((await app.inject({ method: 'GET', url: '/healthz' })).statusCode, 200)
      assert.equal((await app.inject({ method: 'GET', url: '/readyz' })).statusCode, 200)
    }
  })

  describe('backed by Redis', () => {
    let redis: RedisServer
    before(async () => { redis = await RedisServer.start() })
    after(async () => { await redis.close() })

    test('two service instances on one Redis share the budget of a caller (counts meet within the sync interval)', async (t) => {
      const overrides = { SSO_STORE: 'redis' as const, REDIS_URL: redis.url, SSO_KEY_PREFIX: `rl-${randomBytes(4).toString('hex')}:`, SSO_RATE_LIMIT_MAX: 3, SSO_RATE_LIMIT_WINDOW: HOUR, SSO_RATE_LIMIT_SYNC_MS: 50 }
      const one = await build(t, overrides)
      const two = await build(t, overrides)
      const ust = await mintUst({ sub: 'shared' })
      assert.equal((await put(one, ust)).statusCode, 200)
      assert.equal((await put(one, ust)).statusCode, 200)
      await sleep(200)
      // Instance two has seen one request of this caller itself; the shared counter says three.
      assert.equal((await put(two, ust)).statusCode, 200)
      await sleep(200)
      const limited = await put(two, ust)
      assert.equal(limited.statusCode, 429)
      assert.deepEqual(limited.body.sub_status, ['E011002'])
      // Instance one learns the same at its next count.
      assert.equal((await put(one, ust)).statusCode, 200, 'one\'s last word from Redis was 2 (or 3): it lets one more through')
      await sleep(200)
      assert.equal((await put(one, ust)).statusCode, 429)
    })

    test('Redis is not on the request path: frozen, requests are still judged at once (and the operation answers 503)', async (t) => {
      const overrides = { SSO_STORE: 'redis' as const, REDIS_URL: redis.url, SSO_KEY_PREFIX: `rl-${randomBytes(4).toString('hex')}:`, SSO_RATE_LIMIT_MAX: 2, SSO_RATE_LIMIT_WINDOW: HOUR, REDIS_COMMAND_TIMEOUT_MS: 300 }
      const app = await build(t, overrides)
      const ust = await mintUst({ sub: 'frozen' })
      assert.equal((await put(app, ust)).statusCode, 200)
      redis.pause()
      t.after(() => redis.resume())
      const started = performance.now()
      assert.equal((await put(app, ust)).statusCode, 503)
      const limited = await put(app, ust)
      assert.equal(limited.statusCode, 429, 'the third request is over the limit, Redis or not')
      assert.ok(performance.now() - started < 2000, `answered in ${(performance.now() - started).toFixed(0)} ms`)
      redis.resume()
    })
  })
})

describe('client address behind proxies (SSO_TRUSTED_PROXIES)', () => {
  const address = async (app: App, remoteAddress: string, forwardedFor: string) => {
    const forged = await mintUst({ secret: 'a-different-secret-of-at-least-32-bytes!' })
    // Exhaust the budget of the address the service believes in, then see who is limited.
    const replies = []
    for (let index = 0; index < 2; index++) replies.push((await put(app, forged, { 'x-forwarded-for': forwardedFor }, remoteAddress)).statusCode)
    return replies
  }

  test('without trusted proxies X-Forwarded-For is ignored: a client cannot rotate addresses with it', async (t) => {
    const app = await build(t, { SSO_RATE_LIMIT_MAX: 1, SSO_RATE_LIMIT_WINDOW: HOUR })
    assert.deepEqual(await address(app, '192.0.2.1', '198.51.100.1'), [401, 429])
    assert.deepEqual(await address(app, '192.0.2.1', '198.51.100.2'), [429, 429])
  })

  test('from a trusted proxy, the forwarded client address is the one counted', async (t) => {
    const app = await build(t, { SSO_RATE_LIMIT_MAX: 1, SSO_RATE_LIMIT_WINDOW: HOUR, SSO_TRUSTED_PROXIES: '192.0.2.0/24' })
    assert.deepEqual(await address(app, '192.0.2.1', '198.51.100.1'), [401, 429])
    assert.deepEqual(await address(app, '192.0.2.1', '198.51.100.2'), [401, 429])
    // The same header from an address that is not a trusted proxy is not believed.
    assert.deepEqual(await address(app, '203.0.113.9', '198.51.100.3'), [401, 429])
    assert.deepEqual(await address(app, '203.0.113.9', '198.51.100.4'), [429, 429])
  })
})
