import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import type { FastifyRequest } from 'fastify'
import type { Static } from 'typebox'
import type { WriteSpec } from '../src/attribute-service.ts'
import type { AuditOperation } from '../src/audit.ts'
import { invalidInput } from '../src/errors.ts'
import {
  CreateBodySchema, CreateResponses, DeleteBodySchema, DeleteQuerySchema, DeleteResponses, ExistsBodySchema, ExistsQuerySchema,
  ExistsResponses, GetBodySchema, GetQuerySchema, GetResponses, NamesBodySchema, NamesQuerySchema, NamesResponses,
  NoQuerySchema, SetBodySchema, SetResponses, UpdateBodySchema, UpdateResponses
} from '../src/schemas/attributes.ts'
import type { WriteMode } from '../src/store/types.ts'
import { batchGetBody } from './attribute-json.ts'
import { authorize, byName, formOf, nameSpecs, zatoTransport, type Fields } from './request-input.ts'

export interface SessionAttrRoutesOptions {
  /** Served under the Zato 3.x path: Zato's transport (any content type, ignored fields, `sub_status: []`). */
  zatoCompat: boolean
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

const sessionAttrRoutes: FastifyPluginAsyncTypebox<SessionAttrRoutesOptions> = async (fastify, options) => {
  const tags = [options.zatoCompat ? 'zato-compat' : 'attributes']
  const operationId = (name: string) => (options.zatoCompat ? `zato${name[0]!.toUpperCase()}${name.slice(1)}` : name)
  const alias = options.zatoCompat ? ' (Zato 3.x path)' : ''

  if (options.zatoCompat) zatoTransport(fastify)

  // GET and DELETE may come with no body at all: treat that as an empty one, so the body
  // schema (which allows every field to be absent) validates it.
  fastify.addHook('preValidation', (request, _reply, done) => {
    if (request.body === undefined || request.body === null) request.body = {}
    done()
  })

  async function authorized (request: FastifyRequest, operation: AuditOperation) {
    const { fields, access, audit } = await authorize(fastify, request, operation)
    return { fields, sessionId: access.target.sessionId, audit }
  }

  async function write (request: FastifyRequest, mode: WriteMode) {
    const { fields, sessionId, audit } = await authorized(request, mode)
    const { batch, specs } = writeSpecs(fields)
    audit.names = specs.map((spec) => spec.name)
    if (batch) fastify.attributes.checkBatch('/data', specs.length)
    const results = await fastify.attributes.write(sessionId, mode, specs)
    if (batch) return { cid: request.id, status: 'ok' as const, result: byName(specs, results) }
    return { cid: request.id, status: 'ok' as const, ...results[0]! }
  }

  fastify.post('/', {
    schema: {
      tags, operationId: operationId('createAttributes'), summary: `Create attributes${alias}`,
      description: 'Creates one attribute (name, value) or a batch (data). Fails with 409 E009001 if any name exists; a batch is all or nothing.',
      security, body: CreateBodySchema, querystring: NoQuerySchema, response: CreateResponses
    }
  }, async (request) => await write(request, 'create'))

  fastify.patch('/', {
    schema: {
      tags, operationId: operationId('updateAttributes'), summary: `Update attributes${alias}`,
      description: 'Updates existing attributes; 404 E009002 if any is missing. Omitted expiration or encrypt keep the stored ones; value may be omitted when only they change.',
      security, body: UpdateBodySchema, querystring: NoQuerySchema, response: UpdateResponses
    }
  }, async (request) => await write(request, 'update'))

  fastify.put('/', {
    schema: {
      tags, operationId: operationId('setAttributes'), summary: `Set (upsert) attributes${alias}`,
      description: 'Creates or updates attributes. On an existing attribute, omitted expiration or encrypt keep the stored ones.',
      security, body: SetBodySchema, querystring: NoQuerySchema, response: SetResponses
    }
  }, async (request) => await write(request, 'set'))

  fastify.get('/', {
    schema: {
      tags, operationId: operationId('getAttributes'), summary: `Get attributes${alias}`,
      description: 'Single form (name): the attribute\'s fields with `found`. Batch form (data): `result` keyed by name. Inputs may come in the query string or, as Zato clients send them, in a JSON body.',
      security, querystring: GetQuerySchema, body: GetBodySchema, response: GetResponses
    }
  }, async (request, reply) => {
    const { fields, sessionId, audit } = await authorized(request, 'get')
    const { batch, specs } = nameSpecs(fields)
    audit.names = specs.map((spec) => spec.name)
    const decrypt = fields.decrypt !== false
    if (batch) {
      fastify.attributes.checkBatch('/data', specs.length)
      const body = batchGetBody(request.id, specs, await fastify.attributes.read(sessionId, specs, decrypt), options.zatoCompat)
      // A string with a JSON content type goes out as it is, without the schema's serializer;
      // the type provider types send() by the schema, whose JSON this body already is.
      return await reply.type(JSON_CONTENT_TYPE).send(body as unknown as Static<typeof GetResponses[200]>)
    }
    const views = await fastify.attributes.get(sessionId, specs, decrypt)
    return { cid: request.id, status: 'ok' as const, ...views[0]! }
  })

  fastify.delete('/', {
    schema: {
      tags, operationId: operationId('deleteAttributes'), summary: `Delete attributes${alias}`,
      description: 'Deletes one attribute (name) or several (data); a missing name is not an error. if_version (single form) makes it conditional.',
      security, querystring: DeleteQuerySchema, body: DeleteBodySchema, response: DeleteResponses
    }
  }, async (request) => {
    const { fields, sessionId, audit } = await authorized(request, 'delete')
    const { batch, specs } = nameSpecs(fields)
    audit.names = specs.map((spec) => spec.name)
    if (batch && fields.if_version !== undefined) throw invalidInput('/if_version', 'if_version applies to the single form only')
    if (batch) fastify.attributes.checkBatch('/data', specs.length)
    const deleted = await fastify.attributes.delete(sessionId, specs, fields.if_version as number | undefined)
    if (batch) return { cid: request.id, status: 'ok' as const, result: byName(specs, deleted) }
    return { cid: request.id, status: 'ok' as const, deleted: deleted[0]! }
  })

  fastify.get('/exists', {
    schema: {
      tags, operationId: operationId('attributesExist'), summary: `Check whether attributes exist${alias}`,
      security, querystring: ExistsQuerySchema, body: ExistsBodySchema, response: ExistsResponses
    }
  }, async (request) => {
    const { fields, sessionId, audit } = await authorized(request, 'exists')
    const { batch, specs } = nameSpecs(fields)
    audit.names = specs.map((spec) => spec.name)
    if (batch) fastify.attributes.checkBatch('/data', specs.length)
    const exists = await fastify.attributes.exists(sessionId, specs)
    return { cid: request.id, status: 'ok' as const, result: batch ? byName(specs, exists) : exists[0]! }
  })

  fastify.get('/names', {
    schema: {
      tags, operationId: operationId('attributeNames'), summary: `List attribute names${alias}`,
      security, querystring: NamesQuerySchema, body: NamesBodySchema, response: NamesResponses
    }
  }, async (request) => {
    const { sessionId } = await authorized(request, 'names')
    return { cid: request.id, status: 'ok' as const, result: await fastify.attributes.names(sessionId) }
  })
}

export default sessionAttrRoutes
