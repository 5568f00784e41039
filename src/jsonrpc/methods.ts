import { Ajv, type ValidateFunction } from 'ajv'
import { Type, type TObject, type TSchema } from 'typebox'
import type { AccessPolicy } from '../access.ts'
import type { AttributeService } from '../attribute-service.ts'
import type { AuditEntry } from '../audit.ts'
import { AppError } from '../errors.ts'
import { ATTRIBUTE_OPERATIONS, BatchRead, inputSchemas, type AttributeOperation } from '../operations/attribute-operations.ts'
import { authorizeCall } from '../operations/authorize.ts'
import type { Fields } from '../operations/fields.ts'
import { CurrentApp, Name, TargetUst, Value, writeItem } from '../schemas/attributes.ts'
import type { Owner } from '../store/types.ts'
import type { Identity } from '../ust.ts'
import { validationDetails, type ValidationIssue } from '../validation-details.ts'
import { invalidParams, methodNotFound } from './protocol.ts'

// The JSON-RPC methods: `session.attr.*` and `user.attr.*` are the rows of the operation table
// (src/operations/, D60) under the connection's UST; `auth.*` and `core.*` are TrueNAS' own.

/** What a method sees of the connection it is called on. */
export interface CallContext {
  readonly ust: string | undefined
  readonly identity: Identity | undefined
  /** The connection's current_app (upgrade `?app=`, or login's second parameter). */
  readonly app: string | undefined
  readonly access: AccessPolicy
  readonly attributes: AttributeService
  /** Writes an audit line when the entry is one to audit (src/audit.ts). */
  audited: (entry: AuditEntry, error?: unknown) => void
}

export interface RpcMethod {
  name: string
  summary: string
  /** Callable before authentication. */
  public: boolean
  /** Positional parameter names, in order; the object form takes the same names. */
  params: Array<{ name: string, schema: TSchema, required: boolean }>
  result: TSchema
  /** Runs the method; `connection` methods (login, subscribe) are run by the connection itself. */
  run?: (context: CallContext, params: unknown) => Promise<unknown>
}

// Bodies are checked as strictly as REST bodies (src/app.ts): no coercion, no unknown field.
const ajv = new Ajv({ useDefaults: true, removeAdditional: false, allErrors: false, strict: true, coerceTypes: false })
const validators = new Map<TSchema, ValidateFunction>()

export function validate (schema: TSchema, fields: unknown): void {
  let check = validators.get(schema)
  if (check === undefined) {
    check = ajv.compile(schema)
    validators.set(schema, check)
  }
  if (check(fields)) return
  const { code, details } = validationDetails((check.errors ?? []) as ValidationIssue[])
  throw new AppError(code, details.map((detail) => `${detail.path} ${detail.message}`).join('; '), details)
}

const isObject = (value: unknown): value is Fields => typeof value === 'object' && value !== null && !Array.isArray(value)

/**
 * The REST fields of a call from its params: an object is taken as the fields; an array is
 * positional, `name` taking an array as `data` (the batch form, which has no `value` slot).
 */
export function fieldsOf (slots: AttributeOperation['params'], params: unknown): Fields {
  if (params === undefined) return {}
  if (isObject(params)) return { ...params }
  const given = params as unknown[]
  const fields: Fields = {}
  let index = 0
  for (let slot = 0; slot < slots.length && index < given.length; slot++) {
    const name = slots[slot]!
    const value = given[index]
    if (name === 'name') {
      if (Array.isArray(value)) {
        fields.data = value
        if (slots[slot + 1] === 'value') slot++
      } else {
        fields.name = value
      }
    } else if (name === 'value') {
      fields.value = value
    } else if (value !== null && value !== undefined) {
      if (!isObject(value)) throw invalidParams(`/params/${index}`, 'options must be an object')
      for (const [key, option] of Object.entries(value)) {
        if (Object.hasOwn(fields, key)) throw invalidParams(`/params/${index}/${key}`, `${key} is given as a positional parameter already`)
        fields[key] = option
      }
    }
    index++
  }
  if (index < given.length) throw invalidParams(`/params/${index}`, `Too many arguments: at most ${slots.length}`)
  return fields
}

/** The fields of an attribute call, its UST the connection's. */
function connectionFields (context: CallContext, fields: Fields): Fields {
  if (fields.current_ust !== undefined) throw invalidParams('/current_ust', 'The connection\'s UST is used: open another connection for another token')
  fields.current_ust = context.ust
  if (fields.current_app === undefined && context.app !== undefined) fields.current_app = context.app
  return fields
}

const rpcSchemas = new Map<string, { input: TObject, result: TSchema }>()

/** A row's JSON-RPC input (the REST body but the UST) and result (the REST 200 body but the envelope). */
function rpcSchemasOf (operation: AttributeOperation, scope: Owner['scope']): { input: TObject, result: TSchema } {
  const key = `${scope}.${operation.name}`
  let schemas = rpcSchemas.get(key)
  if (schemas === undefined) {
    const { body } = inputSchemas(operation, scope, false)
    const { current_ust: _ust, current_app: app, ...fields } = body.properties
    const input = Type.Object({ ...fields, current_app: Type.Optional(app ?? CurrentApp) }, { additionalProperties: false })
    const ok = operation.responses[200] as TObject
    const { cid: _cid, status: _status, sub_status: _subStatus, ...result } = ok.properties
    schemas = { input, result: Type.Object(result, { description: (ok as TObject & { description?: string }).description }) }
    rpcSchemas.set(key, schemas)
  }
  return schemas
}

export async function runOperation (context: CallContext, operation: AttributeOperation, scope: Owner['scope'], fields: Fields): Promise<unknown> {
  const given = connectionFields(context, fields)
  validate(inputSchemas(operation, scope, false).body, given)
  const call = await authorizeCall(context.access, scope, operation.audit, given)
  try {
    const result = await operation.run({ attributes: context.attributes, owner: call.owner, audit: call.audit }, call.fields)
    context.audited(call.audit)
    return result instanceof BatchRead ? result.toResult() : result
  } catch (error) {
    context.audited(call.audit, error)
    throw error
  }
}

const OptionsParam = (input: TObject): TSchema => {
  const { name: _name, value: _value, data: _data, ...options } = input.properties
  return Type.Object(options, { additionalProperties: false, description: 'The remaining REST fields of the call.' })
}

function operationMethod (operation: AttributeOperation, scope: Owner['scope']): RpcMethod {
  const { input, result } = rpcSchemasOf(operation, scope)
  const params: RpcMethod['params'] = operation.params.map((slot) => {
    if (slot === 'name') return { name: 'name', schema: Type.Union([Name, Type.Array(operation.name === 'create' ? writeItem(false) : operation.name === 'update' || operation.name === 'set' ? writeItem(true) : Name)], { description: 'A name (single form), or an array (batch form: the REST `data`)' }), required: true }
    if (slot === 'value') return { name: 'value', schema: Value, required: false }
    return { name: 'options', schema: OptionsParam(input), required: false }
  })
  return {
    name: `${scope}.attr.${operation.name}`,
    summary: `${operation.rest.summary}${scope === 'user' ? ' of the user' : ' of the session'} (REST: ${operation.rest.method} /sso/${scope}/attr${operation.rest.path === '/' ? '' : operation.rest.path})`,
    public: false,
    params,
    result,
    run: async (context, given) => await runOperation(context, operation, scope, fieldsOf(operation.params, given))
  }
}

const SET_ATTRIBUTE = ATTRIBUTE_OPERATIONS.find((operation) => operation.name === 'set')!

/** The user's attributes as one object, name -> value (auth.me). */
async function userAttributes (context: CallContext): Promise<Record<string, unknown>> {
  if (context.identity?.user === undefined) return {}
  const call = await authorizeCall(context.access, 'user', 'get', connectionFields(context, {}))
  const names = await context.attributes.names(call.owner)
  const read = await context.attributes.read(call.owner, names.map((name, index) => ({ path: `/${index}`, name })), true)
  const attributes: Record<string, unknown> = {}
  read.forEach((attribute, index) => {
    // Expired between the two reads: left out.
    if (attribute !== null) Object.defineProperty(attributes, names[index]!, { value: JSON.parse(attribute.valueJson), enumerable: true, writable: true, configurable: true })
  })
  context.audited(call.audit)
  return attributes
}

export const UserInfoSchema = Type.Object({
  sub: Type.String({ description: 'The caller\'s subject.' }),
  user: Type.Union([Type.String(), Type.Null()], { description: 'The caller\'s SSO_USER_CLAIM value, owner of user attributes; null when the token has none.' }),
  session_id: Type.String({ description: 'The session\'s opaque id (a hash of issuer and session claim).' }),
  roles: Type.Array(Type.String()),
  is_super_user: Type.Boolean(),
  expires_at: Type.String({ format: 'date-time', description: 'When the UST expires; the connection closes then (4002).' }),
  attributes: Type.Record(Type.String(), Type.Unknown(), { description: 'The user\'s attributes (user.attr), name -> value, decrypted.' })
})

export async function userInfo (context: CallContext): Promise<unknown> {
  const identity = context.identity!
  return {
    sub: identity.subject,
    user: identity.user ?? null,
    session_id: identity.sessionId,
    roles: identity.roles,
    is_super_user: identity.isSuperUser,
    expires_at: new Date(identity.expiresAt).toISOString(),
    attributes: await userAttributes(context)
  }
}

export const SUBSCRIBE_EVENTS = ['session.attr', 'user.attr'] as const

export const SubscribeOptionsSchema = Type.Object({
  since: Type.Optional(Type.String({ minLength: 1, maxLength: 64, pattern: '^[0-9]+-[0-9]+$', description: 'The last event id seen (exclusive): replay what came after it, then go live. The store keeps the last 100 to 120 events of each session and user.' })),
  names_only: Type.Optional(Type.Boolean({ description: 'Leave values out of notifications.' })),
  target_ust: Type.Optional(TargetUst),
  target_user: Type.Optional(Type.String({ minLength: 1, maxLength: 1024, description: 'user.attr: another user (super-user only, audited).' })),
  current_app: Type.Optional(CurrentApp)
}, { additionalProperties: false })

export const SubscribeResultSchema = Type.Object({
  id: Type.String({ description: 'The subscription id, for core.unsubscribe and in each notification.' }),
  replayed: Type.Integer({ description: 'Events replayed from `since` before live delivery.' }),
  resync: Type.Boolean({ description: 'True when `since` is outside the kept window (older than the last 100 to 120 events, or unknown): re-read, events were lost to this client; the subscription goes on live.' })
})

const Options = (description: string) => ({ name: 'options', schema: Type.Object({ current_app: Type.Optional(CurrentApp) }, { additionalProperties: false, description }), required: false })

const METHODS: RpcMethod[] = [
  {
    name: 'auth.login_with_token',
    summary: 'Authenticate the connection with a UST (or send Authorization: Bearer on the upgrade). Result: {response_type: "SUCCESS", user_info} or {response_type: "AUTH_ERR"}.',
    public: true,
    params: [
      { name: 'token', schema: Type.String({ minLength: 1, maxLength: 8192, description: 'The UST.' }), required: true },
      { name: 'current_app', schema: CurrentApp, required: false }
    ],
    result: Type.Object({ response_type: Type.Union([Type.Literal('SUCCESS'), Type.Literal('AUTH_ERR')]), user_info: Type.Optional(UserInfoSchema) })
  },
  {
    name: 'auth.me',
    summary: 'The caller: sub, session id, roles, and the user\'s attributes as an object.',
    public: false,
    params: [Options('current_app, when the connection has none')],
    result: UserInfoSchema,
    run: async (context, params) => {
      const fields = fieldsOf(['options'], params)
      if (fields.current_app !== undefined) validate(CurrentApp, fields.current_app)
      return await userInfo(fields.current_app === undefined ? context : { ...context, app: fields.current_app as string, audited: context.audited })
    }
  },
  {
    name: 'auth.set_attribute',
    summary: 'TrueNAS\' call: sets one user attribute (user.attr.set with name and value); result null.',
    public: false,
    params: [{ name: 'key', schema: Name, required: true }, { name: 'value', schema: Value, required: true }],
    result: Type.Null(),
    run: async (context, params) => {
      const fields = isObjectParams(params) ? { ...params } : positional(['key', 'value'], params)
      for (const key of Object.keys(fields)) if (key !== 'key' && key !== 'value') throw invalidParams(`/${key}`, 'is not a known field')
      if (!Object.hasOwn(fields, 'key')) throw new AppError('E008003', 'key is required', [{ path: '/key', message: 'is required' }])
      if (!Object.hasOwn(fields, 'value')) throw new AppError('E008003', 'value is required', [{ path: '/value', message: 'is required' }])
      await runOperation(context, SET_ATTRIBUTE, 'user', { name: fields.key, value: fields.value })
      return null
    }
  },
  {
    name: 'core.ping',
    summary: 'Answers "pong"; callable before authentication.',
    public: true,
    params: [],
    result: Type.Literal('pong'),
    run: async (_context, params) => {
      if (Array.isArray(params) && params.length > 0) throw invalidParams('/params/0', 'Too many arguments: at most 0')
      return 'pong'
    }
  },
  {
    name: 'core.subscribe',
    summary: 'Follow changes of the session\'s (`session.attr`) or the user\'s (`user.attr`) attributes: collection_update notifications, replay from `since`.',
    public: false,
    params: [
      { name: 'event', schema: Type.Union(SUBSCRIBE_EVENTS.map((event) => Type.Literal(event))), required: true },
      { name: 'options', schema: SubscribeOptionsSchema, required: false }
    ],
    result: SubscribeResultSchema
  },
  {
    name: 'core.unsubscribe',
    summary: 'End a subscription; result null.',
    public: false,
    params: [{ name: 'id', schema: Type.String(), required: true }],
    result: Type.Null()
  },
  ...ATTRIBUTE_OPERATIONS.map((operation) => operationMethod(operation, 'session')),
  ...ATTRIBUTE_OPERATIONS.map((operation) => operationMethod(operation, 'user'))
]

export const RPC_METHODS: ReadonlyMap<string, RpcMethod> = new Map(METHODS.map((method) => [method.name, method]))

function isObjectParams (params: unknown): params is Fields {
  return isObject(params)
}

/** Positional params under their names, with TrueNAS' "Too many arguments". */
export function positional (names: string[], params: unknown): Fields {
  if (params === undefined) return {}
  if (isObject(params)) return { ...params }
  const given = params as unknown[]
  if (given.length > names.length) throw invalidParams(`/params/${names.length}`, `Too many arguments: at most ${names.length}`)
  const fields: Fields = {}
  given.forEach((value, index) => { fields[names[index]!] = value })
  return fields
}

export function methodOf (name: string): RpcMethod {
  const method = RPC_METHODS.get(name)
  if (method === undefined) throw methodNotFound(name)
  return method
}
