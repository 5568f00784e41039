import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { describe, test } from 'node:test'
import SwaggerParser from '@apidevtools/swagger-parser'
import type { OpenAPI } from 'openapi-types'
import { parse } from 'yaml'
import { OPENAPI_PATH } from '../scripts/openapi.ts'
import { ERROR_CATALOG, type ErrorCode } from '../src/errors.ts'

// Lints the committed openapi.yaml as a client author reads it: valid OpenAPI 3.1, and
// complete enough to use without reading the code.

interface SchemaObject {
  type?: string | string[]
  description?: string
  examples?: unknown[]
  const?: unknown
  enum?: unknown[]
  properties?: Record<string, SchemaObject>
  required?: string[]
  items?: SchemaObject
  additionalProperties?: SchemaObject | boolean
  anyOf?: SchemaObject[]
}

interface MediaObject { schema?: SchemaObject, example?: unknown, examples?: Record<string, { value?: unknown }> }

interface Operation {
  operationId?: string
  summary?: string
  tags?: string[]
  security?: Array<Record<string, string[]>>
  parameters?: Array<{ name: string, in: string, description?: string, example?: unknown, examples?: unknown, schema?: SchemaObject }>
  requestBody?: { required?: boolean, content: Record<string, MediaObject> }
  responses: Record<string, { description?: string, content?: Record<string, MediaObject> }>
}

interface Document {
  openapi: string
  paths: Record<string, Record<string, Operation>>
  components?: { securitySchemes?: Record<string, { type?: string, scheme?: string, bearerFormat?: string }> }
}

const document = parse(readFileSync(OPENAPI_PATH, 'utf8')) as Document

const operations = Object.entries(document.paths).flatMap(([path, item]) =>
  Object.entries(item).map(([method, operation]) => ({ label: `${method.toUpperCase()} ${path}`, path, method, operation })))
const attributeOperations = operations.filter(({ path }) => path.includes('/session/attr'))

/** Fields that lack a description or an example and are known to: each names where to fix it. */
const KNOWN_GAPS: Record<string, string> = {
  'GET /readyz 200 store: no example': 'inline schema in routes/health.ts'
}

function hasExample (schema: SchemaObject): boolean {
  return (schema.examples?.length ?? 0) > 0 || schema.const !== undefined || (schema.enum?.length ?? 0) > 0 ||
    (schema.anyOf ?? []).some((branch) => (branch.examples?.length ?? 0) > 0)
}

/** Every property at any depth (object properties, array items, map values, union branches). */
function fieldGaps (schema: SchemaObject, where: string, gaps: string[]): void {
  for (const [name, property] of Object.entries(schema.properties ?? {})) {
    const field = `${where}${name}`
    if (property.description === undefined || property.description.trim() === '') gaps.push(`${field}: no description`)
    if (!hasExample(property)) gaps.push(`${field}: no example`)
    fieldGaps(property, `${field}.`, gaps)
  }
  if (schema.items !== undefined) fieldGaps(schema.items, where.replace(/\.$/, '[].'), gaps)
  if (typeof schema.additionalProperties === 'object') fieldGaps(schema.additionalProperties, where.replace(/\.$/, '{}.'), gaps)
  for (const branch of schema.anyOf ?? []) fieldGaps(branch, where, gaps)
}

const jsonSchemaOf = (media: Record<string, MediaObject> | undefined) => media?.['application/json']?.schema

/** The error statuses each attribute operation can answer, from the error catalog and the README's error table. */
function expectedErrorStatuses (method: string): number[] {
  const statuses = [400, 401, 403, 413, 415, 500, 503]
  if (method === 'post' || method === 'patch' || method === 'put' || method === 'delete') statuses.push(409)
  if (method === 'patch') statuses.push(404)
  if (method === 'get' || method === 'patch' || method === 'put') statuses.push(422)
  return statuses.sort()
}

describe('openapi.yaml (lint)', () => {
  test('validates as OpenAPI 3.1 with swagger-parser', async () => {
    const api = await SwaggerParser.validate(structuredClone(document) as unknown as OpenAPI.Document)
    assert.match((api as { openapi: string }).openapi, /^3\.1\./)
  })

  test('the validator does reject a broken 3.1 document', async () => {
    const broken = structuredClone(document) as unknown as { paths: Record<string, Record<string, Record<string, unknown>>> }
    broken.paths['/healthz']!.get!.responses = 'none'
    await assert.rejects(SwaggerParser.validate(broken as unknown as OpenAPI.Document))
  })

  test('every operation has a unique operationId, a summary and a tag', () => {
    const ids = new Set<string>()
    for (const { label, operation } of operations) {
      assert.ok(operation.summary !== undefined && operation.summary.trim() !== '', `${label} has a summary`)
      assert.ok((operation.tags?.length ?? 0) > 0, `${label} has a tag`)
      assert.ok(operation.operationId !== undefined, `${label} has an operationId`)
      assert.ok(!ids.has(operation.operationId), `${label}: operationId ${operation.operationId} is unique`)
      ids.add(operation.operationId)
    }
  })

  test('every request and response field has a description and an example', () => {
    const gaps: string[] = []
    for (const { label, operation } of operations) {
      for (const parameter of operation.parameters ?? []) {
        const field = `${label} ${parameter.in} ${parameter.name}`
        if ((parameter.description ?? parameter.schema?.description ?? '').trim() === '') gaps.push(`${field}: no description`)
        if (!('example' in parameter) && parameter.examples === undefined && !hasExample(parameter.schema ?? {})) gaps.push(`${field}: no example`)
      }
      const body = jsonSchemaOf(operation.requestBody?.content)
      if (body !== undefined) fieldGaps(body, `${label} body `, gaps)
      for (const [status, response] of Object.entries(operation.responses)) {
        const schema = jsonSchemaOf(response.content)
        if (schema !== undefined) fieldGaps(schema, `${label} ${status} `, gaps)
      }
    }
    const unknown = [...new Set(gaps)].filter((gap) => !(gap in KNOWN_GAPS))
    assert.deepEqual(unknown, [], `fields without a description or an example (annotate them in src/schemas/*.ts, then npm run openapi):\n  ${unknown.join('\n  ')}`)
    const fixed = Object.keys(KNOWN_GAPS).filter((gap) => !gaps.includes(gap))
    assert.deepEqual(fixed, [], 'these gaps are fixed: remove them from KNOWN_GAPS')
  })

  test('every error response is the error envelope, with an example sub_status of its HTTP status', () => {
    for (const { label, operation } of operations) {
      for (const [status, response] of Object.entries(operation.responses)) {
        if (Number(status) < 400) continue
        const where = `${label} ${status}`
        const media = response.content?.['application/json']
        const schema = media?.schema
        assert.ok(schema !== undefined, `${where} has an application/json schema`)
        assert.deepEqual([...schema.required ?? []].sort(), ['cid', 'status', 'sub_status'], `${where}: cid, status and sub_status are required`)
        assert.deepEqual(schema.properties?.status?.enum ?? [schema.properties?.status?.const], ['error'], `${where}: status is "error"`)
        assert.equal(schema.properties?.sub_status?.type, 'array', `${where}: sub_status is a list`)
        for (const optional of ['message', 'details']) assert.ok(schema.properties?.[optional] !== undefined, `${where} documents ${optional}`)
        // @fastify/swagger moves a response schema's single example to the media object.
        const example = (media?.example ?? Object.values(media?.examples ?? {})[0]?.value ?? schema.examples?.[0]) as { status?: string, sub_status?: string[] } | undefined
        assert.equal(example?.status, 'error', `${where} has an example envelope`)
        assert.ok((example?.sub_status?.length ?? 0) > 0, `${where}: the example has a sub_status`)
        for (const code of example!.sub_status!) {
          assert.ok(code in ERROR_CATALOG, `${where}: example code ${code} is in the error catalog`)
          const catalogStatus = ERROR_CATALOG[code as ErrorCode].status
          // E008001 (unknown route, method or media type) is answered as 404, 405 or 415.
          const allowed: number[] = code === 'E008001' ? [404, 405, 415] : [catalogStatus]
          assert.ok(allowed.includes(Number(status)), `${where}: example code ${code} belongs to HTTP ${catalogStatus}`)
        }
      }
    }
  })

  test('every attribute operation documents each error status it can answer', () => {
    assert.ok(attributeOperations.length >= 14, 'both prefixes, seven operations each')
    for (const { label, method, operation } of attributeOperations) {
      const documented = Object.keys(operation.responses).map(Number).filter((status) => status >= 400)
      for (const status of expectedErrorStatuses(method)) {
        assert.ok(documented.includes(status), `${label} documents HTTP ${status}`)
      }
    }
    const readiness = operations.find(({ path }) => path === '/readyz')
    assert.ok(readiness?.operation.responses['503'] !== undefined, 'GET /readyz documents 503')
  })

  test('each error response of the attribute operations names the sub_status codes of its HTTP status', () => {
    for (const { label, operation } of attributeOperations) {
      for (const [code, { status }] of Object.entries(ERROR_CATALOG)) {
        const response = operation.responses[String(status)]
        if (response === undefined) continue
        assert.ok(response.description?.includes(code), `${label} ${status}: the description names ${code}`)
      }
    }
  })

  test('the bearer security scheme exists and every attribute operation accepts it', () => {
    const bearer = document.components?.securitySchemes?.bearerAuth
    assert.deepEqual(bearer && { type: bearer.type, scheme: bearer.scheme, bearerFormat: bearer.bearerFormat }, { type: 'http', scheme: 'bearer', bearerFormat: 'JWT' })
    for (const { label, operation } of attributeOperations) {
      assert.ok(operation.security?.some((requirement) => 'bearerAuth' in requirement), `${label} accepts bearerAuth`)
    }
  })

  test('GET and DELETE operations do not require a request body (generated clients send none)', () => {
    const withBody = operations.filter(({ method, operation }) => (method === 'get' || method === 'delete') && operation.requestBody !== undefined)
    assert.ok(withBody.length >= 8, 'the read and delete operations document their (Zato-style) body')
    for (const { label, operation } of withBody) assert.equal(operation.requestBody!.required, false, `${label}: requestBody.required`)
  })

  test('writes still require their request body', () => {
    const writes = operations.filter(({ method }) => method === 'post' || method === 'put' || method === 'patch')
    assert.ok(writes.length >= 6)
    for (const { label, operation } of writes) assert.equal(operation.requestBody?.required, true, `${label}: requestBody.required`)
  })
})
