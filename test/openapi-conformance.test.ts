import assert from 'node:assert/strict'
import { randomUUID } from 'node:crypto'
import { describe, test } from 'node:test'
import fc from 'fast-check'
import type { App } from '../src/app.ts'
import { build, mintUst } from './helper.ts'
import { conformanceProblems, document, operationById, operations, resolve, type DocumentedOperation, type Json, type Schema } from './openapi-contract.ts'

// Fuzzes every operation of openapi.yaml from the document alone: query strings and bodies
// drawn from its schemas (the examples often, so that apps, names and values hit; anything the
// schema allows otherwise; now and then a field the document does not know), sent with a valid
// bearer token, and every answer judged against the document (status, body, headers). A few
// hundred requests over app.inject: seconds, not minutes.

const RUNS_PER_OPERATION = 30
/** Fixed, so that a run is repeatable; FUZZ_SEED=<n> explores another part of the space. */
const SEED = Number(process.env.FUZZ_SEED ?? 20261207)

/** Values that a schema allows, examples first. */
function arbitraryOf (node: Schema | boolean, depth = 0): fc.Arbitrary<unknown> {
  if (node === true) return fc.jsonValue({ maxDepth: 2 })
  const schema = resolve<Schema>(node as Schema)
  const generated = generatedOf(schema, depth)
  const examples = Array.isArray(schema.examples) ? schema.examples : []
  return examples.length === 0 ? generated : fc.oneof({ arbitrary: fc.constantFrom(...examples), weight: 3 }, { arbitrary: generated, weight: 1 })
}

function generatedOf (schema: Schema, depth: number): fc.Arbitrary<unknown> {
  if ('const' in schema) return fc.constant(schema.const)
  if (Array.isArray(schema.anyOf)) return fc.oneof(...(schema.anyOf as Schema[]).map((branch) => arbitraryOf(branch, depth)))
  const types = [schema.type ?? 'any'].flat() as string[]
  return fc.oneof(...types.map((type) => typed(type, schema, depth)))
}

function typed (type: string, schema: Schema, depth: number): fc.Arbitrary<unknown> {
  switch (type) {
    case 'string': {
      const minLength = Number(schema.minLength ?? 0)
      const maxLength = Math.min(Number(schema.maxLength ?? 40), 40)
      if (schema.format === 'date-time') return fc.date({ noInvalidDate: true }).map((date) => date.toISOString())
      const text = fc.string({ unit: 'grapheme', minLength, maxLength })
      return typeof schema.pattern === 'string' ? text.filter((value) => new RegExp(schema.pattern as string, 'u').test(value)) : text
    }
    case 'integer': return fc.integer({ min: Number(schema.minimum ?? -1e6), max: Math.min(Number(schema.maximum ?? 1e6), 1e6) })
    case 'boolean': return fc.boolean()
    case 'null': return fc.constant(null)
    case 'array': return fc.array(arbitraryOf(schema.items as Schema, depth + 1), { minLength: Number(schema.minItems ?? 0), maxLength: 4 })
    case 'object': return objectOf(schema, depth)
    default: return fc.jsonValue({ maxDepth: 2 })
  }
}

function objectOf (schema: Schema, depth: number): fc.Arbitrary<unknown> {
  const branches = (schema.oneOf as Schema[] | undefined) ?? [{}]
  return fc.oneof(...branches.map((branch) => {
    const properties = { ...(schema.properties as Record<string, Schema>), ...(branch.properties as Record<string, Schema | boolean> | undefined) }
    const allowed = Object.entries(properties).filter(([, property]) => property !== false)
    const requiredKeys = [...new Set([...(schema.required as string[] | undefined) ?? [], ...(branch.required as string[] | undefined) ?? []])]
    return fc.record(Object.fromEntries(allowed.map(([name, property]) => [name, arbitraryOf(property as Schema, depth + 1)])), { requiredKeys })
  }))
}

/** A request drawn from the operation's parameters and body; `unknownField` adds a field the document does not name. */
function requestOf ({ parameters, operation }: DocumentedOperation): fc.Arbitrary<{ query: Array<[string, string]>, body: unknown, unknownField: boolean }> {
  const query = fc.tuple(...parameters.filter((parameter) => parameter.in === 'query').map((parameter) => {
    const value = arbitraryOf(parameter.schema)
    return parameter.required === true ? value.map((item) => [parameter.name, item] as const) : fc.option(value.map((item) => [parameter.name, item] as const), { nil: undefined, freq: 2 })
  })).map((pairs) => pairs.flatMap((pair) => pair === undefined ? [] : [pair[1]].flat().map((item): [string, string] => [pair[0], String(item)])))
  const media = operation.requestBody?.content['application/json'] ?? operation.requestBody?.content['application/x-www-form-urlencoded']
  const body = media === undefined ? fc.constant(undefined) : arbitraryOf(media.schema)
  return fc.record({ query, body, unknownField: fc.boolean().map((flip) => flip && Math.random() < 0.2) })
}

async function send (app: App, { method, path, operation }: DocumentedOperation, input: { query: Array<[string, string]>, body: unknown, unknownField: boolean }, ust: string) {
  const params = new URLSearchParams(input.query)
  const form = operation.requestBody?.content['application/x-www-form-urlencoded'] !== undefined
  let body = input.body
  if (input.unknownField) {
    if (body !== null && typeof body === 'object') body = { ...body, colour: 'red' }
    else params.append('colour', 'red')
  }
  const url = params.size > 0 ? `${path}?${params.toString()}` : path
  const headers: Record<string, string> = (operation.security ?? []).length > 0 ? { authorization: `Bearer ${ust}` } : {}
  if (body === undefined) return await app.inject({ method: method as 'GET', url, headers })
  if (form) {
    const fields = new URLSearchParams(Object.entries(body as Json).map(([key, value]): [string, string] => [key, String(value)]))
    return await app.inject({ method: method as 'GET', url, headers: { ...headers, 'content-type': 'application/x-www-form-urlencoded' }, payload: fields.toString() })
  }
  return await app.inject({ method: method as 'GET', url, headers: { ...headers, 'content-type': 'application/json' }, payload: JSON.stringify(body) })
}

describe('openapi.yaml: answers to requests drawn from the document conform to it', () => {
  test('every operation, fuzzed: no undocumented status, field or header', async (t) => {
    const app = await build(t, { SSO_RATE_LIMIT_MAX: 100_000 })
    // One session for everything (writes then reads hit the same names); ending it gets a session of its own.
    const shared = await mintUst({ sid: randomUUID() })
    const problems: string[] = []
    const statuses = new Map<string, Set<number>>()
    for (const documented of operations) {
      const id = documented.operation.operationId
      await fc.assert(fc.asyncProperty(requestOf(documented), async (input) => {
        const ust = id === 'endSession' ? await mintUst({ sid: randomUUID() }) : shared
        const answer = await send(app, documented, input, ust)
        const seen = statuses.get(id) ?? new Set<number>()
        statuses.set(id, seen.add(answer.statusCode))
        for (const problem of conformanceProblems(documented.operation, answer)) problems.push(`${id} ${JSON.stringify(input).slice(0, 300)}: ${problem}`)
      }), { numRuns: RUNS_PER_OPERATION, seed: SEED })
    }
    assert.deepEqual(problems, [], `answers that do not conform (seed ${SEED}):\n${problems.slice(0, 20).join('\n')}`)
    // The fuzz reached past validation: successes on the attribute operations.
    for (const id of ['setAttributes', 'getAttributes', 'attributeNames', 'attributesExist', 'deleteAttributes']) {
      assert.ok(statuses.get(id)?.has(200), `${id} answered 200 at least once (${[...statuses.get(id) ?? []].join(', ')})`)
    }
  })

  test('the judge does fail an answer the document does not describe', () => {
    const names = operationById('attributeNames').operation
    const ok = { statusCode: 200, headers: { 'x-cid': '6a1f0c2e9b8d4f7a3c5e1b2d', 'cache-control': 'no-store', 'content-type': 'application/json; charset=utf-8' }, body: '{"cid":"6a1f0c2e9b8d4f7a3c5e1b2d","status":"ok","result":["a"]}' }
    assert.deepEqual(conformanceProblems(names, ok), [])
    assert.match(conformanceProblems(names, { ...ok, statusCode: 404 }).join(), /status 404 is not documented/)
    assert.match(conformanceProblems(names, { ...ok, body: '{"cid":"6a1f0c2e9b8d4f7a3c5e1b2d","status":"ok","result":["a"],"extra":1}' }).join(), /additional properties/)
    assert.match(conformanceProblems(names, { ...ok, headers: { ...ok.headers, 'x-powered-by': 'x' } }).join(), /x-powered-by is not documented/)
    assert.match(conformanceProblems(names, { ...ok, headers: { 'cache-control': 'no-store' } }).join(), /x-cid is missing/)
  })
})

describe('attribute names: the document and the service count code points alike', () => {
  const documentedLimit = Number(resolve<Schema>(document.components.schemas.AttributeName!).maxLength)

  test(`${documentedLimit} emoji (${documentedLimit * 2} UTF-16 units) are a name; one more is not, in the document and in the service`, async (t) => {
    assert.equal(documentedLimit, 191)
    const app = await build(t)
    const ust = await mintUst()
    const emoji = (count: number) => '\u{1F600}'.repeat(count)
    const put = async (name: string) => await app.inject({ method: 'PUT', url: '/sso/session/attr', headers: { authorization: `Bearer ${ust}` }, payload: { current_app: 'CRM', name, value: 1 } })
    const longest = await put(emoji(documentedLimit))
    assert.equal(longest.statusCode, 200, longest.body)
    const tooLong = await put(emoji(documentedLimit + 1))
    assert.equal(tooLong.statusCode, 400, tooLong.body)
    assert.deepEqual(tooLong.json<{ details: Array<{ path: string }> }>().details.map((detail) => detail.path), ['/name'])
    const { Ajv2020 } = await import('ajv/dist/2020.js')
    const validName = new Ajv2020({ strict: false }).compile(resolve<Schema>(document.components.schemas.AttributeName!))
    assert.equal(validName(emoji(documentedLimit)), true)
    assert.equal(validName(emoji(documentedLimit + 1)), false)
  })
})
