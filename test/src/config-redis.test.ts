import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import { maskSetting } from '../../src/cli/check-config.ts'
import { ConfigError, loadConfig, parseHostPorts, redisTopology, storeKind } from '../../src/config.ts'

// The settings that say how to reach Redis: one URL, Cluster seed nodes or Sentinels, and
// what goes with them (ACL, TLS, the durability option).

type Env = Record<string, string | undefined>

const PRODUCTION: Env = {
  NODE_ENV: 'production',
  SSO_JWKS_URL: 'https://idp.example/.well-known/jwks.json',
  SSO_ISSUER: 'https://idp.example',
  SSO_APPS: 'CRM',
  SSO_ENCRYPTION_KEYS: `k1:${Buffer.alloc(32, 7).toString('base64url')}`
}

function problemsOf (env: Env): string[] {
  try {
    loadConfig(env)
  } catch (error) {
    assert.ok(error instanceof ConfigError, String(error))
    return error.problems
  }
  assert.fail(`loadConfig accepted ${JSON.stringify(env)}`)
}

describe('Redis topology settings', () => {
  test('production starts on cluster nodes alone, or on Sentinels alone', () => {
    const cluster = loadConfig({ ...PRODUCTION, REDIS_CLUSTER_NODES: '10.0.0.1:6379, 10.0.0.2:6380' })
    assert.equal(storeKind(cluster), 'redis')
    assert.deepEqual(redisTopology(cluster), { kind: 'cluster', nodes: [{ host: '10.0.0.1', port: 6379 }, { host: '10.0.0.2', port: 6380 }] })
    const sentinel = loadConfig({ ...PRODUCTION, REDIS_SENTINELS: 's1:26379,[::1]:26380', REDIS_SENTINEL_NAME: 'attrs' })
    assert.equal(storeKind(sentinel), 'redis')
    assert.deepEqual(redisTopology(sentinel), { kind: 'sentinel', sentinels: [{ host: 's1', port: 26379 }, { host: '::1', port: 26380 }], name: 'attrs' })
    const url = loadConfig({ ...PRODUCTION, REDIS_URL: 'rediss://u:p@redis:6380/0' })
    assert.deepEqual(redisTopology(url), { kind: 'standalone', url: 'rediss://u:p@redis:6380/0' })
  })

  test('production without any of them is refused, naming all three', () => {
    assert.ok(problemsOf(PRODUCTION).some((problem) => /REDIS_URL, REDIS_CLUSTER_NODES or REDIS_SENTINELS/.test(problem)))
  })

  test('auto picks Redis for any of the three; memory for none', () => {
    assert.equal(storeKind(loadConfig({ REDIS_CLUSTER_NODES: '127.0.0.1:7000' })), 'redis')
    assert.equal(storeKind(loadConfig({ REDIS_SENTINELS: '127.0.0.1:26379', REDIS_SENTINEL_NAME: 'm' })), 'redis')
    assert.equal(storeKind(loadConfig({ REDIS_CLUSTER_NODES: '' })), 'memory')
    assert.equal(storeKind(loadConfig({ SSO_STORE: 'redis', REDIS_SENTINELS: '127.0.0.1:26379', REDIS_SENTINEL_NAME: 'm' })), 'redis')
  })

  test('two ways to reach Redis at once are refused', () => {
    assert.ok(problemsOf({ REDIS_URL: 'redis://a:6379', REDIS_CLUSTER_NODES: 'b:7000' }).some((problem) => /only one way to reach Redis.*REDIS_URL and REDIS_CLUSTER_NODES/.test(problem)))
  })

  test('Sentinels need the master name; bad host:port lists are refused with the entry named', () => {
    assert.ok(problemsOf({ REDIS_SENTINELS: 'a:26379' }).includes('REDIS_SENTINELS needs REDIS_SENTINEL_NAME'))
    for (const spec of ['a', 'a:', 'a:0', 'a:70000', ':6379', 'a:6379:1', 'a b:6379', ',']) {
      assert.ok(problemsOf({ REDIS_CLUSTER_NODES: spec }).some((problem) => problem.startsWith('REDIS_CLUSTER_NODES')), spec)
    }
    assert.throws(() => parseHostPorts('X', 'ok:1,bad'), /X: "bad" is not host:port/)
  })

  test('SSO_REDIS_MIN_REPLICAS_ACK needs Redis and a whole number', () => {
    assert.equal(loadConfig({ REDIS_URL: 'redis://a', SSO_REDIS_MIN_REPLICAS_ACK: '2' }).SSO_REDIS_MIN_REPLICAS_ACK, 2)
    assert.equal(loadConfig({}).SSO_REDIS_MIN_REPLICAS_ACK, 0)
    assert.ok(problemsOf({ SSO_REDIS_MIN_REPLICAS_ACK: '1' }).includes('SSO_REDIS_MIN_REPLICAS_ACK needs the Redis store'))
    problemsOf({ REDIS_URL: 'redis://a', SSO_REDIS_MIN_REPLICAS_ACK: '-1' })
    problemsOf({ REDIS_URL: 'redis://a', SSO_REDIS_MIN_REPLICAS_ACK: '1.5' })
  })

  test('REDIS_TLS is a boolean; ACL credentials are taken as given', () => {
    const config = loadConfig({ REDIS_CLUSTER_NODES: 'a:1', REDIS_TLS: 'true', REDIS_USERNAME: 'attrs', REDIS_PASSWORD: 'pw' })
    assert.equal(config.REDIS_TLS, true)
    assert.equal(loadConfig({}).REDIS_TLS, false)
    assert.equal(config.REDIS_USERNAME, 'attrs')
    problemsOf({ REDIS_TLS: 'maybe' })
  })

  test('check-config masks the Redis passwords', () => {
    assert.equal(maskSetting('REDIS_PASSWORD', 'hunter2'), '****')
    assert.equal(maskSetting('REDIS_SENTINEL_PASSWORD', 'hunter2'), '****')
    assert.equal(maskSetting('REDIS_URL', 'redis://u:hunter2@h:1'), 'redis://u:****@h:1')
  })
})
