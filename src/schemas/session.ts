import { Type } from 'typebox'
import { CurrentApp, CurrentUst } from './attributes.ts'
import { API_ERRORS, errorResponses, OkSchema, OkSubStatusSchema } from './common.ts'

const UST_MAX = 8192
const Ust = (description: string) => Type.String({ minLength: 1, maxLength: UST_MAX, description, examples: ['eyJhbGciOiJFUzI1NiIsImtpZCI6ImRldi0...'] })

const SessionFields = {
  current_app: Type.Optional(CurrentApp),
  current_ust: Type.Optional(CurrentUst),
  target_ust: Type.Optional(Ust('UST of the session to end; defaults to the caller\'s.'))
}

export const EndSessionBodySchema = Type.Object(SessionFields, { additionalProperties: false, description: 'The session to end' })
export const EndSessionQuerySchema = Type.Object({
  current_app: SessionFields.current_app,
  target_ust: SessionFields.target_ust
}, { additionalProperties: false })

export const EndSessionResponses = {
  200: Type.Object({ ...OkSchema.properties, sub_status: OkSubStatusSchema }, { description: 'The session has ended (also when it had ended before)' }),
  ...errorResponses(...API_ERRORS)
}

export const LogoutTokenBodySchema = Type.Object({
  logout_token: Type.String({ minLength: 1, maxLength: UST_MAX, description: 'The logout token: a JWT signed by the identity provider (OpenID Connect Back-Channel Logout 1.0).' })
}, { additionalProperties: false, description: 'Form fields sent by the identity provider' })

export const LogoutResponses = {
  200: Type.Object(OkSchema.properties, { description: 'The session, or every session of the user, has ended' }),
  ...errorResponses(400, 415, 429, 500, 503)
}
