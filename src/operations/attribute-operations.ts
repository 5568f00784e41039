import type { TObject, TSchema } from 'typebox'
import type { AttributeService, IdempotencyRequest, NameSpec, ReadAttribute } from '../attribute-service.ts'
import { viewOf } from '../attribute-service.ts'
import type { AuditEntry, AuditOperation } from '../audit.ts'
import { invalidInput } from '../errors.ts'
import {
  CreateBodySchema, CreateResponses, DeleteBodySchema, DeleteQuerySchema, DeleteResponses, ExistsBodySchema, ExistsQuerySchema,
  ExistsResponses, GetBodySchema, GetQuerySchema, GetResponses, NamesBodySchema, NamesQuerySchema, NamesResponses,
  NoQuerySchema, SetBodySchema, SetResponses, UpdateBodySchema, UpdateResponses, userScoped
} from '../schemas/attributes.ts'
import type { Owner, WriteMode } from '../store/types.ts'
import { byName, nameSpecs, writeSpecs, type Fields } from './fields.ts'

// Every attribute operation, declared once (D60): REST routes (routes/attributes.ts, both
// prefixes) and JSON-RPC methods (src/jsonrpc/) are adapters over this table, and the OpenAPI
// and AsyncAPI documents are generated from it.

export type OperationName = 'create' | 'update' | 'set' | 'get' | 'delete' | 'exists' | 'names'

/** What an operation needs besides its fields: the domain service and who it acts on. */
export interface OperationContext {
  attributes: AttributeService
  owner: Owner
  /** The call's audit entry (src/audit.ts): the operation adds the names it touched. */
  audit: AuditEntry
  /**
   * A REST write or delete sent with an Idempotency-Key. Read when the store is called, after
   * the input checks, so that a request with several problems is answered as before (D60).
   */
  idempotency?: (() => IdempotencyRequest | undefined) | undefined
}

/**
 * A batch read, left as the store's records: REST writes its body as text from the stored
 * JSON (routes/attribute-json.ts, D25), JSON-RPC takes `toResult()`.
 */
export class BatchRead {
  readonly specs: NameSpec[]
  readonly attributes: Array<ReadAttribute | null>

  constructor (specs: NameSpec[], attributes: Array<ReadAttribute | null>) {
    this.specs = specs
    this.attributes = attributes
  }

  toResult (): { result: Record<string, unknown> } {
    return { result: byName(this.specs, this.attributes.map((attribute) => attribute === null ? { found: false } : viewOf(attribute))) }
  }
}

/** The result of an operation: the REST body's fields without `cid`, `status` and `sub_status`. */
export type OperationResult = Record<string, unknown> | BatchRead

export interface AttributeOperation {
  name: OperationName
  audit: AuditOperation
  /** Writes and deletes: REST takes an Idempotency-Key header. */
  idempotent: boolean
  rest: {
    method: 'POST' | 'PATCH' | 'PUT' | 'GET' | 'DELETE'
    path: '/' | '/exists' | '/names'
    /** The session-attribute operationId; routes/attributes.ts derives the others from it. */
    operationId: string
    /** Without the scope's suffix (" of the user", " (Zato 3.x path)"). */
    summary: string
    description?: string
    /** Writes take no query string; reads take their fields from either. */
    hasQueryInput: boolean
  }
  /** Session-attribute input: the JSON body and the query string (routes/attributes.ts scopes them to users). */
  body: TObject
  query: TObject
  /** HTTP status -> response schema; 200's properties less the envelope are the JSON-RPC result. */
  responses: Record<number, TSchema>
  /**
   * JSON-RPC positional parameters. `name` takes an array as `data` (the batch form; for
   * writes the `value` slot then goes); `options` is an object of the remaining REST fields.
   */
  params: ReadonlyArray<'name' | 'value' | 'options'>
  run: (context: OperationContext, fields: Fields) => Promise<OperationResult>
}

async function write (mode: WriteMode, context: OperationContext, fields: Fields): Promise<OperationResult> {
  const { batch, specs } = writeSpecs(fields)
  context.audit.names = specs.map((spec) => spec.name)
  if (batch) context.attributes.checkBatch('/data', specs.length)
  const results = await context.attributes.write(context.owner, mode, specs, context.idempotency?.())
  if (batch) return { result: byName(specs, results) }
  return { ...results[0]! }
}

function writeOperation (mode: WriteMode, rest: AttributeOperation['rest'], body: TObject, responses: Record<number, TSchema>): AttributeOperation {
  return { name: mode, audit: mode, idempotent: true, rest, body, query: NoQuerySchema, responses, params: ['name', 'value', 'options'], run: async (context, fields) => await write(mode, context, fields) }
}

export const ATTRIBUTE_OPERATIONS: readonly AttributeOperation[] = [
  writeOperation('create', {
    method: 'POST',
    path: '/',
    operationId: 'createAttributes',
    summary: 'Create attributes',
    description: 'Creates one attribute (name, value) or a batch (data). Fails with 409 E009001 if any name exists; a batch is all or nothing.',
    hasQueryInput: false
  }, CreateBodySchema, CreateResponses),
  writeOperation('update', {
    method: 'PATCH',
    path: '/',
    operationId: 'updateAttributes',
    summary: 'Update attributes',
    description: 'Updates existing attributes; 404 E009002 if any is missing. Omitted expiration or encrypt keep the stored ones; value may be omitted when only they change.',
    hasQueryInput: false
  }, UpdateBodySchema, UpdateResponses),
  writeOperation('set', {
    method: 'PUT',
    path: '/',
    operationId: 'setAttributes',
    summary: 'Set (upsert) attributes',
    description: 'Creates or updates attributes. On an existing attribute, omitted expiration or encrypt keep the stored ones.',
    hasQueryInput: false
  }, SetBodySchema, SetResponses),
  {
    name: 'get',
    audit: 'get',
    idempotent: false,
    rest: {
      method: 'GET',
      path: '/',
      operationId: 'getAttributes',
      summary: 'Get attributes',
      description: 'Single form (name): the attribute\'s fields with `found`. Batch form (data): `result` keyed by name. Inputs may come in the query string or, as Zato clients send them, in a JSON body.',
      hasQueryInput: true
    },
    body: GetBodySchema,
    query: GetQuerySchema,
    responses: GetResponses,
    params: ['name', 'options'],
    run: async (context, fields) => {
      const { batch, specs } = nameSpecs(fields)
      context.audit.names = specs.map((spec) => spec.name)
      const decrypt = fields.decrypt !== false
      if (batch) {
        context.attributes.checkBatch('/data', specs.length)
        return new BatchRead(specs, await context.attributes.read(context.owner, specs, decrypt))
      }
      const views = await context.attributes.get(context.owner, specs, decrypt)
      return { ...views[0]! }
    }
  },
  {
    name: 'delete',
    audit: 'delete',
    idempotent: true,
    rest: {
      method: 'DELETE',
      path: '/',
      operationId: 'deleteAttributes',
      summary: 'Delete attributes',
      description: 'Deletes one attribute (name) or several (data); a missing name is not an error. if_version (single form) makes it conditional.',
      hasQueryInput: true
    },
    body: DeleteBodySchema,
    query: DeleteQuerySchema,
    responses: DeleteResponses,
    params: ['name', 'options'],
    run: async (context, fields) => {
      const { batch, specs } = nameSpecs(fields)
      context.audit.names = specs.map((spec) => spec.name)
      if (batch && fields.if_version !== undefined) throw invalidInput('/if_version', 'if_version applies to the single form only')
      if (batch) context.attributes.checkBatch('/data', specs.length)
      const deleted = await context.attributes.delete(context.owner, specs, fields.if_version as number | undefined, context.idempotency?.())
      if (batch) return { result: byName(specs, deleted) }
      return { deleted: deleted[0]! }
    }
  },
  {
    name: 'exists',
    audit: 'exists',
    idempotent: false,
    rest: { method: 'GET', path: '/exists', operationId: 'attributesExist', summary: 'Check whether attributes exist', hasQueryInput: true },
    body: ExistsBodySchema,
    query: ExistsQuerySchema,
    responses: ExistsResponses,
    params: ['name', 'options'],
    run: async (context, fields) => {
      const { batch, specs } = nameSpecs(fields)
      context.audit.names = specs.map((spec) => spec.name)
      if (batch) context.attributes.checkBatch('/data', specs.length)
      const exists = await context.attributes.exists(context.owner, specs)
      return { result: batch ? byName(specs, exists) : exists[0]! }
    }
  },
  {
    name: 'names',
    audit: 'names',
    idempotent: false,
    rest: { method: 'GET', path: '/names', operationId: 'attributeNames', summary: 'List attribute names', hasQueryInput: true },
    body: NamesBodySchema,
    query: NamesQuerySchema,
    responses: NamesResponses,
    params: ['options'],
    run: async (context) => ({ result: await context.attributes.names(context.owner) })
  }
]

const userSchemas = new Map<string, { body: TObject, query: TObject }>()

/**
 * An operation's input schemas for a scope and path: user attributes name their target by
 * `target_user`. The same objects every time, so validators compiled from them are reused.
 */
export function inputSchemas (operation: AttributeOperation, scope: Owner['scope'], zato: boolean): { body: TObject, query: TObject } {
  if (scope === 'session') return { body: operation.body, query: operation.query }
  const key = `${operation.name}:${zato}`
  let schemas = userSchemas.get(key)
  if (schemas === undefined) {
    schemas = {
      body: userScoped(operation.body, { zato, body: true }),
      query: operation.rest.hasQueryInput ? userScoped(operation.query, { zato, body: false }) : operation.query
    }
    userSchemas.set(key, schemas)
  }
  return schemas
}
