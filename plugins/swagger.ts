import swagger from '@fastify/swagger'
import swaggerUi from '@fastify/swagger-ui'
import fp from 'fastify-plugin'

export const API_VERSION = '1.0.0'

export default fp(async (fastify) => {
  await fastify.register(swagger, {
    openapi: {
      openapi: '3.1.0',
      info: {
        title: 'sso-attrs',
        version: API_VERSION,
        description: 'Attributes of single-sign-on sessions: set, read, list and delete small named values bound to a user\'s SSO session, optionally encrypted and with a time to live. Every response is a `{cid, status, sub_status}` envelope. Every route under /sso/session/attr is also served under /zato/sso/session/attr (Zato 3.x).'
      },
      tags: [
        { name: 'attributes', description: 'Session attributes' },
        { name: 'zato-compat', description: 'The same operations under the Zato 3.x paths' },
        { name: 'health', description: 'Liveness and readiness' }
      ],
      components: {
        securitySchemes: {
          bearerAuth: { type: 'http', scheme: 'bearer', bearerFormat: 'JWT', description: 'The caller\'s UST (current_ust).' }
        }
      }
    },
    hideUntagged: true
  })
  await fastify.register(swaggerUi, { routePrefix: '/docs', uiConfig: { tryItOutEnabled: false } })
  fastify.get('/openapi.json', { schema: { hide: true } }, async () => fastify.swagger())
}, { name: 'swagger' })
