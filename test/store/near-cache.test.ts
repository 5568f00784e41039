import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { performance } from 'node:perf_hooks'
import { after, before, describe, test } from 'node:test'
import { setTimeout as sleep } from 'node:timers/promises'
import type { Redis } from 'ioredis'
import { createStore } from '../../plugins/store.ts'
import { checkConfig, defaultConfig } from '../../src/config.ts'
import { resolveSettings } from '../../src/settings.ts'
import { NearCacheStore } from '../../src/store/near-cache.ts'
import { sessionOwner } from '../../src/store/types.ts'
import { build, mintUst } from '../helper.ts'
import { RedisServer } from '../fixtures/redis.ts'
import { FaultProxy } from '../fixtures/tcp-proxy.ts'
import { LIMITS, newSessionId, storeContract } from './contract.ts'
import { nearCacheScenarios, nearStore, type NearCacheRig } from './near-cache-scenarios.ts'

// The near cache on one redis-server: the whole store contract with the cache wrapping the Redis
// store, then the consistency scenarios (near-cache-scenarios.ts). One server for the file.

let redis: RedisServer
let inspector: Redis
before(async () => {
  redis = await RedisServer.start()
  inspector = redis.client()
})
after(async () => {
  inspector.disconnect()
  await redis.close()
})

const rig = (): NearCacheRig => ({
  connection: { url: redis.url },
  nodeOf: async () => inspector,
  // A restart: every connection drops and the data is gone.
  disrupt: async () => { await redis.restart() }
})

storeContract('redis + near cache', async (limits) => {
  const store = nearStore(rig(), limits, `ncc-${randomBytes(6).toString('hex')}:`)
  return { store, cleanup: async () => { await store.close() } }
})

nearCacheScenarios('one Redis', rig)

describe('SSO_NEAR_CACHE', () => {
  test('is off by default, needs the Redis store, and wraps it when on', async (t) => {
    assert.equal(defaultConfig().SSO_NEAR_CACHE, 'off')
    assert.deepEqual(checkConfig(defaultConfig({ SSO_NEAR_CACHE: 'on' })), ['SSO_NEAR_CACHE=on needs the Redis store'])
    const dir = mkdtempSync(join(tmpdir(), 'sso-attrs-near-'))
    const settings = await resolveSettings(defaultConfig({ REDIS_URL: redis.url, SSO_NEAR_CACHE: 'on', SSO_DEV_DIR: dir }))
    const store = createStore(settings)
    t.after(async () => { await store.close() })
    assert.ok(store instanceof NearCacheStore)
    const off = createStore(await resolveSettings(defaultConfig({ REDIS_URL: redis.url, SSO_DEV_DIR: dir })))
    t.after(async () => { await off.close() })
    assert.ok(!(off instanceof NearCacheStore))
  })
})

describe('two apps with SSO_NEAR_CACHE=on on one Redis', () => {
  test('an encrypted value written on A is read on B, from memory, decrypted; a change and a logout on A reach B', async (t) => {
    const settings = { REDIS_URL: redis.url, SSO_STORE: 'redis' as const, SSO_NEAR_CACHE: 'on' as const, SSO_KEY_PREFIX: `nca-${randomBytes(4).toString('hex')}:` }
    const [a, b] = await Promise.all([build(t, settings), build(t, settings)])
    assert.ok(b.store instanceof NearCacheStore)
    const near = b.store
    const token = await mintUst()
    const headers = { authorization: `Bearer ${token}` }
    const put = async (value: string) => {
      const reply = await a.inject({ method: 'PUT', url: '/sso/session/attr', headers, payload: { current_app: 'CRM', name: 'secret', value, encrypt: true } })
      assert.equal(reply.statusCode, 200, reply.body)
    }
    const read = async () => await b.inject({ method: 'GET', url: '/sso/session/attr?current_app=CRM&name=secret', headers })
    await put('one')
    const first = await read()
    assert.equal(first.json().value, 'one')
    const hits = near.stats.hits
    for (let i = 0; i < 5; i++) assert.equal((await read()).json().value, 'one')
    assert.equal(near.stats.hits - hits, 5, 'B answered from memory')
    await put('two')
    await near.tracking.sync()
    assert.deepEqual([(await read()).json().value, (await read()).json().is_encrypted], ['two', true])
    const ended = await a.inject({ method: 'DELETE', url: '/sso/session', headers, payload: { current_app: 'CRM' } })
    assert.ok(ended.statusCode < 300, ended.body)
    await near.tracking.sync()
    const refused = await read()
    assert.equal(refused.statusCode, 401)
    assert.deepEqual(refused.json().sub_status, ['E007001'])
    const metrics = (await b.inject({ method: 'GET', url: '/metrics' })).body
    assert.match(metrics, new RegExp(`^sso_attrs_near_cache_events_total\\{event="hit"\\} ${near.stats.hits}$`, 'm'))
    assert.match(metrics, /^sso_attrs_near_cache_events_total\{event="flush"\} 0$/m)
  })
})

describe('near cache: an invalidation connection that goes silent without closing', () => {
  test('B stops answering from memory within SSO_NEAR_CACHE_MAX_STALENESS_MS, then recovers', async (t) => {
    const proxy = await FaultProxy.start(redis.port)
    t.after(async () => { await proxy.close() })
    const prefix = `ncs-${randomBytes(6).toString('hex')}:`
    const maxStalenessMs = 300
    const a = nearStore(rig(), LIMITS, prefix)
    const b = nearStore({ ...rig(), connection: { url: `redis://127.0.0.1:${proxy.port}` } }, LIMITS, prefix, { maxStalenessMs }, { commandTimeoutMs: 400 })
    t.after(async () => { await Promise.all([a.close(), b.close()]) })
    const owner = sessionOwner(newSessionId())
    await b.tracking.whenReady(b.inner.keysOf(owner)[0]!)
    await a.write(owner, 'set', [{ name: 'x', value: { kind: 'plain', plain: '1' }, expiry: { kind: 'keep' } }])
    assert.equal((await b.get(owner, ['x']))[0]?.payload, '1')
    assert.equal((await b.get(owner, ['x']))[0]?.payload, '1')
    // B's connections go half-open: the invalidation of the next write never reaches B.
    proxy.forgetConnections()
    const silentFrom = performance.now()
    await a.write(owner, 'set', [{ name: 'x', value: { kind: 'plain', plain: '2' }, expiry: { kind: 'keep' } }])
    let lastStaleMs = 0
    let fresh = false
    while (performance.now() - silentFrom < 10_000 && !fresh) {
      const startedMs = performance.now() - silentFrom
      try {
        const payload = (await b.get(owner, ['x']))[0]?.payload
        if (payload === '1') lastStaleMs = startedMs
        fresh = payload === '2'
      } catch {
        // 503 while B's own store connection is half-open too, until the stall watcher replaces it.
      }
      await sleep(5)
    }
    t.diagnostic(`last stale read started ${lastStaleMs.toFixed(0)} ms after the connection went silent (bound ${maxStalenessMs} ms)`)
    assert.ok(fresh, 'B reads the write once its connections are replaced')
    assert.ok(lastStaleMs <= maxStalenessMs, `a stale read ${lastStaleMs.toFixed(0)} ms after the connection went silent`)
  })
})
