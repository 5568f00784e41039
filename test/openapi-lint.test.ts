import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, test } from 'node:test'
import { fileURLToPath } from 'node:url'
import { parse } from 'yaml'
import { OPENAPI_PATH } from '../scripts/openapi.ts'
import { ERROR_CATALOG, type ErrorCode } from '../src/errors.ts'

// Lints the committed openapi.yaml as a client author reads it: Redocly's recommended ruleset
// (redocly.yaml) for validity, operation ids, summaries, tags, security, servers and unused
// components; below it, what no ruleset checks: every field described with an example, and
// each error response the envelope with the codes of its status.

interface SchemaObject {
  maxLength?: number
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

interface Parameter { name: string, in: string, description?: string, example?: unknown, examples?: unknown, schema?: SchemaObject }
interface Response { description?: string, content?: Record<string, MediaObject> }

interface Operation {
  operationId?: string
  summary?: string
  tags?: string[]
  security?: Array<Record<string, string[]>>
  parameters?: Array<Parameter | Reference>
  requestBody?: { required?: boolean, content: Record<string, MediaObject> }
  responses: Record<string, Response | Reference>
}

interface Reference { $ref: string }

interface Document {
  openapi: string
  paths: Record<string, Record<string, Operation>>
  components: {
    securitySchemes?: Record<string, { type?: string, scheme?: string, bearerFormat?: string }>
    schemas: Record<string, SchemaObject>
    parameters: Record<string, Parameter>
    responses: Record<string, Response>
  }
}

const document = parse(readFileSync(OPENAPI_PATH, 'utf8')) as Document

/** The object a local `$ref` points to (the document's own components), or the object itself. */
function resolve<T> (node: T | Reference): T {
  if (typeof node !== 'object' || node === null || !('$ref' in node)) return node
  const target = node.$ref.replace(/^#\//, '').split('/').reduce<unknown>((at, key) => (at as Record<string, unknown>)[key], document)
  return resolve(target as T | Reference)
}

/** A schema with every `$ref` at any depth replaced by its target (the document has no cycles). */
function inline (schema: SchemaObject | Reference): SchemaObject {
  const resolved = resolve(schema)
  const copy: Record<string, unknown> = { ...resolved }
  for (const [key, value] of Object.entries(resolved)) {
    if (key === 'properties' || key === 'patternProperties') {
      copy[key] = Object.fromEntries(Object.entries(value as Record<string, SchemaObject>).map(([name, property]) => [name, inline(property)]))
    } else if (key === 'items' || (key === 'additionalProperties' && typeof value === 'object')) {
      copy[key] = inline(value as SchemaObject)
    } else if (key === 'anyOf') {
      copy[key] = (value as SchemaObject[]).map(inline)
    }
  }
  return copy as SchemaObject
}

const operations = Object.entries(document.paths).flatMap(([path, item]) =>
  Object.entries(item).map(([method, operation]) => ({ label: `${method.toUpperCase()} ${path}`, path, method, operation })))
const attributeOperations = operations.filter(({ path }) => path.includes('/session/attr'))

/** Fields that lack a description or an example and are known to: each names where to fix it. */
const KNOWN_GAPS: Record<string, string> = {}

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

const jsonSchemaOf = (media: Record<string, MediaObject> | undefined) => {
  const schema = media?.['application/json']?.schema
  return schema === undefined ? undefined : inline(schema)
}

const REDOCLY = fileURLToPath(new URL('bin/cli.js', new URL(`file://${createRequire(import.meta.url).resolve('@redocly/cli/package.json')}`)))

describe('openapi.yaml (lint)', () => {
  test('Redocly\'s recommended ruleset (redocly.yaml) finds no error and no warning', () => {
    const run = spawnSync(process.execPath, [REDOCLY, 'lint', '--format=json', OPENAPI_PATH], { encoding: 'utf8', cwd: fileURLToPath(new URL('..', import.meta.url)) })
    const report = JSON.parse(run.stdout) as { totals: { errors: number, warnings: number, ignored: number }, problems: Array<{ ruleId: string, message: string, location: Array<{ pointer: string }> }> }
    const problems = report.problems.map((problem) => `${problem.ruleId} at ${problem.location[0]?.pointer ?? '?'}: ${problem.message}`)
    assert.deepEqual(report.totals, { errors: 0, warnings: 0, ignored: 0 }, problems.join('\n'))
    assert.equal(run.status, 0)
  })

  test('Redocly does report a broken document (the check above can fail)', () => {
    const broken = readFileSync(OPENAPI_PATH, 'utf8').replace(/\n {4}get:\n {6}operationId: liveness\n/, '\n    get:\n      operationId: readiness\n')
    const directory = mkdtempSync(join(tmpdir(), 'openapi-lint-'))
    const path = join(directory, 'openapi.yaml')
    writeFileSync(path, broken)
    const run = spawnSync(process.execPath, [REDOCLY, 'lint', '--format=json', path], { encoding: 'utf8' })
    rmSync(directory, { recursive: true })
    const report = JSON.parse(run.stdout) as { totals: { errors: number }, problems: Array<{ ruleId: string }> }
    assert.ok(report.problems.some((problem) => problem.ruleId === 'operation-operationId-unique'), run.stdout)
    assert.notEqual(run.status, 0)
  })

  test('every request and response field has a description and an example', () => {
    const gaps: string[] = []
    for (const { label, operation } of operations) {
      for (const reference of operation.parameters ?? []) {
        const parameter = resolve(reference)
        const field = `${label} ${parameter.in} ${parameter.name}`
        const schema = parameter.schema === undefined ? {} : inline(parameter.schema)
        if ((parameter.description ?? schema.description ?? '').trim() === '') gaps.push(`${field}: no description`)
        if (!('example' in parameter) && parameter.examples === undefined && !hasExample(schema)) gaps.push(`${field}: no example`)
      }
      const body = jsonSchemaOf(operation.requestBody?.content)
      if (body !== undefined) fieldGaps(body, `${label} body `, gaps)
      for (const [status, response] of Object.entries(operation.responses)) {
        const schema = jsonSchemaOf(resolve(response).content)
        if (schema !== undefined) fieldGaps(schema, `${label} ${status} `, gaps)
      }
    }
    const unknown = [...new Set(gaps)].filter((gap) => !(gap in KNOWN_GAPS))
    assert.deepEqual(unknown, [], `fields without a description or an example (annotate them in src/schemas/*.ts, then npm run openapi):\n  ${unknown.join('\n  ')}`)
    const fixed = Object.keys(KNOWN_GAPS).filter((gap) => !gaps.includes(gap))
    assert.deepEqual(fixed, [], 'these gaps are fixed: remove them from KNOWN_GAPS')
  })

  test('every error response is the error envelope, with an example sub_status of its HTTP status', () => {
    let checked = 0
    for (const { label, operation } of operations) {
      for (const [status, reference] of Object.entries(operation.responses)) {
        if (Number(status) < 400) continue
        const where = `${label} ${status}`
        const media = resolve(reference).content?.['application/json']
        const schema = jsonSchemaOf(resolve(reference).content)
        assert.ok(schema !== undefined, `${where} has an application/json schema`)
        assert.deepEqual([...schema.required ?? []].sort(), ['cid', 'status', 'sub_status'], `${where}: cid, status and sub_status are required`)
        assert.deepEqual(schema.properties?.status?.enum ?? [schema.properties?.status?.const], ['error'], `${where}: status is "error"`)
        assert.equal(schema.properties?.sub_status?.type, 'array', `${where}: sub_status is a list`)
        for (const optional of ['message', 'details']) assert.ok(schema.properties?.[optional] !== undefined, `${where} documents ${optional}`)
        const example = (media?.example ?? Object.values(media?.examples ?? {})[0]?.value) as { status?: string, sub_status?: string[] } | undefined
        assert.equal(example?.status, 'error', `${where} has an example envelope`)
        assert.ok((example?.sub_status?.length ?? 0) > 0, `${where}: the example has a sub_status`)
        for (const code of example!.sub_status!) {
          assert.ok(code in ERROR_CATALOG, `${where}: example code ${code} is in the error catalog`)
          const catalogStatus = ERROR_CATALOG[code as ErrorCode].status
          // E008001 (unknown route, method or media type) is answered as 404, 405 or 415.
          const allowed: number[] = code === 'E008001' ? [404, 405, 415] : [catalogStatus]
          assert.ok(allowed.includes(Number(status)), `${where}: example code ${code} belongs to HTTP ${catalogStatus}`)
        }
        checked++
      }
    }
    assert.ok(checked > 40, `${checked} error responses checked`)
  })

  test('each error response names the sub_status codes of its HTTP status', () => {
    for (const { label, operation } of operations) {
      for (const [code, { status }] of Object.entries(ERROR_CATALOG)) {
        const response = operation.responses[String(status)]
        // E008001 is answered by no operation: it is an unknown route, method or media type.
        if (response === undefined || (code === 'E008001' && status === 404)) continue
        assert.ok(resolve(response).description?.includes(code), `${label} ${status}: the description names ${code}`)
      }
    }
  })

  test('error responses are shared components, referenced by each operation', () => {
    for (const { label, operation } of operations) {
      for (const [status, response] of Object.entries(operation.responses)) {
        if (Number(status) >= 400) assert.match((response as Reference).$ref ?? '', /^#\/components\/responses\//, `${label} ${status} is a reference`)
      }
    }
  })

  test('the bearer security scheme exists and every attribute operation accepts it; public operations say security: []', () => {
    const bearer = document.components.securitySchemes?.bearerAuth
    assert.deepEqual(bearer && { type: bearer.type, scheme: bearer.scheme, bearerFormat: bearer.bearerFormat }, { type: 'http', scheme: 'bearer', bearerFormat: 'JWT' })
    for (const { label, operation } of attributeOperations) {
      assert.ok(operation.security?.some((requirement) => 'bearerAuth' in requirement), `${label} accepts bearerAuth`)
    }
    for (const path of ['/healthz', '/readyz', '/sso/backchannel-logout']) {
      const item = document.paths[path]!
      for (const operation of Object.values(item)) assert.deepEqual(operation.security, [], `${path} is public`)
    }
  })

  test('GET operations have no request body (fetch cannot send one); their inputs are query parameters', () => {
    const gets = operations.filter(({ method }) => method === 'get')
    assert.ok(gets.length >= 5)
    for (const { label, operation } of gets) assert.equal(operation.requestBody, undefined, `${label} has no requestBody`)
    for (const { label, operation } of attributeOperations.filter(({ method }) => method === 'get' || method === 'delete')) {
      const currentApp = (operation.parameters ?? []).map((parameter) => resolve(parameter)).find((parameter) => parameter.name === 'current_app') as (Parameter & { required?: boolean }) | undefined
      assert.equal(currentApp?.required, true, `${label}: current_app is a required query parameter`)
    }
  })

  test('writes require their request body, with current_app', () => {
    const writes = operations.filter(({ method }) => method === 'post' || method === 'put' || method === 'patch')
    assert.ok(writes.length >= 3)
    for (const { label, operation } of writes) {
      assert.equal(operation.requestBody?.required, true, `${label}: requestBody.required`)
      if (label.includes('/session/attr')) assert.ok(jsonSchemaOf(operation.requestBody?.content)?.required?.includes('current_app'), `${label}: current_app is required`)
    }
  })

  test('the Zato alias is described once: no /zato path, every alias listed with its canonical path', () => {
    assert.deepEqual(Object.keys(document.paths).filter((path) => path.startsWith('/zato')), [])
    const aliases = (document as unknown as { 'x-aliases': Array<{ path: string, of: string, methods: string[] }> })['x-aliases']
    assert.ok(aliases.length >= 4)
    for (const alias of aliases) {
      assert.equal(alias.path, `/zato${alias.of}`)
      assert.deepEqual(alias.methods, Object.keys(document.paths[alias.of] ?? {}).sort(), `${alias.path}: the same methods as ${alias.of}`)
    }
  })

  test('the document is small: shared schemas, parameters and responses are components', () => {
    const lines = readFileSync(OPENAPI_PATH, 'utf8').split('\n').length
    assert.ok(lines < 3000, `${lines} lines`)
    for (const name of ['AttributeName', 'ErrorEnvelope', 'Attribute']) assert.ok(document.components.schemas[name] !== undefined, name)
  })

  test('names are limited in code points, as the service counts them, to the default SSO_MAX_NAME_LENGTH', () => {
    assert.equal(document.components.schemas.AttributeName?.maxLength, 191)
  })
})
