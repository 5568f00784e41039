import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import { appList, ConfigError, loadConfig, parseEncryptionKeys, storeKind } from '../../src/config.ts'
import { resolveSettings } from '../../src/settings.ts'

type Env = Record<string, string | undefined>

const KEY_A = Buffer.alloc(32, 7).toString('base64url')
const KEY_B = Buffer.alloc(32, 9).toString('base64url')

const PRODUCTION: Env = {
  NODE_ENV: 'production',
  REDIS_URL: 'redis://127.0.0.1:6379/0',
  SSO_JWKS_URL: 'https://idp.example/.well-known/jwks.json',
  SSO_ISSUER: 'https://idp.example',
  SSO_APPS: 'CRM,Portal',
  SSO_ENCRYPTION_KEYS: `k1:${KEY_A}`
}

/** The problems loadConfig reports for an environment; fails the test if it loads. */
function problemsOf (env: Env): string[] {
  try {
    loadConfig(env)
  } catch (error) {
    assert.ok(error instanceof ConfigError, `expected a ConfigError, got ${String(error)}`)
    assert.ok(error.problems.length > 0)
    for (const problem of error.problems) assert.ok(error.message.includes(problem), 'the message lists every problem')
    return error.problems
  }
  assert.fail(`loadConfig accepted ${JSON.stringify(env)}`)
}

function assertRefused (env: Env, pattern: RegExp): void {
  const problems = problemsOf(env)
  assert.ok(problems.some((problem) => pattern.test(problem)), `expected a problem matching ${pattern}, got ${JSON.stringify(problems)}`)
}

describe('loadConfig', () => {
  test('an empty environment gets every default (development mode)', () => {
    const config = loadConfig({})
    assert.equal(config.NODE_ENV, 'development')
    assert.equal(config.HOST, '127.0.0.1')
    assert.equal(config.PORT, 17010)
    assert.equal(config.LOG_LEVEL, 'info')
    assert.equal(config.SSO_STORE, 'auto')
    assert.equal(storeKind(config), 'memory')
    assert.equal(config.REDIS_URL, undefined)
    assert.equal(config.SSO_KEY_PREFIX, 'sso-attrs:')
    assert.equal(config.SSO_SESSION_CLAIM, 'sid')
    assert.equal(config.SSO_ROLES_CLAIM, 'roles')
    assert.equal(config.SSO_SUPERUSER_ROLE, 'sso:super-user')
    assert.equal(config.SSO_SESSION_IDLE_TTL, 3600)
    assert.equal(config.SSO_SESSION_MAX_TTL, 86400)
    assert.equal(config.SSO_MAX_NAME_LENGTH, 191)
    assert.equal(config.SSO_MAX_VALUE_BYTES, 65536)
    assert.equal(config.SSO_MAX_BATCH, 100)
    assert.equal(config.SSO_MAX_ATTRS_PER_SESSION, 1000)
    assert.equal(config.SSO_AUDIENCE, undefined)
    assert.deepEqual(appList(config), [])
  })

  test('does not read process.env when given an environment', () => {
    const saved = process.env.PORT
    process.env.PORT = '4242'
    try {
      assert.equal(loadConfig({}).PORT, 17010)
    } finally {
      if (saved === undefined) delete process.env.PORT
      else process.env.PORT = saved
    }
  })

  test('integers are coerced from strings', () => {
    const config = loadConfig({
      PORT: '8080',
      SSO_SESSION_IDLE_TTL: '60',
      SSO_SESSION_MAX_TTL: '120',
      SSO_MAX_BATCH: '5',
      SSO_MAX_VALUE_BYTES: '1024',
      SSO_MAX_ATTRS_PER_SESSION: '7',
      REDIS_COMMAND_TIMEOUT_MS: '250'
    })
    assert.strictEqual(config.PORT, 8080)
    assert.strictEqual(config.SSO_SESSION_IDLE_TTL, 60)
    assert.strictEqual(config.SSO_SESSION_MAX_TTL, 120)
    assert.strictEqual(config.SSO_MAX_BATCH, 5)
    assert.strictEqual(config.SSO_MAX_VALUE_BYTES, 1024)
    assert.strictEqual(config.SSO_MAX_ATTRS_PER_SESSION, 7)
    assert.strictEqual(config.REDIS_COMMAND_TIMEOUT_MS, 250)
  })

  test('refuses non-integers and out-of-range integers, naming the setting', () => {
    assertRefused({ PORT: 'abc' }, /PORT/)
    assertRefused({ PORT: '1.5' }, /PORT/)
    assertRefused({ PORT: '70000' }, /PORT/)
    assertRefused({ SSO_MAX_BATCH: '0' }, /SSO_MAX_BATCH/)
    assertRefused({ SSO_MAX_VALUE_BYTES: '-1' }, /SSO_MAX_VALUE_BYTES/)
    assertRefused({ SSO_SESSION_IDLE_TTL: 'an hour' }, /SSO_SESSION_IDLE_TTL/)
  })

  test('refuses an unknown log level and an unknown store', () => {
    assertRefused({ LOG_LEVEL: 'loud' }, /LOG_LEVEL/)
    assertRefused({ SSO_STORE: 'postgres' }, /SSO_STORE/)
  })

  test('a complete production environment loads', () => {
    const config = loadConfig(PRODUCTION)
    assert.equal(config.NODE_ENV, 'production')
    assert.equal(storeKind(config), 'redis')
    assert.deepEqual(appList(config), ['CRM', 'Portal'])
  })

  test('production with nothing set names every missing setting at once', () => {
    const problems = problemsOf({ NODE_ENV: 'production' }).join('\n')
    for (const name of ['REDIS_URL', 'SSO_JWKS_URL', 'SSO_JWKS_FILE', 'SSO_JWT_SECRET', 'SSO_ISSUER', 'SSO_APPS', 'SSO_ENCRYPTION_KEYS']) {
      assert.match(problems, new RegExp(name), `${name} is named`)
    }
  })

  const missing: Array<[string, string[], RegExp]> = [
    ['REDIS_URL', ['REDIS_URL'], /REDIS_URL/],
    ['a key source', ['SSO_JWKS_URL'], /key source/],
    ['SSO_ISSUER', ['SSO_ISSUER'], /SSO_ISSUER/],
    ['SSO_APPS', ['SSO_APPS'], /SSO_APPS/],
    ['SSO_ENCRYPTION_KEYS', ['SSO_ENCRYPTION_KEYS'], /SSO_ENCRYPTION_KEYS/]
  ]
  for (const [label, unset, pattern] of missing) {
    test(`production refuses to start without ${label}, and names only that`, () => {
      const env: Env = { ...PRODUCTION }
      for (const name of unset) delete env[name]
      const problems = problemsOf(env)
      assert.equal(problems.length, 1, JSON.stringify(problems))
      assert.match(problems[0]!, pattern)
    })
  }

  test('production refuses the embedded store even with a REDIS_URL', () => {
    assertRefused({ ...PRODUCTION, SSO_STORE: 'memory' }, /REDIS_URL|embedded/)
  })

  test('production refuses an SSO_APPS with no app in it', () => {
    assertRefused({ ...PRODUCTION, SSO_APPS: ' , ,' }, /SSO_APPS/)
  })

  test('production accepts each key source on its own', () => {
    const { SSO_JWKS_URL: _url, ...rest } = PRODUCTION
    assert.equal(loadConfig({ ...rest, SSO_JWKS_FILE: '/etc/sso/jwks.json' }).SSO_JWKS_FILE, '/etc/sso/jwks.json')
    assert.equal(loadConfig({ ...rest, SSO_JWT_SECRET: 's'.repeat(32) }).SSO_JWT_SECRET, 's'.repeat(32))
  })

  test('refuses two key sources', () => {
    assertRefused({ SSO_JWT_SECRET: 's'.repeat(32), SSO_JWKS_URL: 'https://idp.example/jwks' }, /SSO_JWKS_URL and SSO_JWT_SECRET/)
    assertRefused({ SSO_JWKS_FILE: '/tmp/jwks.json', SSO_JWKS_URL: 'https://idp.example/jwks' }, /only one/)
    assertRefused({ ...PRODUCTION, SSO_JWT_SECRET: 's'.repeat(32) }, /only one/)
  })

  test('refuses an SSO_JWT_SECRET shorter than 32 bytes (bytes, not characters)', () => {
    assertRefused({ SSO_JWT_SECRET: 's'.repeat(31) }, /SSO_JWT_SECRET.*32 bytes/)
    assert.equal(loadConfig({ SSO_JWT_SECRET: 's'.repeat(32) }).SSO_JWT_SECRET, 's'.repeat(32))
    assert.equal(loadConfig({ SSO_JWT_SECRET: 'é'.repeat(16) }).SSO_JWT_SECRET, 'é'.repeat(16))
  })

  test('refuses an SSO_JWKS_URL that is not http(s)', () => {
    assertRefused({ SSO_JWKS_URL: 'file:///etc/passwd' }, /SSO_JWKS_URL/)
  })

  test('SSO_TOKEN_TYPES takes id_token and access_token, each once; SSO_AUDIENCE and SSO_RESOURCE are lists', async () => {
    assert.equal(loadConfig({}).SSO_TOKEN_TYPES, 'id_token,access_token')
    assert.equal(loadConfig({ SSO_TOKEN_TYPES: ' access_token ' }).SSO_TOKEN_TYPES, ' access_token ')
    assertRefused({ SSO_TOKEN_TYPES: 'logout_token' }, /SSO_TOKEN_TYPES/)
    assertRefused({ SSO_TOKEN_TYPES: 'id_token,' }, /SSO_TOKEN_TYPES/)
    assertRefused({ SSO_TOKEN_TYPES: 'id_token,id_token' }, /SSO_TOKEN_TYPES names a type twice/)
    const settings = await resolveSettings(loadConfig({ SSO_JWT_SECRET: 'x'.repeat(32), SSO_AUDIENCE: 'client-a, client-b', SSO_TOKEN_TYPES: 'access_token' }))
    assert.deepEqual([settings.audience, settings.resource, settings.tokenTypes], [['client-a', 'client-b'], ['client-a', 'client-b'], ['access_token']])
    const withResource = await resolveSettings(loadConfig({ SSO_JWT_SECRET: 'x'.repeat(32), SSO_AUDIENCE: 'client-a', SSO_RESOURCE: 'urn:api' }))
    assert.deepEqual([withResource.audience, withResource.resource, withResource.tokenTypes], [['client-a'], ['urn:api'], ['id_token', 'access_token']])
  })

  test('refuses a key prefix with braces (they would break cluster hash tags)', () => {
    assertRefused({ SSO_KEY_PREFIX: 'app{1}:' }, /SSO_KEY_PREFIX/)
    assertRefused({ SSO_KEY_PREFIX: '{' }, /SSO_KEY_PREFIX/)
    assert.equal(loadConfig({ SSO_KEY_PREFIX: 'tenant-a:' }).SSO_KEY_PREFIX, 'tenant-a:')
  })

  test('refuses an idle TTL longer than the max TTL', () => {
    assertRefused({ SSO_SESSION_IDLE_TTL: '7200', SSO_SESSION_MAX_TTL: '3600' }, /SSO_SESSION_IDLE_TTL/)
  })

  test('refuses SSO_STORE=redis without REDIS_URL', () => {
    assertRefused({ SSO_STORE: 'redis' }, /REDIS_URL/)
  })

  test('reports every problem at once, one per setting: the refused settings and the cross-setting checks of the others', () => {
    assert.deepEqual(problemsOf({ PORT: 'eighty', LOG_LEVEL: 'loud', SSO_MAX_BATCH: '0', REDIS_TLS: 'maybe', SSO_JWT_SECRET: 'short' }), [
      'PORT must be integer',
      'LOG_LEVEL must be one of fatal, error, warn, info, debug, trace, silent',
      'REDIS_TLS must be boolean',
      'SSO_MAX_BATCH must be >= 1',
      'SSO_JWT_SECRET must be at least 32 bytes'
    ])
    // A check that involves a refused setting is left out: its default would only mislead.
    assert.deepEqual(problemsOf({ SSO_SESSION_IDLE_TTL: 'soon', SSO_SESSION_MAX_TTL: '5' }), ['SSO_SESSION_IDLE_TTL must be integer'])
    const production = problemsOf({ NODE_ENV: 'production', PORT: '-1' })
    assert.equal(production[0], 'PORT must be >= 0')
    assert.ok(production.includes('production needs SSO_ISSUER'), JSON.stringify(production))
  })

  test('reports every cross-setting problem, not only the first', () => {
    const problems = problemsOf({ SSO_JWT_SECRET: 'short', SSO_SESSION_IDLE_TTL: '10', SSO_SESSION_MAX_TTL: '5', SSO_ENCRYPTION_KEYS: 'bad' })
    assert.ok(problems.length >= 3, JSON.stringify(problems))
  })
})

describe('SSO_ENCRYPTION_KEYS', () => {
  test('parses kid:base64url pairs in order; the first is the encryption key', () => {
    const keys = parseEncryptionKeys(`new:${KEY_B}, old:${KEY_A}`)
    assert.deepEqual(keys.map((key) => key.kid), ['new', 'old'])
    assert.deepEqual(keys[0]!.key, Buffer.alloc(32, 9))
    assert.deepEqual(keys[1]!.key, Buffer.alloc(32, 7))
    assert.equal(loadConfig({ SSO_ENCRYPTION_KEYS: `new:${KEY_B},old:${KEY_A}` }).SSO_ENCRYPTION_KEYS, `new:${KEY_B},old:${KEY_A}`)
  })

  const bad: Array<[string, string]> = [
    ['no kid', KEY_A],
    ['an empty kid', `:${KEY_A}`],
    ['a kid with a space', `k 1:${KEY_A}`],
    ['a kid over 64 characters', `${'k'.repeat(65)}:${KEY_A}`],
    ['a key of 16 bytes', `k1:${Buffer.alloc(16, 1).toString('base64url')}`],
    ['a key of 33 bytes', `k1:${Buffer.alloc(33, 1).toString('base64url')}`],
    ['an empty key', 'k1:'],
    ['a key that is not base64url', `k1:${'!'.repeat(43)}`],
    ['standard base64 with + and /', `k1:${Buffer.alloc(32, 0xfb).toString('base64')}`],
    ['a hex key', `k1:${Buffer.alloc(32, 1).toString('hex')}`],
    ['a duplicate kid', `k1:${KEY_A},k1:${KEY_B}`],
    ['no key at all', ' , '],
    ['a bad second entry', `k1:${KEY_A},k2:short`]
  ]
  for (const [label, spec] of bad) {
    test(`refuses ${label}`, () => {
      assert.throws(() => parseEncryptionKeys(spec), ConfigError)
      assertRefused({ SSO_ENCRYPTION_KEYS: spec }, /SSO_ENCRYPTION_KEYS/)
    })
  }

  test('messages never contain the key material', () => {
    const secretish = Buffer.alloc(31, 0xab).toString('base64url')
    const problems = problemsOf({ SSO_ENCRYPTION_KEYS: `k1:${KEY_A},k2:${secretish}` }).join('\n')
    assert.doesNotMatch(problems, new RegExp(KEY_A))
    assert.doesNotMatch(problems, new RegExp(secretish))
  })
})
