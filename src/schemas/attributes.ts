import { Type, type Static, type TObject, type TSchema, type TSchemaOptions } from 'typebox'
import { API_ERRORS, CidSchema, errorResponses, OkSubStatusSchema } from './common.ts'

// Hard bounds that hold whatever the configuration; the configured (smaller) limits are
// checked by the attribute service, which can name the offending field. The document shows
// the default name limit instead (src/schemas/document.ts).
const NAME_MAX = 1024
const UST_MAX = 8192

export const CurrentApp = Type.String({ minLength: 1, maxLength: 191, description: 'Application the call is made from; must be one of SSO_APPS.', examples: ['CRM'] })
const Ust = (description: string) => Type.String({ minLength: 1, maxLength: UST_MAX, description, examples: ['eyJhbGciOiJFUzI1NiIsImtpZCI6ImRldi0...'] })
export const CurrentUst = Ust('Caller\'s UST. Prefer the `Authorization: Bearer <ust>` header, which keeps tokens out of bodies and URLs.')
export const TargetUst = Ust('UST of the session whose attributes are touched; defaults to the caller\'s.')
export const Name = Type.String({ minLength: 1, maxLength: NAME_MAX, description: 'Attribute name: 1 to 191 Unicode code points (SSO_MAX_NAME_LENGTH), no control characters.', examples: ['theme'] })
export const Value = Type.Unknown({ description: 'Any JSON value (at most 64 KiB serialized, configurable).', examples: ['dark'] })
export const Encrypt = Type.Boolean({ description: 'Store the value encrypted (AES-256-GCM, bound to its owner, the session or the user, and to the name). Omitted on update/set: keep the stored state; on create: false.', examples: [true] })
export const Expiration = Type.Union([Type.Integer({ minimum: 1, maximum: 315360000 }), Type.Null()], {
  description: 'Seconds from now until the attribute expires; null removes an expiry; omitted keeps it (none for a new attribute). Never past the session\'s lifetime.',
  examples: [3600]
})
export const IfVersion = Type.Integer({ minimum: 1, description: 'Write only if the stored version is this one (409 E011005 otherwise).', examples: [3] })
export const Decrypt = Type.Boolean({ description: 'Return encrypted values decrypted (true, the default) or as the stored ciphertext string (false).', examples: [false] })

// GET and DELETE may take current_app from the query string or the body: optional in each.
const Common = {
  current_app: Type.Optional(CurrentApp),
  current_ust: Type.Optional(CurrentUst),
  target_ust: Type.Optional(TargetUst)
}

export const writeItem = (withVersion: boolean) => Type.Object({
  name: Name,
  value: Type.Optional(Value),
  encrypt: Type.Optional(Encrypt),
  expiration: Type.Optional(Expiration),
  ...(withVersion ? { if_version: Type.Optional(IfVersion) } : {})
}, { additionalProperties: false })

const writeBody = (withVersion: boolean, summary: string) => Type.Object({
  ...Common,
  current_app: CurrentApp,
  name: Type.Optional(Name),
  value: Type.Optional(Value),
  encrypt: Type.Optional(Encrypt),
  expiration: Type.Optional(Expiration),
  ...(withVersion ? { if_version: Type.Optional(IfVersion) } : {}),
  data: Type.Optional(Type.Array(writeItem(withVersion), {
    description: 'Batch form: the attributes to write, all or nothing. Top-level encrypt/expiration are defaults for items.',
    examples: [[{ name: 'theme', value: 'dark' }, { name: 'cart', value: [1, 2, 3], expiration: null }]]
  }))
}, {
  additionalProperties: false,
  description: summary,
  examples: [{ current_app: 'CRM', name: 'theme', value: 'dark', encrypt: false, expiration: 3600 }]
})

export const CreateBodySchema = writeBody(false, 'Single form: name + value. Batch form: data.')
export const UpdateBodySchema = writeBody(true, 'Single form: name (+ value, encrypt, expiration). Batch form: data.')
export const SetBodySchema = UpdateBodySchema
export type WriteBody = Static<typeof UpdateBodySchema>

const ReadFields = {
  ...Common,
  name: Type.Optional(Name),
  data: Type.Optional(Type.Array(Name, { description: 'Batch form: attribute names.', examples: [['theme', 'cart']] }))
}

export const GetBodySchema = Type.Object({ ...ReadFields, decrypt: Type.Optional(Decrypt) }, { additionalProperties: false })
// The query string's fields; the document marks current_app required there, the one place it
// can come from in the documented form (src/schemas/document.ts).
const QueryFields = {
  current_app: Type.Optional(CurrentApp),
  target_ust: Type.Optional(TargetUst)
}
export const NameListQuery = Type.Array(Name, { description: 'Batch form: repeat the parameter, `data=a&data=b`.', examples: [['theme', 'cart']] })
const NamesQueryFields = {
  ...QueryFields,
  name: Type.Optional(Name),
  data: Type.Optional(NameListQuery)
}

export const GetQuerySchema = Type.Object({ ...NamesQueryFields, decrypt: Type.Optional(Decrypt) }, { additionalProperties: false })
export const DeleteBodySchema = Type.Object({ ...ReadFields, if_version: Type.Optional(IfVersion) }, { additionalProperties: false })
export const DeleteQuerySchema = Type.Object({ ...NamesQueryFields, if_version: Type.Optional(IfVersion) }, { additionalProperties: false })
export const ExistsBodySchema = Type.Object(ReadFields, { additionalProperties: false })
export const ExistsQuerySchema = Type.Object(NamesQueryFields, { additionalProperties: false })
export const NamesBodySchema = Type.Object(Common, { additionalProperties: false })
export const NamesQuerySchema = Type.Object(QueryFields, { additionalProperties: false })
export const NoQuerySchema = Type.Object({}, { additionalProperties: false })

export type ReadInput = Static<typeof GetBodySchema> & Static<typeof DeleteBodySchema>

const TargetUser = (description: string) => Type.String({ minLength: 1, maxLength: NAME_MAX, description, examples: ['alice'] })
const USER_FIELDS = {
  target_user: Type.Optional(TargetUser('The user whose attributes are touched: the `sub` (or `SSO_USER_CLAIM`) under the caller\'s issuer; defaults to the caller. Another user\'s attributes need the super-user role (403 E005001).'))
}
const ZATO_USER_FIELDS = {
  user_id: Type.Optional(TargetUser('Zato\'s name of `target_user`.'))
}
const ZATO_UST = { ust: Type.Optional(Ust('Caller\'s UST under Zato 3.2\'s name (3.0 sent `current_ust`); prefer the `Authorization: Bearer <ust>` header.')) }

/**
 * The user-attribute form of a session-attribute input schema: no `target_ust`, but
 * `target_user`, and on the Zato path `user_id` (and `ust` in a body: no token in a URL).
 */
export function userScoped (schema: TObject, options: { zato: boolean, body: boolean }): TObject {
  const { target_ust: _targetUst, ...properties } = schema.properties
  const { description, examples } = schema as TObject & { description?: string, examples?: unknown[] }
  return Type.Object({
    ...properties,
    ...USER_FIELDS,
    ...(options.zato ? ZATO_USER_FIELDS : {}),
    ...(options.zato && options.body ? ZATO_UST : {})
  }, { additionalProperties: false, ...(description !== undefined ? { description } : {}), ...(examples !== undefined ? { examples } : {}) })
}

export const EraseUserBodySchema = Type.Object({
  current_app: Type.Optional(CurrentApp),
  current_ust: Type.Optional(CurrentUst),
  ...USER_FIELDS
}, { additionalProperties: false, description: 'The user whose attributes to erase' })
export const EraseUserQuerySchema = Type.Object({
  current_app: Type.Optional(CurrentApp),
  ...USER_FIELDS
}, { additionalProperties: false })

const Time = (description: string) => Type.String({ format: 'date-time', description, examples: ['2026-11-22T10:15:30.123Z'] })
// A type array rather than anyOf [string, null]: fast-json-stringify serializes an anyOf by
// validating the value against each branch with ajv (the date-time format included), which
// cost a batch GET of 20 about a third of its serialization (D25). OpenAPI 3.1 allows both.
// A batch answer's map from attribute name to item. Not Type.Record, whose key pattern `^.*$`
// fails on a name holding U+2028 or U+2029 (`.` stops at line terminators): fast-json-stringify
// left such names out of the answer without a word.
const ByName = <T extends TSchema>(item: T, options: TSchemaOptions) =>
  Type.Unsafe<Record<string, Static<T>>>({ type: 'object', ...options, additionalProperties: item })
const ExpirationTime = (description: string) => Type.Unsafe<string | null>({
  type: ['string', 'null'], format: 'date-time', description, examples: ['2026-11-22T10:25:30.123Z', null]
})

export const AttributeSchema = Type.Object({
  found: Type.Boolean({ description: 'Whether a live attribute of that name exists.', examples: [true] }),
  name: Type.Optional(Name),
  value: Type.Optional(Value),
  creation_time: Type.Optional(Time('When the attribute was created (ISO 8601 UTC).')),
  last_modified: Type.Optional(Time('When the attribute was last written.')),
  expiration_time: Type.Optional(ExpirationTime('When the attribute expires; null when it has no expiry of its own.')),
  is_encrypted: Type.Optional(Type.Boolean({ description: 'Whether the value is stored encrypted.', examples: [false] })),
  version: Type.Optional(Type.Integer({ description: '1 on create, +1 per write.', examples: [1] }))
})

export const WriteResultSchema = Type.Object({
  name: Name,
  version: Type.Integer({ description: 'Version after this write.', examples: [1] }),
  expiration_time: ExpirationTime('When the attribute expires; null when it has no expiry of its own.')
})

const ok = (properties: Parameters<typeof Type.Object>[0], description: string) => Type.Object({
  cid: CidSchema,
  status: Type.Literal('ok', { description: 'Always `ok` on success.' }),
  sub_status: OkSubStatusSchema,
  ...properties
}, { description })

export const WriteOkSchema = ok({
  name: Type.Optional(Name),
  version: Type.Optional(Type.Integer({ description: 'Single form: version after this write.', examples: [1] })),
  expiration_time: Type.Optional(ExpirationTime('Single form: when the attribute expires; null when it has no expiry of its own.')),
  result: Type.Optional(ByName(WriteResultSchema, {
    description: 'Batch form: per name, version and expiry after the write.',
    examples: [{ theme: { name: 'theme', version: 1, expiration_time: '2026-11-22T10:25:30.123Z' }, cart: { name: 'cart', version: 1, expiration_time: null } }]
  }))
}, 'Written')

export const CreateResponses = { 200: WriteOkSchema, ...errorResponses(...API_ERRORS, 409, 413, 415, 422, 507) }
export const UpdateResponses = { 200: WriteOkSchema, ...errorResponses(...API_ERRORS, 404, 409, 413, 415, 422, 507) }
export const SetResponses = { 200: WriteOkSchema, ...errorResponses(...API_ERRORS, 409, 413, 415, 422, 507) }

export const GetResponses = {
  200: ok({
    ...AttributeSchema.properties,
    found: Type.Optional(AttributeSchema.properties.found),
    result: Type.Optional(ByName(AttributeSchema, {
      description: 'Batch form: per name, the attribute.',
      examples: [{
        theme: { found: true, name: 'theme', value: 'dark', creation_time: '2026-11-22T10:15:30.123Z', last_modified: '2026-11-22T10:15:30.123Z', expiration_time: null, is_encrypted: false, version: 1 },
        missing: { found: false }
      }]
    }))
  }, 'Single form: the attribute\'s fields. Batch form: result keyed by name.'),
  ...errorResponses(...API_ERRORS, 413, 422)
}

export const ExistsResponses = {
  200: ok({
    result: Type.Union([Type.Boolean(), ByName(Type.Boolean(), {})], { description: 'Single form: boolean; batch form: name -> boolean.', examples: [true, { theme: true, missing: false }] })
  }, 'Whether the attributes exist'),
  ...errorResponses(...API_ERRORS, 413)
}

export const DeleteResponses = {
  200: ok({
    deleted: Type.Optional(Type.Boolean({ description: 'Single form: whether the attribute existed.', examples: [true] })),
    result: Type.Optional(ByName(Type.Boolean(), { description: 'Batch form: name -> whether it existed.', examples: [{ theme: true, missing: false }] }))
  }, 'Deleted (a missing name is not an error)'),
  ...errorResponses(...API_ERRORS, 409, 413, 422)
}

/**
 * Writes and deletes may carry an Idempotency-Key (IETF httpapi draft): a repeat within
 * SSO_IDEMPOTENCY_TTL gets the first answer again without writing again; the key with another
 * request is 422 E011008.
 */
export const IdempotencyHeadersSchema = Type.Object({
  'idempotency-key': Type.Optional(Type.String({
    minLength: 1,
    maxLength: 257,
    pattern: '^("[\\x20\\x21\\x23-\\x5b\\x5d-\\x7e]{1,255}"|[\\x21\\x23-\\x7e]{1,255})$',
    description: 'Makes a retry safe: the same key with the same request within SSO_IDEMPOTENCY_TTL (default 24 h) gets the first answer again (same status, same versions) and writes nothing; with another request, 422 E011008. A Structured Fields string of 1 to 255 printable ASCII characters, such as "8e03978e-40d5-43e8-bc93-6894a57f9324" (the bare form is taken too). Kept per session (or user).',
    examples: ['"8e03978e-40d5-43e8-bc93-6894a57f9324"']
  }))
})

export const EraseUserResponses = {
  200: ok({ erased: Type.Integer({ minimum: 0, description: 'How many live attributes the user had.', examples: [3] }) }, 'Every attribute of the user is gone'),
  ...errorResponses(...API_ERRORS)
}

export const NamesResponses = {
  200: ok({ result: Type.Array(Name, { description: 'Live attribute names, sorted by code point.', examples: [['api_key', 'cart', 'theme']] }) }, 'Attribute names'),
  ...errorResponses(...API_ERRORS)
}
