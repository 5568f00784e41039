import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { EndSessionBodySchema, EndSessionQuerySchema, EndSessionResponses } from '../src/schemas/session.ts'
import { authorize, zatoTransport } from './request-input.ts'

export interface SessionRoutesOptions {
  /** Served under the Zato 3.x path: Zato's transport (any content type, ignored fields, `sub_status: []`). */
  zatoCompat: boolean
}

const security: Array<Record<string, string[]>> = [{ bearerAuth: [] }, {}]

const sessionRoutes: FastifyPluginAsyncTypebox<SessionRoutesOptions> = async (fastify, options) => {
  if (options.zatoCompat) zatoTransport(fastify)
  fastify.addHook('preValidation', async (request) => {
    if (request.body === undefined || request.body === null) request.body = {}
  })

  fastify.delete('/', {
    schema: {
      tags: [options.zatoCompat ? 'zato-compat' : 'sessions'],
      operationId: options.zatoCompat ? 'zatoEndSession' : 'endSession',
      summary: `End a session${options.zatoCompat ? ' (Zato 3.x path)' : ''}`,
      description: 'Purges the session\'s attributes at once and ends it: every UST of that session gets 401 E007001 from then on (for SSO_TOMBSTONE_TTL). For backends that manage logout themselves; the owner or a super-user may end a session. Idempotent.',
      security,
      querystring: EndSessionQuerySchema,
      body: EndSessionBodySchema,
      response: EndSessionResponses
    }
  }, async (request) => {
    const { access } = await authorize(fastify, request, 'end-session')
    await fastify.sessions.endSession(access.target.sessionId)
    // An ended session has no business in its user's index.
    access.target.indexed = true
    return { cid: request.id, status: 'ok' as const }
  })
}

export default sessionRoutes
