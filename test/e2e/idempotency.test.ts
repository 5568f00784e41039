import assert from 'node:assert/strict'
import { randomUUID } from 'node:crypto'
import { after, before, describe, test } from 'node:test'
import { setTimeout as sleep } from 'node:timers/promises'
import { Redis } from 'ioredis'
import { RedisServer } from '../fixtures/redis.ts'
import { mintUst } from '../helper.ts'
import { assertError, assertOk, call, listen, rawSocket, type Reply } from './http.ts'

// Retries made safe by Idempotency-Key, over a real socket on a real redis-server (D48). The
// scenario that needed it: Redis paused under writes, each answered 503 (outcome unknown), yet
// applied once Redis resumed. Retried without a key, a conditional PUT met its own write (409)
// and a POST met its own attribute (E009001); retried with its key, each gets the answer of the
// write that was applied, and the store holds every write exactly once.

const P = '/sso/session/attr'
const COMMAND_TIMEOUT_MS = 500
const WRITES = 10

let redis: RedisServer
before(async () => { redis = await RedisServer.start() })
after(async () => { await redis.close() })

const keyed = (key: string) => ({ 'idempotency-key': `"${key}"` })

describe('Idempotency-Key over HTTP', () => {
  test('Redis paused under writes: every 503 retried with its key after Redis resumes gets the applied write\'s answer; each write is stored once', { timeout: 40_000 }, async (t) => {
    const { base } = await listen(t, { SSO_STORE: 'redis', REDIS_URL: redis.url, REDIS_COMMAND_TIMEOUT_MS: COMMAND_TIMEOUT_MS })
    const ust = await mintUst()
    for (let i = 0; i < WRITES; i++) assertOk(await call(base, 'PUT', P, { ust, body: { current_app: 'CRM', name: `p${i}`, value: 'v1' } }), 'PUT before the pause')
    // Each request's own key, and its body, kept for the retry.
    const requests = [
      ...Array.from({ length: WRITES }, (_, i) => ({ method: 'PUT', key: randomUUID(), body: { current_app: 'CRM', name: `p${i}`, value: 'v2', if_version: 1 } })),
      ...Array.from({ length: WRITES }, (_, i) => ({ method: 'POST', key: randomUUID(), body: { current_app: 'CRM', name: `c${i}`, value: i } }))
    ]

    redis.pause()
    let first: Reply[]
    try {
      first = await Promise.all(requests.map(async ({ method, key, body }) => await call(base, method, P, { ust, body, headers: keyed(key) })))
    } finally {
      redis.resume()
    }
    for (const reply of first) assertError(reply, 503, 'E011003', 'during the pause')

    // Redis now runs what it had received: the writes answered 503 are applied all the same.
    const inspect = new Redis(redis.port, '127.0.0.1', { maxRetriesPerRequest: 1 })
    t.after(() => { inspect.disconnect() })
    let served = false
    for (let attempt = 0; attempt < 100 && !served; attempt++) {
      served = (await call(base, 'GET', `${P}/names?current_app=CRM`, { ust })).status === 200
      if (!served) await sleep(50)
    }
    assert.ok(served, 'the service serves again after the pause')
    const applied = assertOk(await call(base, 'GET', `${P}?current_app=CRM&${requests.map(({ body }) => `data=${body.name}`).join('&')}`, { ust })).result as Record<string, { found: boolean, version?: number }>
    const appliedCount = Object.values(applied).filter((attribute) => attribute.found && (attribute.version === 2 || attribute.version === 1)).length
    t.diagnostic(`${first.length} writes answered 503 during the pause; after it, the attributes they named: ${JSON.stringify(Object.fromEntries(Object.entries(applied).map(([name, a]) => [name, a.version ?? null])))}`)

    const retried = await Promise.all(requests.map(async ({ method, key, body }) => await call(base, method, P, { ust, body, headers: keyed(key) })))
    const versions: Record<string, number> = {}
    for (const [index, reply] of retried.entries()) {
      const { body } = requests[index]!
      const answer = assertOk(reply, `retry of ${requests[index]!.method} ${body.name}`)
      versions[body.name] = answer.version as number
      assert.equal(answer.version, body.name.startsWith('p') ? 2 : 1, `${body.name}: the version of its one write`)
    }
    const final = assertOk(await call(base, 'GET', `${P}?current_app=CRM&${requests.map(({ body }) => `data=${body.name}`).join('&')}`, { ust })).result as Record<string, { version: number, value: unknown }>
    for (const { body } of requests) {
      assert.equal(final[body.name]!.version, versions[body.name], `${body.name} holds the version its retry reported: written once`)
      assert.deepEqual(final[body.name]!.value, body.value)
    }
    t.diagnostic(`${retried.length} retries with their keys: all 200 with the applied write's version (${appliedCount} had been applied during the pause); every write stored once`)
  })

  test('the header: quoted or bare, one only; a malformed or repeated one is 400 and writes nothing; on the Zato path too', async (t) => {
    const { base } = await listen(t)
    const ust = await mintUst()
    const put = async (headers: Record<string, string>, path = P) => await call(base, 'PUT', path, { ust, body: { current_app: 'CRM', name: 'h', value: 1 }, headers })
    assert.equal(assertOk(await put({ 'idempotency-key': '"abc"' })).version, 1)
    assert.equal(assertOk(await put({ 'idempotency-key': '"abc"' }), 'the repeat').version, 1)
    assert.equal(assertOk(await put({ 'idempotency-key': 'bare-key-1' })).version, 2)
    assert.equal(assertOk(await put({ 'idempotency-key': 'bare-key-1' }), 'the bare repeat').version, 2)
    assertError(await put({ 'idempotency-key': '"has "quote"' }), 400, 'E008002', 'a quote inside')
    assertError(await put({ 'idempotency-key': `"${'k'.repeat(256)}"` }), 400, 'E008002', 'too long')
    assertError(await put({ 'idempotency-key': '""' }), 400, 'E008002', 'empty')
    assert.equal(assertOk(await call(base, 'GET', `${P}?current_app=CRM&name=h`, { ust })).version, 2, 'nothing written by the refused ones')
    // Zato's wire, with the key: the same replay.
    const zato = async () => await call(base, 'PUT', '/zato/sso/session/attr', { ust, body: { current_app: 'CRM', name: 'z', value: 1 }, headers: { 'idempotency-key': '"zato-1"' } })
    assert.equal(assertOk(await zato()).version, 1)
    assert.equal(assertOk(await zato(), 'the Zato repeat').version, 1)
  })

  test('a repeat with another body is 422 E011008 and writes nothing; a repeated header is 400', async (t) => {
    const { base, port } = await listen(t)
    const ust = await mintUst()
    const put = async (value: unknown) => await call(base, 'PUT', P, { ust, body: { current_app: 'CRM', name: 'x', value }, headers: keyed('same') })
    assertOk(await put(1))
    assertError(await put(2), 422, 'E011008', 'another body under the same key')
    assert.equal(assertOk(await call(base, 'GET', `${P}?current_app=CRM&name=x`, { ust })).value, 1)
    // Two headers: fetch would join them, so the request is written on a raw socket.
    const body = JSON.stringify({ current_app: 'CRM', name: 'y', value: 1 })
    const twice = await rawSocket(port, `PUT ${P} HTTP/1.1\r\nhost: x\r\nauthorization: Bearer ${ust}\r\ncontent-type: application/json\r\n` +
      `idempotency-key: "a"\r\nidempotency-key: "b"\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`)
    assertError(twice, 400, 'E008002', 'two Idempotency-Key headers')
    assert.equal(assertOk(await call(base, 'GET', `${P}/exists?current_app=CRM&name=y`, { ust })).result, false, 'nothing written')
  })
})
