import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import fastJsonStringify from 'fast-json-stringify'
import { batchGetBody } from '../../routes/attribute-json.ts'
import { byName } from '../../routes/request-input.ts'
import { viewOf, type NameSpec, type ReadAttribute } from '../../src/attribute-service.ts'
import { GetResponses } from '../../src/schemas/attributes.ts'
import { build, mintUst } from '../helper.ts'

// The batch GET body is built as text (routes/attribute-json.ts). It must be exactly what
// fast-json-stringify writes from the route's response schema for the parsed values.

const schemaSerializer = fastJsonStringify(GetResponses[200] as Parameters<typeof fastJsonStringify>[0])
const T0 = Date.UTC(2026, 11, 3, 9, 30, 15, 7)

const values: unknown[] = [
  'dark', '', 'quote " backslash \\ slash / newline \n tab \t nul \u0000 line sep \u2028 del \u007f',
  'ünïcödé 😀 漢字', 'lone \ud800 surrogate', 0, -1.5e-7, 1e21, 2 ** 53, true, false, null, [], {},
  { nested: [1, { b: null, c: 'x' }], 10: 'integer-like key', '': 'empty key', __proto__x: 1 },
  'x'.repeat(10_000)
]
const names = ['plain', 'q"uote', 'back\\slash', '😀', '__proto__', 'a:b', 'ｚ', 'with space', 'tab\u2028sep']

function attribute (name: string, value: unknown, index: number): ReadAttribute {
  return {
    name,
    valueJson: JSON.stringify(value),
    createdAt: T0 - index * 86_400_001,
    modifiedAt: T0 + index * 999,
    expiresAt: index % 3 === 0 ? null : T0 + index * 60_000,
    encrypted: index % 4 === 1,
    version: index + 1
  }
}

/** What the schema's serializer writes for the same attributes, parsed. */
function viaSchema (cid: string, specs: NameSpec[], attributes: Array<ReadAttribute | null>): string {
  const views = attributes.map((read) => (read === null ? { found: false } : viewOf(read)))
  return schemaSerializer({ cid, status: 'ok', result: byName(specs, views) })
}

describe('batch GET body', () => {
  test('is byte for byte what fast-json-stringify writes from the response schema', () => {
    let checked = 0
    for (let offset = 0; offset < values.length; offset++) {
      const specs = names.map((name, index) => ({ path: `/data/${index}`, name }))
      const attributes = names.map((name, index) => {
        if ((index + offset) % 5 === 4) return null // missing
        return attribute(name, values[(index + offset) % values.length], index + offset)
      })
      const body = batchGetBody('cid"with\\odd chars', specs, attributes)
      assert.equal(body, viaSchema('cid"with\\odd chars', specs, attributes))
      const parsed = JSON.parse(body) as { result: Record<string, { found: boolean, value?: unknown }> }
      assert.deepEqual(Object.keys(parsed.result), names)
      checked += attributes.filter((read) => read !== null).length
    }
    assert.ok(checked > 100)
  })

  test('an encrypted value read without decrypting is its ciphertext as a JSON string', () => {
    const read = { ...attribute('secret', 'ignored', 1), valueJson: JSON.stringify('v1.k1.aXY.Y3Q'), encrypted: true }
    const specs = [{ path: '/data/0', name: 'secret' }]
    const body = JSON.parse(batchGetBody('c', specs, [read])) as { result: { secret: { value: unknown, is_encrypted: boolean } } }
    assert.equal(body.result.secret.value, 'v1.k1.aXY.Y3Q')
    assert.equal(body.result.secret.is_encrypted, true)
  })

  test('a damaged stored value fails instead of going into the body', () => {
    const damaged = { ...attribute('broken', 'x', 0), valueJson: '{"a":' }
    assert.throws(() => batchGetBody('c', [{ path: '/data/0', name: 'broken' }], [damaged]), SyntaxError)
  })

  test('the route answers it as JSON with the same content type as every other answer', async (t) => {
    const app = await build(t)
    const ust = await mintUst()
    const headers = { authorization: `Bearer ${ust}` }
    const put = await app.inject({ method: 'PUT', url: '/sso/session/attr', headers, payload: { current_app: 'CRM', data: [{ name: 'a', value: { deep: ['x'] } }, { name: 'b"q', value: 'two', expiration: 60 }] } })
    assert.equal(put.statusCode, 200, put.body)
    const single = await app.inject({ method: 'GET', url: '/sso/session/attr?current_app=CRM&name=a', headers })
    const batch = await app.inject({ method: 'GET', url: `/sso/session/attr?current_app=CRM&data=a&data=${encodeURIComponent('b"q')}&data=none`, headers })
    assert.equal(batch.statusCode, 200, batch.body)
    assert.equal(batch.headers['content-type'], single.headers['content-type'])
    assert.equal(batch.headers['content-type'], 'application/json; charset=utf-8')
    const body = JSON.parse(batch.body) as { cid: string, status: string, result: Record<string, { found: boolean, value?: unknown, expiration_time?: string | null, version?: number }> }
    assert.equal(body.status, 'ok')
    assert.equal(body.cid, batch.headers['x-cid'])
    assert.deepEqual(body.result.a?.value, { deep: ['x'] })
    assert.equal(body.result.a?.expiration_time, null)
    assert.equal(body.result['b"q']?.value, 'two')
    assert.equal(typeof body.result['b"q']?.expiration_time, 'string')
    assert.deepEqual(body.result.none, { found: false })
  })
})
