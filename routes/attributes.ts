import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import type { FastifyRequest } from 'fastify'
import type { Static } from 'typebox'
import { ATTRIBUTE_OPERATIONS, BatchRead, inputSchemas, type AttributeOperation } from '../src/operations/attribute-operations.ts'
import { authorizeCall } from '../src/operations/authorize.ts'
import { IdempotencyHeadersSchema, type GetResponses } from '../src/schemas/attributes.ts'
import type { Owner } from '../src/store/types.ts'
import { batchGetBody } from './attribute-json.ts'
import { hasNoUst, idempotencyRequest, mergedFields, ustRequired, zatoTransport } from './request-input.ts'

// The REST adapter of the attribute operations (src/operations/, D60): per operation one route
// that merges the request's fields, authorizes, runs the operation and wraps its result in
// the envelope. Mounted four times: session and user scope, plain and Zato path.

export interface AttributeRoutesOptions {
  /** Whose attributes: the session's (`/sso/session/attr`) or the user's (`/sso/user/attr`). */
  scope: Owner['scope']
  /** Served under the Zato 3.x path: Zato's transport (any content type, ignored fields, `sub_status: []`). */
  zatoCompat: boolean
}

const security: Array<Record<string, string[]>> = [{ bearerAuth: [] }, {}]
const JSON_CONTENT_TYPE = 'application/json; charset=utf-8'

const attributeRoutes: FastifyPluginAsyncTypebox<AttributeRoutesOptions> = async (fastify, options) => {
  const user = options.scope === 'user'
  const tags = [options.zatoCompat ? 'zato-compat' : user ? 'user-attributes' : 'attributes']
  const capitalized = (name: string) => `${name[0]!.toUpperCase()}${name.slice(1)}`
  // createAttributes, zatoCreateAttributes, createUserAttributes, zatoCreateUserAttributes;
  // attributeNames, userAttributeNames, zatoUserAttributeNames, ...
  const operationId = (name: string) => {
    let scoped = name
    if (user) scoped = name.startsWith('attribute') ? `user${capitalized(name)}` : name.replace('Attributes', 'UserAttributes')
    return options.zatoCompat ? `zato${capitalized(scoped)}` : scoped
  }
  const alias = `${user ? ' of the user' : ''}${options.zatoCompat ? ' (Zato 3.x path)' : ''}`

  if (options.zatoCompat) zatoTransport(fastify)

  // GET and DELETE may come with no body at all: treat that as an empty one, so the body
  // schema (which allows every field to be absent) validates it.
  fastify.addHook('preValidation', (request, _reply, done) => {
    if (request.body === undefined || request.body === null) request.body = {}
    done(hasNoUst(request) ? ustRequired() : undefined)
  })

  async function handle (operation: AttributeOperation, request: FastifyRequest) {
    const call = await authorizeCall(fastify.access, options.scope, operation.audit, mergedFields(request), request.verifiedCaller ?? undefined)
    request.authorized = call.access
    request.audit = call.audit
    const idempotency = operation.idempotent ? () => idempotencyRequest(request, call.fields) : undefined
    return await operation.run({ attributes: fastify.attributes, owner: call.owner, audit: call.audit, idempotency }, call.fields)
  }

  for (const operation of ATTRIBUTE_OPERATIONS) {
    const { body, query } = inputSchemas(operation, options.scope, options.zatoCompat)
    const { rest } = operation
    fastify.route({
      method: rest.method,
      url: rest.path,
      schema: {
        tags,
        operationId: operationId(rest.operationId),
        summary: `${rest.summary}${alias}`,
        ...(rest.description !== undefined ? { description: rest.description } : {}),
        security,
        ...(rest.hasQueryInput ? { querystring: query, body } : { body, querystring: query }),
        ...(operation.idempotent ? { headers: IdempotencyHeadersSchema } : {}),
        response: operation.responses
      },
      handler: async (request, reply) => {
        const result = await handle(operation, request)
        if (result instanceof BatchRead) {
          const text = batchGetBody(request.id, result.specs, result.attributes, options.zatoCompat)
          // A string with a JSON content type goes out as it is, without the schema's serializer;
          // the type provider types send() by the schema, whose JSON this body already is.
          return await reply.type(JSON_CONTENT_TYPE).send(text as unknown as Static<typeof GetResponses[200]>)
        }
        return { cid: request.id, status: 'ok' as const, ...result }
      }
    })
  }
}

export default attributeRoutes
