import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { after, before, describe, test } from 'node:test'
import { setTimeout as sleep } from 'node:timers/promises'
import { ATTR_PREFIXES } from '../../src/app.ts'
import type { Config } from '../../src/config.ts'
import { RedisServer } from '../fixtures/redis.ts'
import { mintUst } from '../helper.ts'
import { assertEnvelope, assertError, assertOk, call, listen, raw, rawJson, rawSocket, type Envelope, type RawOptions, type Reply } from './http.ts'

// The service over a real loopback socket against a real redis-server: the full API on both
// path prefixes, expiry timing, 50 parallel writers, and hostile input.

let redis: RedisServer
before(async () => { redis = await RedisServer.start() })
after(async () => { await redis.close() })

function redisConfig (overrides: Partial<Config> = {}): Partial<Config> {
  return {
    SSO_STORE: 'redis',
    REDIS_URL: redis.url,
    REDIS_COMMAND_TIMEOUT_MS: 500,
    SSO_KEY_PREFIX: `e2e-${randomBytes(4).toString('hex')}:`,
    ...overrides
  }
}

const ISO_UTC = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/

function resultOf<T> (body: Envelope): Record<string, T> {
  assert.equal(typeof body.result, 'object')
  return body.result as Record<string, T>
}

for (const P of ATTR_PREFIXES) {
  describe(`the whole API over HTTP on ${P}`, () => {
    test('PUT, GET, PATCH, batch PUT/GET, exists, names, DELETE', { timeout: 30_000 }, async (t) => {
      const config = redisConfig()
      const { base, port } = await listen(t, config)
      const ust = await mintUst()
      const cids: string[] = []
      const ok = (reply: Reply, what: string) => {
        const body = assertOk(reply, what)
        cids.push(body.cid)
        return body
      }

      const put = ok(await call(base, 'PUT', P, { ust, body: { current_app: 'CRM', name: 'theme', value: 'dark' } }), 'PUT')
      assert.equal(put.name, 'theme')
      assert.equal(put.version, 1)
      assert.equal(put.expiration_time, null)

      const got = ok(await call(base, 'GET', `${P}?current_app=CRM&name=theme`, { ust }), 'GET')
      assert.equal(got.found, true)
      assert.equal(got.value, 'dark')
      assert.equal(got.version, 1)
      assert.equal(got.is_encrypted, false)
      assert.equal(got.expiration_time, null)
      assert.match(got.creation_time!, ISO_UTC)
      assert.equal(got.last_modified, got.creation_time)

      await sleep(5)
      const patched = ok(await call(base, 'PATCH', P, { ust, body: { current_app: 'CRM', name: 'theme', value: 'light' } }), 'PATCH')
      assert.equal(patched.version, 2)
      const afterPatch = ok(await call(base, 'GET', `${P}?current_app=CRM&name=theme`, { ust }), 'GET after PATCH')
      assert.equal(afterPatch.value, 'light')
      assert.equal(afterPatch.creation_time, got.creation_time)
      assert.ok(Date.parse(afterPatch.last_modified!) > Date.parse(got.creation_time!), 'last_modified moves on a write')

      assertError(await call(base, 'POST', P, { ust, body: { current_app: 'CRM', name: 'theme', value: 'x' } }), 409, 'E009001', 'create of an existing name')
      assertError(await call(base, 'PATCH', P, { ust, body: { current_app: 'CRM', name: 'nope', value: 'x' } }), 404, 'E009002', 'update of a missing name')
      assertError(await call(base, 'PATCH', P, { ust, body: { current_app: 'CRM', name: 'theme', value: 'x', if_version: 1 } }), 409, 'E011005', 'stale if_version')

      const batch = ok(await call(base, 'PUT', P, {
        ust,
        body: {
          current_app: 'CRM',
          data: [
            { name: 'a', value: 0 },
            { name: 'b', value: { nested: [1, 'x', null, { deep: true }] } },
            { name: 'c', value: 'top-secret-value', encrypt: true }
          ]
        }
      }), 'batch PUT')
      const written = resultOf<{ version: number }>(batch)
      assert.deepEqual(Object.keys(written).sort(), ['a', 'b', 'c'])
      assert.ok(Object.values(written).every((item) => item.version === 1))

      const batchGet = ok(await call(base, 'GET', `${P}?current_app=CRM&data=a&data=b&data=c&data=missing`, { ust }), 'batch GET')
      const items = resultOf<Envelope>(batchGet)
      assert.equal(items.a!.value, 0)
      assert.deepEqual(items.b!.value, { nested: [1, 'x', null, { deep: true }] })
      assert.equal(items.c!.value, 'top-secret-value')
      assert.equal(items.c!.is_encrypted, true)
      assert.deepEqual(items.missing, { found: false })

      // Encrypted at rest: the plaintext is nowhere in Redis, and decrypt=false shows the ciphertext.
      const inspect = redis.client()
      t.after(() => inspect.disconnect())
      const keys = await inspect.keys(`${config.SSO_KEY_PREFIX!}*`)
      assert.equal(keys.length > 0, true)
      for (const key of keys) {
        const dump = key.endsWith(':a') ? (await inspect.hvals(key)).join('\n') : ''
        assert.ok(!dump.includes('top-secret-value'), `plaintext found in ${key}`)
      }
      const cipher = ok(await call(base, 'GET', `${P}?current_app=CRM&name=c&decrypt=false`, { ust }), 'GET decrypt=false')
      assert.equal(cipher.is_encrypted, true)
      assert.equal(typeof cipher.value, 'string')
      assert.notEqual(cipher.value, 'top-secret-value')

      // Zato clients send a JSON body with GET, and current_ust in it rather than a header.
      const bodyGet = ok(await rawJson(port, 'GET', P, { current_app: 'CRM', current_ust: ust, name: 'theme' }), 'GET with a JSON body')
      assert.equal(bodyGet.found, true)
      assert.equal(bodyGet.value, 'light')
      const bodyBatchGet = ok(await rawJson(port, 'GET', P, { current_app: 'CRM', current_ust: ust, data: ['a', 'zzz'] }), 'batch GET with a JSON body')
      assert.deepEqual(Object.keys(resultOf(bodyBatchGet)).sort(), ['a', 'zzz'])
      assert.equal(resultOf<Envelope>(bodyBatchGet).a!.value, 0)

      assert.equal(ok(await call(base, 'GET', `${P}/exists?current_app=CRM&name=theme`, { ust }), 'exists').result, true)
      assert.equal(ok(await call(base, 'GET', `${P}/exists?current_app=CRM&name=nope`, { ust }), 'exists (missing)').result, false)
      assert.deepEqual(ok(await call(base, 'GET', `${P}/exists?current_app=CRM&data=a&data=nope`, { ust }), 'batch exists').result, { a: true, nope: false })
      assert.deepEqual(ok(await rawJson(port, 'GET', `${P}/exists`, { current_app: 'CRM', current_ust: ust, data: ['b', 'nope'] }), 'batch exists with a body').result, { b: true, nope: false })

      assert.deepEqual(ok(await call(base, 'GET', `${P}/names?current_app=CRM`, { ust }), 'names').result, ['a', 'b', 'c', 'theme'])
      assert.deepEqual(ok(await rawJson(port, 'GET', `${P}/names`, { current_app: 'CRM', current_ust: ust }), 'names with a body').result, ['a', 'b', 'c', 'theme'])

      assert.equal(ok(await call(base, 'DELETE', `${P}?current_app=CRM&name=theme`, { ust }), 'DELETE').deleted, true)
      assert.equal(ok(await call(base, 'DELETE', `${P}?current_app=CRM&name=theme`, { ust }), 'DELETE again').deleted, false)
      assert.deepEqual(ok(await rawJson(port, 'DELETE', P, { current_app: 'CRM', current_ust: ust, data: ['a', 'nope'] }), 'batch DELETE with a body').result, { a: true, nope: false })
      assert.deepEqual(ok(await call(base, 'GET', `${P}/names?current_app=CRM`, { ust }), 'names after DELETE').result, ['b', 'c'])

      if (P === '/zato/sso/session/attr') {
        // Zato's documented examples use `curl -d`: JSON sent as a form content type.
        const form = JSON.stringify({ current_app: 'CRM', current_ust: ust, name: 'from-curl', value: 42 })
        ok(await raw(port, { method: 'POST', path: P, body: form, headers: { 'content-type': 'application/x-www-form-urlencoded', 'content-length': Buffer.byteLength(form) } }), 'POST as curl -d')
        assert.equal(ok(await call(base, 'GET', `${P}?current_app=CRM&name=from-curl`, { ust }), 'GET curl -d').value, 42)
      }

      assert.equal(new Set(cids).size, cids.length, 'every request has its own cid')
    })
  })
}

describe('expiry timing over HTTP', () => {
  const P = '/sso/session/attr'

  test('an attribute with expiration 1 is visible at once and gone after ~1.3 s', { timeout: 30_000 }, async (t) => {
    const { base } = await listen(t, redisConfig())
    const ust = await mintUst()
    const startedAt = Date.now()
    const put = assertOk(await call(base, 'PUT', P, { ust, body: { current_app: 'CRM', name: 'short', value: 'v', expiration: 1 } }), 'PUT short')
    const expiresAt = Date.parse(put.expiration_time!)
    assert.ok(expiresAt >= startedAt + 1000 - 5 && expiresAt <= Date.now() + 1000 + 5, `expiration_time ${put.expiration_time} is about 1 s from now`)
    assertOk(await call(base, 'PUT', P, { ust, body: { current_app: 'CRM', name: 'lasting', value: 'v' } }), 'PUT lasting')

    assert.equal(assertOk(await call(base, 'GET', `${P}?current_app=CRM&name=short`, { ust })).found, true)
    assert.equal(assertOk(await call(base, 'GET', `${P}/exists?current_app=CRM&name=short`, { ust })).result, true)
    assert.deepEqual(assertOk(await call(base, 'GET', `${P}/names?current_app=CRM`, { ust })).result, ['lasting', 'short'])

    await sleep(Math.max(0, startedAt + 1300 - Date.now()))
    assert.deepEqual(assertOk(await call(base, 'GET', `${P}?current_app=CRM&name=short`, { ust })).found, false)
    assert.equal(assertOk(await call(base, 'GET', `${P}/exists?current_app=CRM&name=short`, { ust })).result, false)
    assert.deepEqual(assertOk(await call(base, 'GET', `${P}/names?current_app=CRM`, { ust })).result, ['lasting'])
    const both = resultOf<Envelope>(assertOk(await call(base, 'GET', `${P}?current_app=CRM&data=short&data=lasting`, { ust })))
    assert.deepEqual(both.short, { found: false })
    assert.equal(both.lasting!.found, true)
    const recreated = assertOk(await call(base, 'POST', P, { ust, body: { current_app: 'CRM', name: 'short', value: 'again' } }), 'create after expiry')
    assert.equal(recreated.version, 1)
  })

  test('attributes die with their session: max TTL 2 s caps expirations; idle TTL 1 s', { timeout: 30_000 }, async (t) => {
    const { base } = await listen(t, redisConfig({ SSO_SESSION_MAX_TTL: 2, SSO_SESSION_IDLE_TTL: 1 }))
    const ust = await mintUst()
    const capped = assertOk(await call(base, 'PUT', P, { ust, body: { current_app: 'CRM', name: 'capped', value: 1, expiration: 3600 } }), 'PUT capped')
    assertOk(await call(base, 'PUT', P, { ust, body: { current_app: 'CRM', name: 'plain', value: 2 } }), 'PUT plain')
    const stored = assertOk(await call(base, 'GET', `${P}?current_app=CRM&name=capped`, { ust }))
    const firstWrite = Date.parse(stored.creation_time!)
    const cap = Date.parse(capped.expiration_time!) - firstWrite
    assert.ok(cap <= 2000 && cap >= 1900, `expiration 3600 is capped at the session's end: ${cap} ms after the first write`)

    // Calls every 300 ms keep the 1 s idle window open; only the 2 s cap can end the session.
    let lastSeen = 0
    while (Date.now() < firstWrite + 1700) {
      const names = assertOk(await call(base, 'GET', `${P}/names?current_app=CRM`, { ust }))
      assert.deepEqual(names.result, ['capped', 'plain'], `alive at ${Date.now() - firstWrite} ms`)
      lastSeen = Date.now() - firstWrite
      await sleep(300)
    }
    assert.ok(lastSeen >= 1400, 'the session outlived its idle window thanks to the calls')
    await sleep(Math.max(0, firstWrite + 2300 - Date.now()))
    assert.deepEqual(assertOk(await call(base, 'GET', `${P}/names?current_app=CRM`, { ust })).result, [])
    assert.equal(assertOk(await call(base, 'GET', `${P}?current_app=CRM&name=capped`, { ust })).found, false)
    assert.equal(assertOk(await call(base, 'GET', `${P}?current_app=CRM&name=plain`, { ust })).found, false)

    // Without calls, the idle window ends a session after 1 s.
    const idle = await mintUst()
    assertOk(await call(base, 'PUT', P, { ust: idle, body: { current_app: 'CRM', name: 'x', value: 1 } }))
    await sleep(1300)
    assert.deepEqual(assertOk(await call(base, 'GET', `${P}/names?current_app=CRM`, { ust: idle })).result, [])
  })
})

describe('50 parallel writers on one session', () => {
  const P = '/sso/session/attr'
  const WRITERS = 50
  // Correctness under concurrency, not timeouts: a command timeout a loaded CI machine cannot
  // trip (CI runs two Node versions side by side), so a lost race shows as what it is.
  const config = () => redisConfig({ REDIS_COMMAND_TIMEOUT_MS: 5000 })

  test('50 parallel PUTs of distinct names: names lists all 50', { timeout: 30_000 }, async (t) => {
    const { base } = await listen(t, config())
    const ust = await mintUst()
    const names = Array.from({ length: WRITERS }, (_, index) => `w${String(index).padStart(2, '0')}`)
    const replies = await Promise.all(names.map(async (name) => await call(base, 'PUT', P, { ust, body: { current_app: 'CRM', name, value: name } })))
    for (const reply of replies) assert.equal(assertOk(reply).version, 1)
    assert.deepEqual(assertOk(await call(base, 'GET', `${P}/names?current_app=CRM`, { ust })).result, names)
    const values = resultOf<Envelope>(assertOk(await call(base, 'GET', `${P}?current_app=CRM&${names.map((name) => `data=${name}`).join('&')}`, { ust })))
    for (const name of names) assert.equal(values[name]!.value, name)
  })

  test('50 parallel read + PATCH if_version loops on one counter: value 50, version 51', { timeout: 30_000 }, async (t) => {
    const { base } = await listen(t, config())
    const ust = await mintUst()
    assertOk(await call(base, 'PUT', P, { ust, body: { current_app: 'CRM', name: 'counter', value: 0 } }))
    let conflicts = 0
    const increment = async () => {
      for (let attempt = 1; attempt <= 500; attempt++) {
        const current = assertOk(await call(base, 'GET', `${P}?current_app=CRM&name=counter`, { ust }))
        const reply = await call(base, 'PATCH', P, { ust, body: { current_app: 'CRM', name: 'counter', value: (current.value as number) + 1, if_version: current.version } })
        if (reply.status === 200) return
        assertError(reply, 409, 'E011005', 'a lost race is a version conflict')
        conflicts++
      }
      assert.fail('no increment after 500 attempts')
    }
    await Promise.all(Array.from({ length: WRITERS }, increment))
    const final = assertOk(await call(base, 'GET', `${P}?current_app=CRM&name=counter`, { ust }))
    assert.equal(final.value, WRITERS)
    assert.equal(final.version, WRITERS + 1)
    t.diagnostic(`${conflicts} version conflicts retried`)
  })
})

describe('hostile input over the socket', () => {
  test('never a 5xx, always an envelope with a cid, and nothing stored', { timeout: 30_000 }, async (t) => {
    const config = redisConfig()
    const { base, port } = await listen(t, config)
    const ust = await mintUst()
    const auth = { authorization: `Bearer ${ust}` }
    const json = { ...auth, 'content-type': 'application/json' }
    const P = '/sso/session/attr'
    const Z = '/zato/sso/session/attr'

    const deepArray = `${'['.repeat(10_000)}${']'.repeat(10_000)}`
    let deepObject = '1'
    for (let depth = 0; depth < 10_000; depth++) deepObject = `{"a":${deepObject}}`
    const utf8 = (text: string) => Buffer.from(text)
    const invalidUtf8 = (before: string, after: string) => Buffer.concat([utf8(before), Buffer.from([0xff, 0xfe, 0xc3, 0x28]), utf8(after)])

    interface Case extends RawOptions {
      what: string
      /** Expected HTTP status and sub_status, when the contract fixes them. */
      expect?: [number, string]
    }
    const put = (what: string, body: string | Buffer, expect?: [number, string], headers: Record<string, string> = json, path = P): Case =>
      ({ what, method: 'PUT', path, headers, body, ...(expect !== undefined ? { expect } : {}) })

    const cases: Case[] = [
      put('malformed JSON', '{"current_app":"CRM", name: x}', [400, 'E008002']),
      put('truncated JSON', '{"current_app":"CRM","name":"t","value":"abc', [400, 'E008002']),
      put('truncated JSON on the Zato path', '{"current_app":"CRM","name":"t","value":[1,2', [400, 'E008002'], json, Z),
      put('empty JSON body', '', [400, 'E008003']),
      put('JSON null', 'null', [400, 'E008003']),
      put('a bare string', '"hello"', [400, 'E008002']),
      put('a bare number', '42', [400, 'E008002']),
      put('10000 nested arrays as the body', deepArray, [400, 'E008002']),
      put('10000 nested arrays as a value', `{"current_app":"CRM","name":"deep","value":${deepArray}}`, [400, 'E008002']),
      put('10000 nested objects as a value', `{"current_app":"CRM","name":"deep","value":${deepObject}}`, [400, 'E008002']),
      put('10000 nested objects and a __proto__ key', `{"current_app":"CRM","name":"deep","value":${deepObject},"x":{"__proto__":{}}}`, [400, 'E008002']),
      put('10000 nested objects in a batch item', `{"current_app":"CRM","data":[{"name":"ok","value":1},{"name":"deep","value":${deepObject}}]}`, [400, 'E008002']),
      put('__proto__ at the top', '{"current_app":"CRM","name":"p","value":1,"__proto__":{"polluted":true}}', [400, 'E008002']),
      put('__proto__ in a value', '{"current_app":"CRM","name":"p","value":{"__proto__":{"polluted":true}}}', [400, 'E008002']),
      put('constructor.prototype in a value', '{"current_app":"CRM","name":"p","value":{"constructor":{"prototype":{"polluted":true}}}}', [400, 'E008002']),
      put('__proto__ in a batch item', '{"current_app":"CRM","data":[{"name":"p","value":1,"__proto__":{"polluted":true}}]}', [400, 'E008002']),
      put('__proto__ via the Zato form parser', '{"current_app":"CRM","name":"p","value":{"__proto__":{"polluted":true}}}', [400, 'E008002'], { ...auth, 'content-type': 'application/x-www-form-urlencoded' }, Z),
      put('a value over 64 KiB', JSON.stringify({ current_app: 'CRM', name: 'big', value: 'x'.repeat(70_000) }), [413, 'E011001']),
      put('a 100 000-character name', JSON.stringify({ current_app: 'CRM', name: 'n'.repeat(100_000), value: 1 }), [400, 'E008002']),
      put('a 192-character name', JSON.stringify({ current_app: 'CRM', name: 'n'.repeat(192), value: 1 }), [400, 'E008002']),
      put('a name with control characters', JSON.stringify({ current_app: 'CRM', name: 'a\u0000b\u001b[31m', value: 1 }), [400, 'E008002']),
      put('a lone surrogate in a name', '{"current_app":"CRM","name":"a\\ud800b","value":1}', [400, 'E008002']),
      put('a 100 000-character current_app', JSON.stringify({ current_app: 'C'.repeat(100_000), name: 'a', value: 1 }), [400, 'E008002']),
      put('a body over the body limit', JSON.stringify({ current_app: 'CRM', name: 'huge', value: 'x'.repeat(1_100_000) }), [413, 'E011001']),
      { what: 'a chunked body over the body limit', method: 'PUT', path: P, headers: { ...json, 'transfer-encoding': 'chunked' }, body: JSON.stringify({ current_app: 'CRM', name: 'huge', value: 'y'.repeat(1_100_000) }), expect: [413, 'E011001'] },
      put('text/plain', JSON.stringify({ current_app: 'CRM', name: 'a', value: 1 }), [415, 'E008001'], { ...auth, 'content-type': 'text/plain' }),
      put('application/xml', '<attr name="a">1</attr>', [415, 'E008001'], { ...auth, 'content-type': 'application/xml' }),
      put('multipart/form-data', '--x\r\nContent-Disposition: form-data; name="name"\r\n\r\na\r\n--x--', [415, 'E008001'], { ...auth, 'content-type': 'multipart/form-data; boundary=x' }),
      put('a form on the canonical path', 'current_app=CRM&name=a&value=1', [415, 'E008001'], { ...auth, 'content-type': 'application/x-www-form-urlencoded' }),
      put('a real form on the Zato path', 'current_app=CRM&name=a&value=1', [400, 'E008002'], { ...auth, 'content-type': 'application/x-www-form-urlencoded' }, Z),
      put('no content type', JSON.stringify({ current_app: 'CRM', name: 'a', value: 1 }), [415, 'E008001'], auth),
      put('a garbage content type', JSON.stringify({ current_app: 'CRM', name: 'a', value: 1 }), [415, 'E008001'], { ...auth, 'content-type': ';;;/=' }),
      put('invalid UTF-8 in a name', invalidUtf8('{"current_app":"CRM","name":"bad', '","value":"x"}'), [400, 'E008002']),
      put('invalid UTF-8 in a value', invalidUtf8('{"current_app":"CRM","name":"bad","value":"', '"}'), [400, 'E008002']),
      put('invalid UTF-8 outside strings', invalidUtf8('{"current_app":"CRM","name":"bad","value":', '}'), [400, 'E008002']),
      put('invalid UTF-8 on the Zato form parser', invalidUtf8('{"current_app":"CRM","name":"bad', '","value":"x"}'), [400, 'E008002'], { ...auth, 'content-type': 'application/x-www-form-urlencoded' }, Z),
      put('an array as the body', '[{"current_app":"CRM","name":"a","value":1}]', [400, 'E008002']),
      put('an object where data is a list', '{"current_app":"CRM","data":{"name":"a","value":1}}', [400, 'E008002']),
      put('strings as batch items', '{"current_app":"CRM","data":["a","b"]}', [400, 'E008002']),
      put('an empty batch', '{"current_app":"CRM","data":[]}', [400, 'E008002']),
      put('name and data both', '{"current_app":"CRM","name":"a","value":1,"data":[{"name":"b","value":2}]}', [400, 'E008002']),
      put('duplicate names in a batch', '{"current_app":"CRM","data":[{"name":"a","value":1},{"name":"a","value":2}]}', [400, 'E008002']),
      put('a valid item then a bad one', '{"current_app":"CRM","data":[{"name":"a","value":1},{"name":"b","value":2,"expiration":0}]}', [400, 'E008002']),
      put('a number as a name', '{"current_app":"CRM","name":123,"value":1}', [400, 'E008002']),
      put('a number as current_app', '{"current_app":1,"name":"a","value":1}', [400, 'E008002']),
      put('a string expiration', '{"current_app":"CRM","name":"a","value":1,"expiration":"60"}', [400, 'E008002']),
      put('a fractional expiration', '{"current_app":"CRM","name":"a","value":1,"expiration":1.5}', [400, 'E008002']),
      put('a negative expiration', '{"current_app":"CRM","name":"a","value":1,"expiration":-1}', [400, 'E008002']),
      put('a huge expiration', '{"current_app":"CRM","name":"a","value":1,"expiration":1e308}', [400, 'E008002']),
      put('a string if_version', '{"current_app":"CRM","name":"a","value":1,"if_version":"1"}', [400, 'E008002']),
      put('a string encrypt', '{"current_app":"CRM","name":"a","value":1,"encrypt":"yes"}', [400, 'E008002']),
      put('an unknown field', '{"current_app":"CRM","name":"a","value":1,"admin":true}', [400, 'E008002']),
      put('a missing current_app', '{"name":"a","value":1}', [400, 'E008003']),
      put('an app not allowed', '{"current_app":"Evil","name":"a","value":1}', [403, 'E004001']),
      put('a UST in the body differing from the bearer', JSON.stringify({ current_app: 'CRM', current_ust: 'x.y.z', name: 'a', value: 1 }), [400, 'E008002']),
      put('a forged UST', '{"current_app":"CRM","name":"a","value":1}', [401, 'E007001'], { authorization: 'Bearer eyJhbGciOiJub25lIn0.eyJzaWQiOiJ4In0.', 'content-type': 'application/json' }),
      put('a malformed Authorization', '{"current_app":"CRM","name":"a","value":1}', [401, 'E007001'], { authorization: 'Basic YTpi', 'content-type': 'application/json' }),
      put('a query string on a write', '{"current_app":"CRM","name":"a","value":1}', [400, 'E008002'], json, `${P}?name=b`),
      { what: 'a repeated name in the query', path: `${P}?current_app=CRM&name=a&name=b`, headers: auth, expect: [400, 'E008002'] },
      { what: 'a repeated current_app in the query', path: `${P}?current_app=CRM&current_app=CRM&name=a`, headers: auth, expect: [400, 'E008002'] },
      { what: 'an empty data in the query', path: `${P}?current_app=CRM&data=`, headers: auth, expect: [400, 'E008002'] },
      { what: '__proto__ in the query', path: `${P}?current_app=CRM&name=a&__proto__=x`, headers: auth, expect: [400, 'E008002'] },
      { what: 'constructor[prototype] in the query', path: `${P}?current_app=CRM&name=a&constructor[prototype][polluted]=1`, headers: auth, expect: [400, 'E008002'] },
      { what: 'a bracketed data[] in the query', path: `${P}?current_app=CRM&data[]=a&data[]=b`, headers: auth, expect: [400, 'E008002'] },
      { what: 'a field in both query and body', method: 'GET', path: `${P}?current_app=CRM&name=a`, headers: { ...json, 'content-length': 12 }, body: '{"name":"b"}', expect: [400, 'E008002'] },
      { what: 'odd separators in the query', path: `${P}?&&&=&==&current_app=CRM&name=a`, headers: auth },
      { what: 'a bad percent-encoding in the query', path: `${P}?current_app=CRM&name=%E0%A4%A`, headers: auth },
      { what: 'percent-encoded invalid UTF-8 in the query', path: `${P}?current_app=CRM&name=%FF%FE`, headers: auth },
      { what: 'a NUL in the query', path: `${P}?current_app=CRM&name=a%00b`, headers: auth, expect: [400, 'E008002'] },
      { what: 'a bad percent-encoding in the path', path: `${P}%E0%A4%A?current_app=CRM&name=a`, headers: auth, expect: [400, 'E008002'] },
      { what: 'a bad percent-encoding in a write path', method: 'PUT', path: `${P}%ZZ`, headers: json, body: '{"current_app":"CRM","name":"a","value":1}', expect: [400, 'E008002'] },
      { what: 'an 8 KB path', path: `${P}/${'x'.repeat(8000)}`, headers: auth, expect: [404, 'E008001'] },
      { what: 'a 10 KB query', path: `${P}?current_app=CRM&name=${'a'.repeat(10_000)}`, headers: auth, expect: [400, 'E008002'] },
      { what: 'a 100 KB URL', path: `${P}?current_app=CRM&name=${'a'.repeat(100_000)}`, headers: auth },
      { what: 'a 100 KB path on a write', method: 'PUT', path: `${P}/${'a'.repeat(100_000)}`, headers: json, body: '{"current_app":"CRM","name":"a","value":1}' },
      { what: 'an unknown method on a known path', method: 'PROPFIND', path: P, headers: auth, expect: [405, 'E008001'] },
      { what: 'an unknown route', path: '/sso/session/attr/../../etc/passwd', headers: auth, expect: [404, 'E008001'] }
    ]

    // Every case runs, and the failures are reported together.
    const statuses: string[] = []
    const failures: string[] = []
    for (const item of cases) {
      try {
        const reply = await raw(port, item)
        statuses.push(`${reply.status} ${item.what}`)
        if (item.expect !== undefined && reply.status !== 414 && reply.status !== 431) assertError(reply, item.expect[0], item.expect[1], item.what)
        else assertEnvelope(reply, item.what)
      } catch (error) {
        failures.push(`${item.what}: ${(error as Error).message.replace(/\s+/g, ' ').slice(0, 300)}`)
      }
    }

    // Bytes that are not HTTP, refused by Node's parser before Fastify sees them.
    const socketCases: Array<[string, string | Buffer, number]> = [
      ['a body with neither length nor chunking, then garbage', `GET ${P}?current_app=CRM&name=a HTTP/1.1\r\nhost: x\r\nauthorization: Bearer ${ust}\r\n\r\n{"name":"b"}`, 400],
      ['not HTTP at all', 'GARBAGE\r\n\r\n', 400],
      ['binary noise', Buffer.from([0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc, 0x03, 0x03, 0xff, 0x00, 0x0d, 0x0a, 0x0d, 0x0a]), 400],
      ['a header with no colon', 'GET /healthz HTTP/1.1\r\nhost: x\r\nno colon here\r\n\r\n', 400],
      ['conflicting Content-Length and Transfer-Encoding', `PUT ${P} HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: 5\r\ntransfer-encoding: chunked\r\n\r\n0\r\n\r\n`, 400],
      ['a bad chunk size', `PUT ${P} HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n\r\nZZ\r\n{}\r\n0\r\n\r\n`, 400],
      ['a 64 KB header', `GET /healthz HTTP/1.1\r\nhost: x\r\nx-big: ${'h'.repeat(65_536)}\r\n\r\n`, 431]
    ]
    for (const [what, bytes, status] of socketCases) {
      try {
        const reply = await rawSocket(port, bytes)
        statuses.push(`${reply.status} ${what}`)
        assert.equal(reply.status, status, `${what}: ${reply.status} ${reply.text.slice(0, 200)}`)
        assertEnvelope(reply, what)
      } catch (error) {
        failures.push(`${what}: ${(error as Error).message.replace(/\s+/g, ' ').slice(0, 300)}`)
      }
    }
    assert.deepEqual(failures, [])
    t.diagnostic(statuses.join('; '))

    assert.equal(({} as Record<string, unknown>).polluted, undefined, 'Object.prototype is untouched')
    assert.deepEqual(assertOk(await call(base, 'GET', `${P}/names?current_app=CRM`, { ust }), 'names after the hostile batch').result, [])
    const inspect = redis.client()
    t.after(() => inspect.disconnect())
    // The one key there is the caller's session index (docs/KEYS.md), written when the token was
    // first verified, as for any authenticated request; nothing of the session or its attributes.
    const keys = await inspect.keys(`${config.SSO_KEY_PREFIX!}*`)
    assert.deepEqual(keys.filter((key) => !/^[^{]*\{u:[^}]+\}:s$/.test(key)), [], 'no session key under the prefix')
    assert.ok(keys.length <= 1, `at most the caller's index: ${keys.join(', ')}`)

    // Still serving normally afterwards.
    assertOk(await call(base, 'PUT', P, { ust, body: { current_app: 'CRM', name: 'after', value: 1 } }), 'a normal write after the hostile batch')
  })

  test('a value nested 100 levels deep round-trips; 101 levels is refused', { timeout: 30_000 }, async (t) => {
    const { base } = await listen(t, redisConfig())
    const ust = await mintUst()
    let nested: unknown = 'leaf'
    for (let depth = 0; depth < 100; depth++) nested = depth % 2 === 0 ? [nested] : { k: nested }
    const P = '/sso/session/attr'
    assertOk(await call(base, 'PUT', P, { ust, body: { current_app: 'CRM', name: 'nested', value: nested } }), 'PUT 100 levels')
    assert.deepEqual(assertOk(await call(base, 'GET', `${P}?current_app=CRM&name=nested`, { ust })).value, nested)
    const refused = assertError(await call(base, 'PUT', P, { ust, body: { current_app: 'CRM', name: 'deeper', value: [nested] } }), 400, 'E008002', 'PUT 101 levels')
    assert.deepEqual(refused.details?.map((detail) => detail.path), ['/value'])
  })
})
