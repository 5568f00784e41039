import swagger, { type SwaggerTransform, type SwaggerTransformObject } from '@fastify/swagger'
import swaggerUi from '@fastify/swagger-ui'
import fp from 'fastify-plugin'
import { ERROR_STATUSES, type ErrorStatus } from '../src/schemas/common.ts'
import { canonicalJson } from '../src/canonical-json.ts'
import { COMPONENT_SCHEMAS, REQUIRED_INPUTS } from '../src/schemas/document.ts'

export const API_VERSION = '1.0.0'

/** Every route under this prefix is the same operation as the route without it: documented once, in `x-aliases`. */
export const ALIAS_PREFIX = '/zato'
/** Tags of the operations outside the rate-limited API scope (src/app.ts): no rate-limit headers. */
const UNLIMITED_TAGS = new Set(['health'])

type Json = Record<string, unknown>
type Operation = Json & { tags?: string[], responses: Record<string, Json>, parameters?: Json[] }

const SCHEMAS = '#/components/schemas/'

const withoutAnnotations = (schema: Json): Json => {
  const { description: _description, examples: _examples, ...rest } = schema
  return rest
}

/**
 * Replaces every copy of a published schema in the generated document by a `$ref` to it.
 * Nested schemas keep their annotations; a request or response body and a parameter's schema
 * lose theirs to the media or parameter object, so those match without them (if unambiguous).
 */
function componentIndex () {
  const exact = new Map<string, string>()
  const bare = new Map<string, string | null>()
  const published: Json = {}
  for (const [name, { schema, document }] of Object.entries(COMPONENT_SCHEMAS)) {
    const runtime = JSON.parse(JSON.stringify(schema)) as Json
    exact.set(canonicalJson(runtime), name)
    const key = canonicalJson(withoutAnnotations(runtime))
    bare.set(key, bare.has(key) ? null : name)
    published[name] = document ?? runtime
  }
  const ref = (name: string) => ({ $ref: `${SCHEMAS}${name}` })
  function dedupe (node: unknown, top: boolean): unknown {
    if (Array.isArray(node)) return node.map((item) => dedupe(item, false))
    if (node === null || typeof node !== 'object') return node
    const object = node as Json
    const name = exact.get(canonicalJson(object)) ?? (top ? bare.get(canonicalJson(withoutAnnotations(object))) : undefined)
    if (name != null) return ref(name)
    return Object.fromEntries(Object.entries(object).map(([key, value]) => [key, dedupe(value, false)]))
  }
  // A component's own children become references too, never the component itself.
  const schemas = Object.fromEntries(Object.entries(published).map(([name, schema]) =>
    [name, Object.fromEntries(Object.entries(schema as Json).map(([key, value]) => [key, dedupe(value, false)]))]))
  return { schemas, dedupe }
}

const HEADERS: Record<string, Json> = {
  'X-Cid': { description: 'Correlation id of this request, as `cid` in the body and in the logs.', required: true, schema: { type: 'string', pattern: '^[0-9a-f]{24}$' }, example: '6a1f0c2e9b8d4f7a3c5e1b2d' },
  'Cache-Control': { description: 'Always `no-store`: answers are per session and never cached.', required: true, schema: { type: 'string', const: 'no-store' }, example: 'no-store' },
  'X-RateLimit-Limit': { description: 'Requests allowed per window (SSO_RATE_LIMIT_MAX); absent when rate limiting is off.', schema: { type: 'integer', minimum: 1 }, example: 1200 },
  'X-RateLimit-Remaining': { description: 'Requests left in the current window; absent when rate limiting is off.', schema: { type: 'integer', minimum: 0 }, example: 1199 },
  'X-RateLimit-Reset': { description: 'Seconds until the window resets; absent when rate limiting is off.', schema: { type: 'integer', minimum: 0 }, example: 42 },
  'Retry-After': { description: 'Seconds to wait before trying again.', required: true, schema: { type: 'integer', minimum: 0 }, example: 1 },
  'WWW-Authenticate': { description: 'The scheme to authenticate with: `Bearer`, with the error when a token was given.', schema: { type: 'string' }, example: 'Bearer error="invalid_token"' }
}

const headerRefs = (names: string[]) => Object.fromEntries(names.map((name) => [name, { $ref: `#/components/headers/${name}` }]))
const RATE_LIMIT_HEADERS = ['X-RateLimit-Limit', 'X-RateLimit-Remaining', 'X-RateLimit-Reset']
const STATUS_HEADERS: Partial<Record<ErrorStatus, string[]>> = { 401: ['WWW-Authenticate'], 429: ['Retry-After'], 503: ['Retry-After'] }

function errorResponseComponents (statuses: ErrorStatus[]): Json {
  return Object.fromEntries(statuses.map((status) => {
    const { name, description, example } = ERROR_STATUSES[status]
    return [name, {
      description,
      headers: headerRefs(['X-Cid', 'Cache-Control', ...(STATUS_HEADERS[status] ?? []), ...RATE_LIMIT_HEADERS]),
      content: { 'application/json': { schema: { $ref: `${SCHEMAS}ErrorEnvelope` }, example: { cid: '6a1f0c2e9b8d4f7a3c5e1b2d', status: 'error', sub_status: [example] } } }
    }]
  }))
}

/** Parameters that several operations share, identical, become `components.parameters`. */
function shareParameters (operations: Operation[]): Json {
  const byKey = new Map<string, { parameter: Json, count: number }>()
  for (const operation of operations) {
    for (const parameter of operation.parameters ?? []) {
      const key = canonicalJson(parameter)
      const entry = byKey.get(key) ?? { parameter, count: 0 }
      entry.count++
      byKey.set(key, entry)
    }
  }
  const names = new Map<string, string>()
  const components: Json = {}
  for (const [key, { parameter, count }] of byKey) {
    if (count < 2) continue
    let name = String(parameter.name)
    for (let n = 2; name in components; n++) name = `${String(parameter.name)}${n}`
    components[name] = parameter
    names.set(key, name)
  }
  for (const operation of operations) {
    if (operation.parameters === undefined) continue
    operation.parameters = operation.parameters.map((parameter) => {
      const name = names.get(canonicalJson(parameter))
      return name === undefined ? parameter : { $ref: `#/components/parameters/${name}` }
    })
  }
  return components
}

const METHODS = ['get', 'put', 'post', 'delete', 'patch'] as const

/**
 * Alias routes are hidden and listed once; a read that takes its inputs from the query string
 * or (as Zato clients send them) a body is documented with the query string only, since
 * fetch cannot send a body with GET, and its required inputs are required there.
 */
export function documentedRoutes (aliases: Map<string, Set<string>>): SwaggerTransform {
  return ({ schema, url, route }) => {
    if (url.startsWith(`${ALIAS_PREFIX}/`)) {
      const canonicalUrl = url.slice(ALIAS_PREFIX.length)
      const methods = aliases.get(canonicalUrl) ?? new Set<string>()
      for (const method of [route.method].flat()) methods.add(String(method).toLowerCase())
      aliases.set(canonicalUrl, methods)
      return { schema: { ...schema, hide: true }, url }
    }
    const { body, querystring, ...rest } = schema as Json & { body?: Json, querystring?: Json & { properties?: Json, required?: string[] } }
    if (body === undefined || querystring === undefined || (route.method !== 'GET' && route.method !== 'DELETE')) return { schema, url }
    const required = REQUIRED_INPUTS.filter((field) => Object.hasOwn(querystring.properties ?? {}, field))
    return {
      schema: {
        ...rest,
        querystring: { ...querystring, required: [...new Set([...(querystring.required ?? []), ...required])] },
        // Without a body the token can only come as a bearer token.
        security: [{ bearerAuth: [] }]
      },
      url
    }
  }
}

export function documentObject (aliases: Map<string, Set<string>>): SwaggerTransformObject {
  return (document) => {
    if (!('openapiObject' in document)) return document.swaggerObject
    const openapi = document.openapiObject as unknown as Json & { paths: Record<string, Record<string, Operation>>, components: Json }
    const { schemas, dedupe } = componentIndex()
    // A body that is a published schema: its example is the component's.
    const referToComponent = (media: Json) => {
      media.schema = dedupe(media.schema, true)
      if (typeof media.schema === 'object' && media.schema !== null && '$ref' in media.schema) delete media.example
    }
    const operations: Operation[] = []
    const errorStatuses = new Set<ErrorStatus>()
    for (const item of Object.values(openapi.paths)) {
      for (const method of METHODS) {
        const operation = item[method]
        if (operation === undefined) continue
        operations.push(operation)
        const limited = !(operation.tags ?? []).some((tag) => UNLIMITED_TAGS.has(tag))
        for (const [status, response] of Object.entries(operation.responses)) {
          if (Number(status) >= 400) {
            errorStatuses.add(Number(status) as ErrorStatus)
            operation.responses[status] = { $ref: `#/components/responses/${ERROR_STATUSES[Number(status) as ErrorStatus].name}` }
            continue
          }
          response.headers = headerRefs(['X-Cid', 'Cache-Control', ...(limited ? RATE_LIMIT_HEADERS : [])])
          for (const media of Object.values((response.content ?? {}) as Record<string, Json>)) referToComponent(media)
        }
        const requestBody = operation.requestBody as { content?: Record<string, Json> } | undefined
        for (const media of Object.values(requestBody?.content ?? {})) referToComponent(media)
        for (const parameter of operation.parameters ?? []) parameter.schema = dedupe(parameter.schema, true)
      }
    }
    const parameters = shareParameters(operations)
    const statuses = [...errorStatuses].sort((a, b) => a - b)
    openapi.components = {
      ...openapi.components,
      schemas,
      parameters,
      responses: errorResponseComponents(statuses),
      headers: HEADERS
    }
    openapi['x-aliases'] = [...aliases].sort(([a], [b]) => a.localeCompare(b)).map(([path, methods]) => ({
      path: `${ALIAS_PREFIX}${path}`,
      of: path,
      methods: [...methods].sort()
    }))
    aliases.clear()
    return openapi
  }
}

export default fp(async (fastify) => {
  const aliases = new Map<string, Set<string>>()
  await fastify.register(swagger, {
    openapi: {
      openapi: '3.1.0',
      info: {
        title: 'sso-attrs',
        version: API_VERSION,
        license: { name: 'MIT', identifier: 'MIT' },
        description: 'Attributes of single-sign-on sessions: set, read, list and delete small named values bound to a user\'s SSO session, optionally encrypted and with a time to live. Every response is a `{cid, status, sub_status}` envelope.\n\n' +
          '**Zato 3.x paths.** Every operation listed in `x-aliases` is also served under `/zato` (for example `/zato/sso/session/attr`), with the same inputs and answers, plus what Zato clients send: GET and DELETE take their inputs from a JSON body as well as from the query string (a field given in both is a 400), `current_ust` may come in the body, and JSON may be sent as `application/x-www-form-urlencoded` (`curl -d`). The canonical paths tolerate a JSON body on GET and DELETE too, but document only the query string.\n\n' +
          '**Limits.** This document is generated from the default configuration: attribute names of at most 191 code points (`SSO_MAX_NAME_LENGTH`), values of at most 64 KiB serialized (`SSO_MAX_VALUE_BYTES`), 100 items a batch (`SSO_MAX_BATCH`). A deployment configured otherwise enforces its own limits (413 E011001, or 400 E008002 for a name).'
      },
      servers: [
        { url: 'http://127.0.0.1:17010', description: 'Development: `npm run dev` on the default HOST and PORT' },
        { url: 'https://sso-attrs.example.org', description: 'Production: replace with your deployment\'s URL' }
      ],
      tags: [
        { name: 'attributes', description: 'Session attributes' },
        { name: 'user-attributes', description: 'User attributes: seen by every session of the user, outliving them; DELETE /sso/user erases them' },
        { name: 'sessions', description: 'Ending sessions: OpenID Connect Back-Channel Logout and DELETE /sso/session' },
        { name: 'health', description: 'Liveness and readiness' }
      ],
      components: {
        securitySchemes: {
          bearerAuth: { type: 'http', scheme: 'bearer', bearerFormat: 'JWT', description: 'The caller\'s UST (current_ust).' }
        }
      }
    },
    hideUntagged: true,
    convertConstToEnum: false,
    transform: documentedRoutes(aliases),
    transformObject: documentObject(aliases)
  })
  await fastify.register(swaggerUi, {
    routePrefix: '/docs',
    uiConfig: { tryItOutEnabled: false },
    // "Try it out" calls the service that serves the page, whatever the document's servers say.
    transformSpecification: (specification, request) => ({ ...specification, servers: [{ url: `${request.protocol}://${request.host}`, description: 'This service' }] }),
    // The UI's own policy in place of the API's `default-src 'none'`; without
    // upgrade-insecure-requests, which would break the UI served over plain http on loopback.
    staticCSP: true,
    transformStaticCSP: (header) => header.replace(/\s*upgrade-insecure-requests;?/, '')
  })
  fastify.get('/openapi.json', { schema: { hide: true } }, async () => fastify.swagger())
}, { name: 'swagger' })
