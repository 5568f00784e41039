import { Type } from 'typebox'

export const CidSchema = Type.String({ description: 'Correlation id of this request; also in the logs and the X-Cid header.', examples: ['6a1f0c2e9b8d4f7a3c5e1b2d'] })

export const ErrorDetailSchema = Type.Object({
  path: Type.String({ description: 'JSON Pointer to the offending input field.', examples: ['/data/2/expiration'] }),
  message: Type.String({ description: 'What is wrong with that field.', examples: ['must be integer or must be null'] })
}, { description: 'One offending input field.' })

export const ErrorEnvelopeSchema = Type.Object({
  cid: CidSchema,
  status: Type.Literal('error', { description: 'Always `error` here.' }),
  sub_status: Type.Array(Type.String(), { description: 'Error codes, Zato-compatible (see the README error table).', examples: [['E008002']] }),
  message: Type.Optional(Type.String({ description: 'Human-readable summary; never contains values or tokens.', examples: ['Invalid input'] })),
  details: Type.Optional(Type.Array(ErrorDetailSchema, {
    description: 'For input errors: which fields are wrong and why.',
    examples: [[{ path: '/data/2/expiration', message: 'must be integer or must be null' }]]
  }))
}, { description: 'Error envelope' })

/** What each error status means, with the sub_status codes it carries; the document's components.responses. */
export const ERROR_STATUSES = {
  400: { name: 'BadRequest', description: 'Invalid or missing input (E008002, E008003)', example: 'E008002' },
  401: { name: 'Unauthorized', description: 'UST missing, invalid, expired or for an ended session (E007001); WWW-Authenticate names the Bearer scheme', example: 'E007001' },
  403: { name: 'Forbidden', description: 'App not allowed (E004001) or another user\'s session (E005001)', example: 'E005001' },
  404: { name: 'NotFound', description: 'No such attribute (E009002)', example: 'E009002' },
  409: { name: 'Conflict', description: 'Attribute exists (E009001) or version mismatch (E011005)', example: 'E011005' },
  413: { name: 'LimitExceeded', description: 'A limit is exceeded (E011001): body size, value size or batch size', example: 'E011001' },
  415: { name: 'UnsupportedMediaType', description: 'Unsupported media type (E008001)', example: 'E008001' },
  422: { name: 'Unprocessable', description: 'Stored value cannot be decrypted (E011006; followed by E011004 when its key is no longer configured), or an Idempotency-Key sent again with another request (E011008)', example: 'E011006' },
  429: { name: 'TooManyRequests', description: 'Rate limit exceeded (E011002); Retry-After says when to try again', example: 'E011002' },
  500: { name: 'InternalError', description: 'Unexpected error (E008004)', example: 'E008004' },
  503: { name: 'Unavailable', description: 'Store or token keys unavailable (E011003); Retry-After says when to try again', example: 'E011003' },
  507: { name: 'StoreFull', description: 'Redis is full (E011007): the write was refused whole, nothing stored', example: 'E011007' }
} as const

export type ErrorStatus = keyof typeof ERROR_STATUSES

const errorResponse = (status: ErrorStatus) =>
  Type.Object(ErrorEnvelopeSchema.properties, {
    description: ERROR_STATUSES[status].description,
    examples: [{ cid: '6a1f0c2e9b8d4f7a3c5e1b2d', status: 'error', sub_status: [ERROR_STATUSES[status].example] }]
  })

/**
 * The error responses of an operation: exactly the statuses its code paths can answer, which
 * is what the document lists for it (test/openapi-statuses.test.ts provokes each one).
 */
export function errorResponses<S extends ErrorStatus> (...statuses: S[]): { [K in S]: ReturnType<typeof errorResponse> } {
  return Object.fromEntries(statuses.map((status) => [status, errorResponse(status)])) as { [K in S]: ReturnType<typeof errorResponse> }
}

/** Every operation of the API scope: bad input, token, app or session, rate limit, a fault, the store. */
export const API_ERRORS = [400, 401, 403, 429, 500, 503] as const

/** Zato's success envelopes carried an empty sub_status, which Zato clients read unconditionally. */
export const OkSubStatusSchema = Type.Optional(Type.Array(Type.String(), { maxItems: 0, description: 'On the `/zato/...` paths only: always `[]`, as Zato sent it.', examples: [[]] }))

export const OkSchema = Type.Object({
  cid: CidSchema,
  status: Type.Literal('ok', { description: 'Always `ok` on success.' })
})
