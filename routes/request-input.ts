import type { FastifyBodyParser, FastifyInstance, FastifyRequest, preValidationHookHandler } from 'fastify'
import type { SessionAccess } from '../src/access.ts'
import type { IdempotencyRequest } from '../src/attribute-service.ts'
import { accessEntry, type AuditEntry, type AuditOperation } from '../src/audit.ts'
import { bearerToken } from '../src/bearer-token.ts'
import { canonicalJson } from '../src/canonical-json.ts'
import { AppError, invalidInput } from '../src/errors.ts'
import { duplicateKeyPointer } from '../src/json-duplicate-keys.ts'
import { accessRequest, ustRequired } from '../src/operations/authorize.ts'
import { byName, formOf, nameSpecs, type Fields } from '../src/operations/fields.ts'

// Turns an HTTP request into the fields of an attribute call: body and query string are
// one namespace (a field given in both is an error), `current_ust` may come as a bearer token.

export type { Fields }
export { accessRequest, byName, formOf, nameSpecs, ustRequired }

const UTF8 = new TextDecoder('utf-8', { fatal: true })

/**
 * Fastify's JSON parser behind a strict UTF-8 decoding: invalid bytes are refused rather than
 * turned into U+FFFD, which would store an attribute under a name the client never sent. A key
 * repeated in one object is refused too: JSON.parse would keep the last one silently.
 */
export function strictJsonParser (fastify: FastifyInstance): FastifyBodyParser<Buffer> {
  const parseJson = fastify.getDefaultJsonParser('error', 'error')
  return (request, body, done) => {
    let text: string
    try {
      text = UTF8.decode(body)
    } catch {
      done(invalidInput('', 'Body is not valid UTF-8'), undefined)
      return
    }
    parseJson(request, text, (error, parsed) => {
      if (error !== null) {
        done(error, undefined)
        return
      }
      const duplicate = duplicateKeyPointer(text)
      if (duplicate === null) done(null, parsed)
      else done(invalidInput(duplicate, 'Duplicate key: give each key once'), undefined)
    })
  }
}

/** Every input field of Zato 3.x's attribute services (one SimpleIO for every verb, `svc/attr.py`). */
export const ZATO_INPUT_FIELDS = [
  'current_app', 'current_ust', 'target_ust', 'ust', 'user_id', 'name', 'value', 'data', 'decrypt', 'serialize_dt', 'expiration', 'encrypt'
] as const
/** Fields of a `data` item that Zato read besides name, value, expiration and encrypt. */
export const ZATO_ITEM_FIELDS = ['user_id'] as const
const ZATO_BOOLEANS = new Map([['true', true], ['false', false]])

interface ObjectSchema {
  properties?: Record<string, { type?: unknown, items?: ObjectSchema }>
}

/**
 * What a Zato-prefixed route does to a parsed body before validation, as Zato's SimpleIO did:
 * the Zato fields the route's body schema does not declare are dropped (Zato accepted and
 * ignored them), and `"true"`/`"false"` become booleans where the schema wants a boolean.
 * Null when there is nothing to do. Computed once per route from its schema, so a route that
 * declares a field (user attributes declare `user_id`) keeps it.
 */
export function zatoBodyLeniency (bodySchema: ObjectSchema | undefined): ((body: Fields) => void) | null {
  const properties = bodySchema?.properties
  if (properties === undefined) return null
  const ignored = ZATO_INPUT_FIELDS.filter((field) => !Object.hasOwn(properties, field))
  const booleans = Object.keys(properties).filter((field) => properties[field]!.type === 'boolean')
  const itemProperties = properties.data?.items?.properties
  const ignoredInItems = itemProperties === undefined ? [] : ZATO_ITEM_FIELDS.filter((field) => !Object.hasOwn(itemProperties, field))
  return (body) => {
    for (const field of ignored) delete body[field]
    for (const field of booleans) {
      const value = body[field]
      if (typeof value === 'string') {
        const boolean = ZATO_BOOLEANS.get(value.toLowerCase())
        if (boolean !== undefined) body[field] = boolean
      }
    }
    if (ignoredInItems.length > 0 && Array.isArray(body.data)) {
      for (const item of body.data as unknown[]) {
        if (typeof item === 'object' && item !== null && !Array.isArray(item)) {
          for (const field of ignoredInItems) delete (item as Fields)[field]
        }
      }
    }
  }
}

/**
 * Zato 3.x's transport, for the routes of a `/zato/...` scope: a body is JSON whatever its
 * content type says (none, text/plain, a form: what Zato's RESTClient, `requests` with a string
 * body, `curl -d` and `fetch` with a string send), parsed as strictly as application/json; each
 * route then applies zatoBodyLeniency; success envelopes carry `sub_status: []` as Zato's did.
 * No cookie or other ambient credential is ever read, so a browser's cross-site "simple"
 * request gains nothing from this (docs/SECURITY.md).
 */
export function zatoTransport (fastify: FastifyInstance): void {
  fastify.addContentTypeParser('*', { parseAs: 'buffer' }, strictJsonParser(fastify))
  fastify.addHook('onRoute', (route) => {
    const leniency = zatoBodyLeniency(route.schema?.body as ObjectSchema | undefined)
    if (leniency === null) return
    const hook: preValidationHookHandler = (request, _reply, done) => {
      if (typeof request.body === 'object' && request.body !== null && !Array.isArray(request.body)) leniency(request.body as Fields)
      done()
    }
    const existing = route.preValidation
    route.preValidation = existing === undefined ? [hook] : [...(Array.isArray(existing) ? existing : [existing]), hook]
  })
  fastify.addHook('preSerialization', (_request, _reply, payload, done) => {
    if (typeof payload === 'object' && payload !== null && (payload as Fields).status === 'ok') (payload as Fields).sub_status = []
    done(null, payload)
  })
}

export function mergedFields (request: FastifyRequest): Fields {
  const body = (request.body ?? {}) as Fields
  const query = (request.query ?? {}) as Fields
  const fields: Fields = { ...body }
  for (const [key, value] of Object.entries(query)) {
    if (Object.hasOwn(body, key)) throw invalidInput(`/${key}`, 'Given in both the query string and the body')
    fields[key] = value
  }
  const authorization = request.headers.authorization
  if (authorization !== undefined) {
    // Node keeps the first of repeated Authorization headers; a proxy may have judged another.
    if (headerCount(request, 'authorization') > 1) throw new AppError('E007001', 'Give one Authorization header')
    const token = bearerToken(authorization)
    if (token === null) throw new AppError('E007001', 'Authorization must be "Bearer <ust>"')
    if (fields.current_ust !== undefined && fields.current_ust !== token) {
      throw invalidInput('/current_ust', 'Differs from the bearer token; give the UST once')
    }
    fields.current_ust = token
  }
  return fields
}

/** How many times a header (lower case) came: Node keeps only the first of some repeated ones. */
function headerCount (request: FastifyRequest, name: string): number {
  const raw = request.raw.rawHeaders
  let count = 0
  for (let index = 0; index < raw.length; index += 2) {
    if (raw[index]!.length === name.length && raw[index]!.toLowerCase() === name) count++
  }
  return count
}

/** The request's fields, who calls and on which session; starts the request's audit entry. */
export async function authorize (fastify: FastifyInstance, request: FastifyRequest, operation: AuditOperation): Promise<{ fields: Fields, access: SessionAccess, audit: AuditEntry }> {
  const fields = mergedFields(request)
  const input = accessRequest(fields)
  const access = await fastify.access.authorize(input, request.verifiedCaller ?? undefined)
  request.authorized = access
  const audit = accessEntry(operation, input.currentApp, access)
  request.audit = audit
  return { fields, access, audit }
}

/**
 * A request that carries no UST at all is refused before its input is validated: 401 comes
 * before anything an unauthenticated caller could learn from a 400 about the other fields.
 */
export function hasNoUst (request: FastifyRequest): boolean {
  if (request.headers.authorization !== undefined) return false
  // A token in the query string is a UST too, refused later with its own 400.
  for (const fields of [request.body, request.query] as Array<Fields | undefined>) {
    if (fields?.current_ust !== undefined || fields?.ust !== undefined) return false
  }
  return true
}

// An Idempotency-Key (IETF httpapi draft): a Structured Fields string, `"..."`, of printable
// ASCII; the bare form many clients send (Stripe's) is taken too. At most 255 characters.
const QUOTED_KEY = /^"([\x20\x21\x23-\x5b\x5d-\x7e]{1,255})"$/
const BARE_KEY = /^[\x21\x23-\x7e]{1,255}$/
// Credentials are not part of what a request asks: a retry may carry a refreshed token.
const NOT_FINGERPRINTED = new Set(['current_ust', 'ust'])

/**
 * The Idempotency-Key of a write or delete and the canonical text of what the request asks
 * (method, route, fields without credentials); undefined without the header. A malformed or
 * repeated header is a 400.
 */
export function idempotencyRequest (request: FastifyRequest, fields: Fields): IdempotencyRequest | undefined {
  const header = request.headers['idempotency-key']
  if (header === undefined) return undefined
  if (Array.isArray(header) || headerCount(request, 'idempotency-key') > 1) throw invalidInput('', 'Give one Idempotency-Key header')
  const key = QUOTED_KEY.exec(header)?.[1] ?? (BARE_KEY.test(header) ? header : undefined)
  if (key === undefined) throw invalidInput('', 'Idempotency-Key must be a quoted string of 1 to 255 printable ASCII characters, such as "8e03978e-40d5-43e8"')
  const asked = Object.fromEntries(Object.entries(fields).filter(([name]) => !NOT_FINGERPRINTED.has(name)))
  return { key, request: `${request.method} ${request.routeOptions.url ?? ''}\n${canonicalJson(asked)}` }
}
