import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import type { FastifyRequest } from 'fastify'
import type { Static } from 'typebox'
import type { WriteSpec } from '../src/attribute-service.ts'
import { accessEntry, type AuditOperation } from '../src/audit.ts'
import { invalidInput } from '../src/errors.ts'
import {
  CreateBodySchema, CreateResponses, DeleteBodySchema, DeleteQuerySchema, DeleteResponses, ExistsBodySchema, ExistsQuerySchema,
  ExistsResponses, GetBodySchema, GetQuerySchema, GetResponses, NamesBodySchema, NamesQuerySchema, NamesResponses,
  IdempotencyHeadersSchema, NoQuerySchema, SetBodySchema, SetResponses, UpdateBodySchema, UpdateResponses, userScoped
} from '../src/schemas/attributes.ts'
import type { Owner, WriteMode } from '../src/store/types.ts'
import { batchGetBody } from './attribute-json.ts'
import { accessRequest, authorize, byName, formOf, hasNoUst, idempotencyRequest, mergedFields, nameSpecs, ustRequired, zatoTransport, type Fields } from './request-input.ts'

export interface AttributeRoutesOptions {
  /** Whose attributes: the session's (`/sso/session/attr`) or the user's (`/sso/user/attr`). */
  scope: Owner['scope']
  /** Served under the Zato 3.x path: Zato's transport (any content type, ignored fields, `sub_status: []`). */
  zatoCompat: boolean
}

const SESSION_SCHEMAS = {
  create: CreateBodySchema,
  update: UpdateBodySchema,
  set: SetBodySchema,
  getBody: GetBodySchema,
  getQuery: GetQuerySchema,
  deleteBody: DeleteBodySchema,
  deleteQuery: DeleteQuerySchema,
  existsBody: ExistsBodySchema,
  existsQuery: ExistsQuerySchema,
  namesBody: NamesBodySchema,
  namesQuery: NamesQuerySchema
}

function userSchemas (zato: boolean): typeof SESSION_SCHEMAS {
  const body = { zato, body: true }
  const query = { zato, body: false }
  // The shapes differ from the session ones only in the target fields; the handlers read the
  // merged fields, not the typed body, so the session types stand for both.
  return {
    create: userScoped(CreateBodySchema, body),
    update: userScoped(UpdateBodySchema, body),
    set: userScoped(SetBodySchema, body),
    getBody: userScoped(GetBodySchema, body),
    getQuery: userScoped(GetQuerySchema, query),
    deleteBody: userScoped(DeleteBodySchema, body),
    deleteQuery: userScoped(DeleteQuerySchema, query),
    existsBody: userScoped(ExistsBodySchema, body),
    existsQuery: userScoped(ExistsQuerySchema, query),
    namesBody: userScoped(NamesBodySchema, body),
    namesQuery: userScoped(NamesQuerySchema, query)
  } as unknown as typeof SESSION_SCHEMAS
}

/**
 * The fields of a user-attribute call, with Zato's names taken in: `ust` (3.2; 3.0 sent
 * `current_ust`) for the caller's UST and `user_id` for `target_user`. A field given under
 * both names must agree.
 */
export function userFields (fields: Fields): Fields {
  const aliases = [['ust', 'current_ust'], ['user_id', 'target_user']] as const
  for (const [alias, name] of aliases) {
    if (fields[alias] === undefined) continue
    if (fields[name] !== undefined && fields[name] !== fields[alias]) throw invalidInput(`/${alias}`, `Differs from ${name}; give it once`)
    fields[name] = fields[alias]
    delete fields[alias]
  }
  return fields
}

const security: Array<Record<string, string[]>> = [{ bearerAuth: [] }, {}]
const JSON_CONTENT_TYPE = 'application/json; charset=utf-8'

function writeSpecs (fields: Fields): { batch: boolean, specs: WriteSpec[] } {
  if (formOf(fields) === 'single') {
    return {
      batch: false,
      specs: [{
        path: '',
        name: fields.name as string,
        hasValue: Object.hasOwn(fields, 'value'),
        value: fields.value,
        encrypt: fields.encrypt as boolean | undefined,
        expiration: fields.expiration as number | null | undefined,
        ifVersion: fields.if_version as number | undefined
      }]
    }
  }
  for (const key of ['value', 'if_version']) {
    if (Object.hasOwn(fields, key)) throw invalidInput(`/${key}`, `${key} belongs in each data item in the batch form`)
  }
  const items = fields.data as Fields[]
  return {
    batch: true,
    specs: items.map((item, index) => ({
      path: `/data/${index}`,
      name: item.name as string,
      hasValue: Object.hasOwn(item, 'value'),
      value: item.value,
      encrypt: (item.encrypt ?? fields.encrypt) as boolean | undefined,
      expiration: (Object.hasOwn(item, 'expiration') ? item.expiration : fields.expiration) as number | null | undefined,
      ifVersion: item.if_version as number | undefined
    }))
  }
}

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
  const schemas = user ? userSchemas(options.zatoCompat) : SESSION_SCHEMAS

  if (options.zatoCompat) zatoTransport(fastify)

  // GET and DELETE may come with no body at all: treat that as an empty one, so the body
  // schema (which allows every field to be absent) validates it.
  fastify.addHook('preValidation', (request, _reply, done) => {
    if (request.body === undefined || request.body === null) request.body = {}
    done(hasNoUst(request) ? ustRequired() : undefined)
  })

  async function authorized (request: FastifyRequest, operation: AuditOperation) {
    if (!user) {
      const { fields, access, audit } = await authorize(fastify, request, operation)
      return { fields, owner: access.owner, audit }
    }
    const fields = userFields(mergedFields(request))
    const input = accessRequest(fields)
    const access = await fastify.access.authorizeUser({ ...input, targetUser: fields.target_user as string | undefined }, request.verifiedCaller ?? undefined)
    request.authorized = access
    const audit = accessEntry(operation, input.currentApp, access)
    request.audit = audit
    return { fields, owner: access.owner, audit }
  }

  async function write (request: FastifyRequest, mode: WriteMode) {
    const { fields, owner, audit } = await authorized(request, mode)
    const { batch, specs } = writeSpecs(fields)
    audit.names = specs.map((spec) => spec.name)
    if (batch) fastify.attributes.checkBatch('/data', specs.length)
    const results = await fastify.attributes.write(owner, mode, specs, idempotencyRequest(request, fields))
    if (batch) return { cid: request.id, status: 'ok' as const, result: byName(specs, results) }
    return { cid: request.id, status: 'ok' as const, ...results[0]! }
  }

  fastify.post('/', {
    schema: {
      tags,
      operationId: operationId('createAttributes'),
      summary: `Create attributes${alias}`,
      description: 'Creates one attribute (name, value) or a batch (data). Fails with 409 E009001 if any name exists; a batch is all or nothing.',
      security,
      body: schemas.create,
      querystring: NoQuerySchema,
      headers: IdempotencyHeadersSchema,
      response: CreateResponses
    }
  }, async (request) => await write(request, 'create'))

  fastify.patch('/', {
    schema: {
      tags,
      operationId: operationId('updateAttributes'),
      summary: `Update attributes${alias}`,
      description: 'Updates existing attributes; 404 E009002 if any is missing. Omitted expiration or encrypt keep the stored ones; value may be omitted when only they change.',
      security,
      body: schemas.update,
      querystring: NoQuerySchema,
      headers: IdempotencyHeadersSchema,
      response: UpdateResponses
    }
  }, async (request) => await write(request, 'update'))

  fastify.put('/', {
    schema: {
      tags,
      operationId: operationId('setAttributes'),
      summary: `Set (upsert) attributes${alias}`,
      description: 'Creates or updates attributes. On an existing attribute, omitted expiration or encrypt keep the stored ones.',
      security,
      body: schemas.set,
      querystring: NoQuerySchema,
      headers: IdempotencyHeadersSchema,
      response: SetResponses
    }
  }, async (request) => await write(request, 'set'))

  fastify.get('/', {
    schema: {
      tags,
      operationId: operationId('getAttributes'),
      summary: `Get attributes${alias}`,
      description: 'Single form (name): the attribute\'s fields with `found`. Batch form (data): `result` keyed by name. Inputs may come in the query string or, as Zato clients send them, in a JSON body.',
      security,
      querystring: schemas.getQuery,
      body: schemas.getBody,
      response: GetResponses
    }
  }, async (request, reply) => {
    const { fields, owner, audit } = await authorized(request, 'get')
    const { batch, specs } = nameSpecs(fields)
    audit.names = specs.map((spec) => spec.name)
    const decrypt = fields.decrypt !== false
    if (batch) {
      fastify.attributes.checkBatch('/data', specs.length)
      const body = batchGetBody(request.id, specs, await fastify.attributes.read(owner, specs, decrypt), options.zatoCompat)
      // A string with a JSON content type goes out as it is, without the schema's serializer;
      // the type provider types send() by the schema, whose JSON this body already is.
      return await reply.type(JSON_CONTENT_TYPE).send(body as unknown as Static<typeof GetResponses[200]>)
    }
    const views = await fastify.attributes.get(owner, specs, decrypt)
    return { cid: request.id, status: 'ok' as const, ...views[0]! }
  })

  fastify.delete('/', {
    schema: {
      tags,
      operationId: operationId('deleteAttributes'),
      summary: `Delete attributes${alias}`,
      description: 'Deletes one attribute (name) or several (data); a missing name is not an error. if_version (single form) makes it conditional.',
      security,
      querystring: schemas.deleteQuery,
      body: schemas.deleteBody,
      headers: IdempotencyHeadersSchema,
      response: DeleteResponses
    }
  }, async (request) => {
    const { fields, owner, audit } = await authorized(request, 'delete')
    const { batch, specs } = nameSpecs(fields)
    audit.names = specs.map((spec) => spec.name)
    if (batch && fields.if_version !== undefined) throw invalidInput('/if_version', 'if_version applies to the single form only')
    if (batch) fastify.attributes.checkBatch('/data', specs.length)
    const deleted = await fastify.attributes.delete(owner, specs, fields.if_version as number | undefined, idempotencyRequest(request, fields))
    if (batch) return { cid: request.id, status: 'ok' as const, result: byName(specs, deleted) }
    return { cid: request.id, status: 'ok' as const, deleted: deleted[0]! }
  })

  fastify.get('/exists', {
    schema: {
      tags,
      operationId: operationId('attributesExist'),
      summary: `Check whether attributes exist${alias}`,
      security,
      querystring: schemas.existsQuery,
      body: schemas.existsBody,
      response: ExistsResponses
    }
  }, async (request) => {
    const { fields, owner, audit } = await authorized(request, 'exists')
    const { batch, specs } = nameSpecs(fields)
    audit.names = specs.map((spec) => spec.name)
    if (batch) fastify.attributes.checkBatch('/data', specs.length)
    const exists = await fastify.attributes.exists(owner, specs)
    return { cid: request.id, status: 'ok' as const, result: batch ? byName(specs, exists) : exists[0]! }
  })

  fastify.get('/names', {
    schema: {
      tags,
      operationId: operationId('attributeNames'),
      summary: `List attribute names${alias}`,
      security,
      querystring: schemas.namesQuery,
      body: schemas.namesBody,
      response: NamesResponses
    }
  }, async (request) => {
    const { owner } = await authorized(request, 'names')
    return { cid: request.id, status: 'ok' as const, result: await fastify.attributes.names(owner) }
  })
}

export default attributeRoutes
