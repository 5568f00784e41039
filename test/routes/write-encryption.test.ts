import assert from 'node:assert/strict'
import { randomBytes, randomUUID } from 'node:crypto'
import { after, before, describe, test, type TestContext } from 'node:test'
import type { App } from '../../src/app.ts'
import { sessionOwner } from '../../src/store/types.ts'
import { sessionIdOf } from '../../src/ust.ts'
import { RedisServer } from '../fixtures/redis.ts'
import { build, mintUst, TEST_ISSUER } from '../helper.ts'

// A write that does not say `encrypt` keeps each stored attribute's encryption state. The
// service sends such values in clear only and encrypts them for a second round trip only
// when the store reports an encrypted attribute among them (docs/DECISIONS.md).

const PATH = '/sso/session/attr'

async function put (app: App, ust: string, body: Record<string, unknown>) {
  const response = await app.inject({ method: 'PUT', url: PATH, headers: { authorization: `Bearer ${ust}` }, payload: { current_app: 'CRM', ...body } })
  assert.equal(response.statusCode, 200, response.body)
  return response.json<{ result?: Record<string, { version: number }>, version?: number }>()
}

async function get (app: App, ust: string, name: string) {
  const response = await app.inject({ method: 'GET', url: `${PATH}?current_app=CRM&name=${name}`, headers: { authorization: `Bearer ${ust}` } })
  assert.equal(response.statusCode, 200, response.body)
  return response.json<{ value: unknown, is_encrypted: boolean, version: number }>()
}

function suite (name: string, open: (t: TestContext) => Promise<{ app: App, scriptCalls: () => Promise<number | undefined> }>) {
  describe(`PUT without encrypt (${name} store)`, () => {
    test('a batch over encrypted, clear and new attributes keeps each one\'s state and writes every value', async (t) => {
      const { app, scriptCalls } = await open(t)
      const sid = randomUUID()
      const ust = await mintUst({ sid })
      await put(app, ust, { data: [{ name: 'secret', value: 's0', encrypt: true }, { name: 'clear', value: 'c0' }] })
      const before = await scriptCalls()
      const reply = await put(app, ust, { data: [{ name: 'clear', value: 'c1' }, { name: 'secret', value: 's1' }, { name: 'fresh', value: 'f1' }] })
      const calls = await scriptCalls()
      assert.deepEqual(Object.fromEntries(Object.entries(reply.result!).map(([key, item]) => [key, item.version])), { clear: 2, secret: 2, fresh: 1 })
      const [secret, clear, fresh] = await app.store.get(sessionOwner(sessionIdOf(TEST_ISSUER, sid)), ['secret', 'clear', 'fresh'])
      assert.equal(secret?.encrypted, true)
      // The JSON text of the value, quotes included: base64url never holds a quote, so random
      // ciphertext cannot match it by chance (a bare /s1/ did, about once in a hundred runs).
      assert.ok(!secret!.payload.includes('"s1"'), secret!.payload)
      assert.deepEqual([clear?.encrypted, clear?.payload], [false, '"c1"'])
      assert.deepEqual([fresh?.encrypted, fresh?.payload], [false, '"f1"'])
      const read = await get(app, ust, 'secret')
      assert.deepEqual([read.value, read.is_encrypted, read.version], ['s1', true, 2])
      // Two script calls: the clear-only attempt the store refused, then the one with ciphertext.
      if (before !== undefined) assert.equal(calls! - before, 2)
    })

    test('over clear and new attributes only: one store call, nothing encrypted', async (t) => {
      const { app, scriptCalls } = await open(t)
      const sid = randomUUID()
      const ust = await mintUst({ sid })
      await put(app, ust, { name: 'clear', value: 'c0' })
      const before = await scriptCalls()
      assert.equal((await put(app, ust, { data: [{ name: 'clear', value: 'c1' }, { name: 'fresh', value: 'f1' }] })).result!.clear!.version, 2)
      const calls = await scriptCalls()
      if (before !== undefined) assert.equal(calls! - before, 1)
      const [clear, fresh] = await app.store.get(sessionOwner(sessionIdOf(TEST_ISSUER, sid)), ['clear', 'fresh'])
      assert.deepEqual([clear?.encrypted, fresh?.encrypted], [false, false])
    })
  })
}

suite('memory', async (t) => ({ app: await build(t), scriptCalls: async () => undefined }))

describe('with Redis', () => {
  let redis: RedisServer
  before(async () => { redis = await RedisServer.start() })
  after(async () => await redis.close())
  suite('redis', async (t) => {
    const app = await build(t, { SSO_STORE: 'redis', REDIS_URL: redis.url, SSO_KEY_PREFIX: `we-${randomBytes(4).toString('hex')}:` })
    const inspect = redis.client()
    t.after(() => inspect.disconnect())
    return {
      app,
      scriptCalls: async () => {
        const stats = await inspect.info('commandstats')
        return Number(/cmdstat_evalsha:calls=(\d+)/.exec(stats)?.[1] ?? 0) + Number(/cmdstat_eval:calls=(\d+)/.exec(stats)?.[1] ?? 0)
      }
    }
  })
})
