import { readFileSync } from 'node:fs'
import { Ajv2020, type ValidateFunction } from 'ajv/dist/2020.js'
import formats from 'ajv-formats'
import { parse } from 'yaml'
import { API_SECURITY_HEADERS } from '../src/app.ts'
import { securityHeaders } from '../plugins/security-headers.ts'
import { OPENAPI_PATH } from '../scripts/openapi.ts'

// openapi.yaml read as a client reads it, and a judge of answers against it: status, body
// (ajv, JSON Schema 2020-12 as OpenAPI 3.1 says, no field beyond those documented) and
// headers (each documented one valid, required ones present, no undocumented one).
// Used by test/openapi-statuses.test.ts and test/openapi-conformance.test.ts.

export type Json = Record<string, unknown>
export interface Schema extends Json { $ref?: string }
export interface Parameter { name: string, in: string, required?: boolean, schema: Schema }
export interface Response { description: string, headers?: Record<string, Json>, content?: Record<string, { schema: Schema }> }
export interface Operation {
  operationId: string
  parameters?: Array<Parameter | { $ref: string }>
  requestBody?: { required?: boolean, content: Record<string, { schema: Schema }> }
  responses: Record<string, Response | { $ref: string }>
  security?: Array<Record<string, string[]>>
}
export interface Document { paths: Record<string, Record<string, Operation>>, components: Json & { schemas: Record<string, Schema> } }

export const document = parse(readFileSync(OPENAPI_PATH, 'utf8')) as Document

export function resolve<T> (node: T | { $ref: string }): T {
  if (typeof node !== 'object' || node === null || !('$ref' in node) || typeof node.$ref !== 'string') return node as T
  const target = node.$ref.replace(/^#\//, '').split('/').reduce<unknown>((at, key) => (at as Json)[key], document)
  return resolve(target as T | { $ref: string })
}

export interface DocumentedOperation { method: string, path: string, operation: Operation, parameters: Parameter[] }

export const operations: DocumentedOperation[] = Object.entries(document.paths).flatMap(([path, item]) =>
  Object.entries(item).map(([method, operation]) => ({
    method: method.toUpperCase(),
    path,
    operation,
    parameters: (operation.parameters ?? []).map((parameter) => resolve<Parameter>(parameter))
  })))

export function operationById (id: string): DocumentedOperation {
  const found = operations.find(({ operation }) => operation.operationId === id)
  if (found === undefined) throw new Error(`no operation ${id} in openapi.yaml`)
  return found
}

export const documentedStatuses = (operation: Operation): number[] => Object.keys(operation.responses).map(Number).sort((a, b) => a - b)

/** Every object schema with properties and no word on other fields refuses them: an undocumented field is a failure. */
function closed (node: unknown): unknown {
  if (Array.isArray(node)) return node.map(closed)
  if (node === null || typeof node !== 'object') return node
  const copy = Object.fromEntries(Object.entries(node).map(([key, value]) => [key, key === 'properties'
    ? Object.fromEntries(Object.entries(value as Json).map(([name, property]) => [name, closed(property)]))
    : closed(value)]))
  if ('properties' in copy && !('additionalProperties' in copy)) copy.additionalProperties = false
  return copy
}

const ajv = new Ajv2020({ strict: false, allErrors: true })
// ajv-formats is CommonJS: its default export is the plugin function under .default.
const addFormats = (formats as unknown as { default: (ajv: Ajv2020) => void }).default
addFormats(ajv)
ajv.addSchema({ $id: 'openapi.yaml', components: closed(document.components) })
const validators = new Map<string, ValidateFunction>()

function validatorFor (schema: Schema): ValidateFunction {
  const key = JSON.stringify(schema)
  let validate = validators.get(key)
  if (validate === undefined) {
    validate = ajv.compile(JSON.parse(JSON.stringify(closed(schema)).replaceAll('"#/components/', '"openapi.yaml#/components/')) as Json)
    validators.set(key, validate)
  }
  return validate
}

/** Headers any HTTP answer may carry, and the fixed security headers of plugins/security-headers.ts on every one. */
const TRANSPORT_HEADERS = new Set(['content-type', 'content-length', 'date', 'connection', 'keep-alive', 'transfer-encoding',
  ...Object.keys(securityHeaders(API_SECURITY_HEADERS))])

export interface Answer { statusCode: number, headers: Record<string, unknown>, body: string }

/** What is wrong with this answer to this operation according to the document; empty when nothing. */
export function conformanceProblems (operation: Operation, answer: Answer): string[] {
  const documented = operation.responses[String(answer.statusCode)]
  if (documented === undefined) return [`status ${answer.statusCode} is not documented (${answer.body.slice(0, 200)})`]
  const response = resolve<Response>(documented)
  const problems: string[] = []
  const schema = response.content?.['application/json']?.schema
  if (schema !== undefined) {
    let body: unknown
    try {
      body = JSON.parse(answer.body)
    } catch {
      return [`${answer.statusCode}: the body is not JSON: ${answer.body.slice(0, 200)}`]
    }
    if (!String(answer.headers['content-type']).startsWith('application/json')) problems.push(`${answer.statusCode}: content-type ${String(answer.headers['content-type'])}`)
    const validate = validatorFor(schema)
    if (!validate(body)) problems.push(`${answer.statusCode} body ${answer.body.slice(0, 300)}: ${ajv.errorsText(validate.errors)}`)
  }
  const headers = Object.fromEntries(Object.entries(response.headers ?? {}).map(([name, header]) => [name.toLowerCase(), resolve<{ required?: boolean, schema: Schema }>(header as { $ref: string })]))
  for (const [name, header] of Object.entries(headers)) {
    const value = answer.headers[name]
    if (value === undefined) {
      if (header.required === true) problems.push(`${answer.statusCode}: header ${name} is missing`)
      continue
    }
    const text = String(value)
    const typed = header.schema.type === 'integer' && /^\d+$/.test(text) ? Number(text) : text
    if (!validatorFor(header.schema)(typed)) problems.push(`${answer.statusCode}: header ${name}: ${text} does not match ${JSON.stringify(header.schema)}`)
  }
  for (const name of Object.keys(answer.headers)) {
    if (!(name in headers) && !TRANSPORT_HEADERS.has(name)) problems.push(`${answer.statusCode}: header ${name} is not documented`)
  }
  return problems
}
