import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, test } from 'node:test'
import type { Redis } from 'ioredis'
import { createStore } from '../../plugins/store.ts'
import { checkConfig, defaultConfig } from '../../src/config.ts'
import { resolveSettings } from '../../src/settings.ts'
import { NearCacheStore } from '../../src/store/near-cache.ts'
import { RedisServer } from '../fixtures/redis.ts'
import { storeContract } from './contract.ts'
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
