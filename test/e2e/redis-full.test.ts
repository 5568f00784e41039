import assert from 'node:assert/strict'
import { Writable } from 'node:stream'
import { after, before, describe, test } from 'node:test'
import { setTimeout as sleep } from 'node:timers/promises'
import { Redis } from 'ioredis'
import { loggerOptions } from '../../src/app.ts'
import { RedisServer } from '../fixtures/redis.ts'
import { build, mintUst, testConfig } from '../helper.ts'
import { assertError, assertOk, call, listen } from './http.ts'

// Redis at its memory limit. With noeviction (the recommended policy) every write is refused
// whole with 507 E011007 and nothing half-written, while reads, exists, names and deletes keep
// working; with an evicting policy the service warns at start that attributes may vanish.

const P = '/sso/session/attr'

let redis: RedisServer
let admin: Redis
before(async () => {
  redis = await RedisServer.start()
  admin = new Redis(redis.port, '127.0.0.1', { maxRetriesPerRequest: 0 })
})
after(async () => {
  admin.disconnect()
  await redis.close()
})

/** Fills Redis with junk until a write is refused, the limit just above what it holds now. */
async function fill (): Promise<void> {
  const used = Number(/used_memory:(\d+)/.exec(await admin.info('memory'))![1])
  await admin.config('SET', 'maxmemory', String(used + 256 * 1024))
  for (let i = 0; i < 10_000; i++) {
    const refused = await admin.set(`junk:${i}`, 'j'.repeat(4096)).then(() => false, (error: Error) => /^OOM/.test(error.message))
    if (refused) return
  }
  assert.fail('Redis never filled up')
}

describe('Redis full (maxmemory reached)', () => {
  test('noeviction: writes 507 E011007 with nothing written, batches all or nothing; reads, names, exists, deletes and logouts keep working; writes again once there is room', { timeout: 30_000 }, async (t) => {
    t.after(async () => { await admin.config('SET', 'maxmemory', '0'); await admin.flushall() })
    await admin.config('SET', 'maxmemory-policy', 'noeviction')
    const { base } = await listen(t, { SSO_STORE: 'redis', REDIS_URL: redis.url })
    const ust = await mintUst()
    assertOk(await call(base, 'PUT', P, { ust, body: { current_app: 'CRM', data: [{ name: 'kept', value: 'old' }, { name: 'gone', value: 1 }] } }), 'PUT before Redis is full')
    await fill()
    const keysWhenFull = await admin.dbsize()

    assertError(await call(base, 'PUT', P, { ust, body: { current_app: 'CRM', name: 'new', value: 'x'.repeat(1000) } }), 507, 'E011007', 'a single write')
    assertError(await call(base, 'POST', P, { ust, body: { current_app: 'CRM', name: 'created', value: 1 } }), 507, 'E011007', 'a create')
    assertError(await call(base, 'PUT', P, { ust, body: { current_app: 'CRM', data: [{ name: 'b1', value: 1 }, { name: 'kept', value: 'new' }, { name: 'b2', value: 2 }] } }), 507, 'E011007', 'a batch')
    assertError(await call(base, 'PATCH', P, { ust, body: { current_app: 'CRM', name: 'kept', value: 'patched' } }), 507, 'E011007', 'an update')

    const kept = assertOk(await call(base, 'GET', `${P}?current_app=CRM&name=kept`, { ust }), 'a read while full')
    assert.deepEqual([kept.value, kept.version], ['old', 1], 'nothing of the refused writes reached the attribute')
    assert.deepEqual(assertOk(await call(base, 'GET', `${P}/names?current_app=CRM`, { ust }), 'names while full').result, ['gone', 'kept'])
    assert.deepEqual(assertOk(await call(base, 'GET', `${P}/exists?current_app=CRM&data=kept&data=b1`, { ust }), 'exists while full').result, { kept: true, b1: false })
    assert.equal(await admin.dbsize(), keysWhenFull, 'no key was evicted or added by the refused writes')
    // A logout must not wait for memory: it frees some, and its tombstone is tiny.
    const other = await mintUst()
    assertOk(await call(base, 'GET', `${P}/names?current_app=CRM`, { ust: other }), 'a second session, read while full')
    assertOk(await call(base, 'DELETE', '/sso/session?current_app=CRM', { ust: other }), 'a logout while full')
    assertError(await call(base, 'GET', `${P}/names?current_app=CRM`, { ust: other }), 401, 'E007001', 'the ended session, while Redis is still full')

    assert.equal(assertOk(await call(base, 'DELETE', `${P}?current_app=CRM&name=gone`, { ust }), 'a delete while full').deleted, true)

    await admin.config('SET', 'maxmemory', '0')
    assert.equal(assertOk(await call(base, 'PUT', P, { ust, body: { current_app: 'CRM', name: 'kept', value: 'new' } }), 'a write once there is room').version, 2)
    assertError(await call(base, 'GET', `${P}/names?current_app=CRM`, { ust: other }), 401, 'E007001', 'the ended session, once there is room')
  })

  test('an evicting maxmemory-policy: the service warns at start that attributes may vanish; noeviction: no warning', { timeout: 30_000 }, async (t) => {
    const warnings = async (policy: string): Promise<string[]> => {
      await admin.config('SET', 'maxmemory-policy', policy)
      const lines: string[] = []
      const stream = new Writable({ write (chunk: Buffer, _encoding, done) { lines.push(chunk.toString()); done() } })
      const config = testConfig({ SSO_STORE: 'redis', REDIS_URL: redis.url, LOG_LEVEL: 'info' })
      const app = await build(t, config, { logger: { ...loggerOptions(config), stream } })
      for (let i = 0; i < 40 && !lines.some((line) => line.includes('maxmemory-policy')); i++) await sleep(25)
      await app.close()
      return lines.filter((line) => line.includes('maxmemory-policy')).map((line) => (JSON.parse(line) as { level: number, msg: string }).msg)
    }
    const lru = await warnings('allkeys-lru')
    assert.equal(lru.length, 1, 'one warning')
    assert.match(lru[0]!, /maxmemory-policy allkeys-lru: .*attributes vanish.*noeviction/)
    const volatile = await warnings('volatile-ttl')
    assert.match(volatile[0] ?? '', /maxmemory-policy volatile-ttl/, 'volatile policies evict our keys too: every one has a TTL')
    assert.deepEqual(await warnings('noeviction'), [])
    await admin.config('SET', 'maxmemory-policy', 'noeviction')
  })
})
