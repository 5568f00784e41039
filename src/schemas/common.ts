import { Type } from 'typebox'

export const CidSchema = Type.String({ description: 'Correlation id of this request; also in the logs and the X-Cid header.', examples: ['6a1f0c2e9b8d4f7a3c5e1b2d'] })

export const ErrorEnvelopeSchema = Type.Object({
  cid: CidSchema,
  status: Type.Literal('error', { description: 'Always `error` here.' }),
  sub_status: Type.Array(Type.String(), { description: 'Error codes, Zato-compatible (see the README error table).', examples: [['E008002']] }),
  message: Type.Optional(Type.String({ description: 'Human-readable summary; never contains values or tokens.', examples: ['Invalid input'] })),
  details: Type.Optional(Type.Array(Type.Object({
    path: Type.String({ description: 'JSON Pointer to the offending input field.', examples: ['/data/2/expiration'] }),
    message: Type.String({ description: 'What is wrong with that field.', examples: ['must be integer or must be null'] })
  }), {
    description: 'For input errors: which fields are wrong and why.',
    examples: [[{ path: '/data/2/expiration', message: 'must be integer or must be null' }]]
  }))
}, { description: 'Error envelope' })

const errorResponse = (description: string, example: string) =>
  Type.Object(ErrorEnvelopeSchema.properties, { description, examples: [{ cid: '6a1f0c2e9b8d4f7a3c5e1b2d', status: 'error', sub_status: [example] }] })

export const ErrorResponses = {
  400: errorResponse('Invalid or missing input (E008002, E008003)', 'E008002'),
  401: errorResponse('UST missing, invalid, expired or for an ended session (E007001); WWW-Authenticate names the Bearer scheme', 'E007001'),
  403: errorResponse('App not allowed (E004001) or another user\'s session (E005001)', 'E005001'),
  404: errorResponse('No such attribute (E009002) or unknown route (E008001)', 'E009002'),
  409: errorResponse('Attribute exists (E009001) or version mismatch (E011005)', 'E011005'),
  413: errorResponse('A limit is exceeded (E011001)', 'E011001'),
  415: errorResponse('Unsupported media type (E008001)', 'E008001'),
  429: errorResponse('Rate limit exceeded (E011002); Retry-After says when to try again', 'E011002'),
  422: errorResponse('Stored value cannot be decrypted (E011006); followed by E011004 when its key is no longer configured', 'E011006'),
  500: errorResponse('Unexpected error (E008004)', 'E008004'),
  503: errorResponse('Store or token keys unavailable (E011003)', 'E011003')
}

/** Zato's success envelopes carried an empty sub_status, which Zato clients read unconditionally. */
export const OkSubStatusSchema = Type.Optional(Type.Array(Type.String(), { maxItems: 0, description: 'On the `/zato/...` paths only: always `[]`, as Zato sent it.', examples: [[]] }))

export const OkSchema = Type.Object({
  cid: CidSchema,
  status: Type.Literal('ok', { description: 'Always `ok` on success.' })
})
