import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { invalidInput } from '../src/errors.ts'
import { LogoutResponses, LogoutTokenBodySchema } from '../src/schemas/session.ts'

// The receiving side of OpenID Connect Back-Channel Logout 1.0: the identity provider POSTs
// a form with one field, logout_token. Errors are 400 (the specification's status) in our envelope.
const backchannelLogoutRoutes: FastifyPluginAsyncTypebox = async (fastify) => {
  fastify.removeAllContentTypeParsers()
  fastify.addContentTypeParser('application/x-www-form-urlencoded', { parseAs: 'string' }, (_request, body, done) => {
    const form: Record<string, string> = {}
    for (const [key, value] of new URLSearchParams(body as string)) {
      if (Object.hasOwn(form, key)) {
        done(invalidInput(`/${key}`, 'Given more than once'), undefined)
        return
      }
      form[key] = value
    }
    done(null, form)
  })

  fastify.post('/sso/backchannel-logout', {
    schema: {
      tags: ['sessions'],
      operationId: 'backchannelLogout',
      summary: 'OpenID Connect Back-Channel Logout',
      description: 'Called by the identity provider. A logout token with `sid` ends that session; one with only `sub` ends every session of the user. The session\'s attributes are purged at once and its USTs get 401 E007001 from then on. A bad token, one seen before (`jti`), or a token of another type (an ID token or an access token) is 400; when the keys cannot be had (a new signing key and the JWKS endpoint down) it is 503 E011003, for the provider to retry.',
      consumes: ['application/x-www-form-urlencoded'],
      security: [],
      body: LogoutTokenBodySchema,
      response: LogoutResponses
    }
  }, async (request) => {
    request.audit = { operation: 'logout' }
    const claims = await fastify.verifyLogoutToken(request.body.logout_token)
    const ended = await fastify.sessions.logout(claims)
    if (ended.kind === 'session') request.audit.target_session = ended.sessionId
    else request.audit.sessions_ended = ended.sessions
    return { cid: request.id, status: 'ok' as const }
  })
}

export default backchannelLogoutRoutes
