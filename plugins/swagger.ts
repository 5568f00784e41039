import swagger, { type SwaggerTransformObject } from '@fastify/swagger'
import swaggerUi from '@fastify/swagger-ui'
import fp from 'fastify-plugin'

export const API_VERSION = '1.0.0'

interface OperationObject { requestBody?: { required?: boolean } }

/**
 * GET and DELETE take their inputs from the query string, or from a JSON body as Zato clients
 * send them; no body counts as an empty one (routes/attributes.ts). @fastify/swagger marks
 * every body schema required, which would make generated clients send one.
 */
export const optionalReadBodies: SwaggerTransformObject = (document) => {
  if (!('openapiObject' in document)) return document.swaggerObject
  for (const item of Object.values(document.openapiObject.paths ?? {})) {
    for (const method of ['get', 'delete'] as const) {
      const operation = (item as Record<string, OperationObject | undefined> | undefined)?.[method]
      if (operation?.requestBody !== undefined) operation.requestBody.required = false
    }
  }
  return document.openapiObject
}

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
        { name: 'user-attributes', description: 'User attributes: seen by every session of the user, outliving them; DELETE /sso/user erases them' },
        { name: 'sessions', description: 'Ending sessions: OpenID Connect Back-Channel Logout and DELETE /sso/session' },
        { name: 'zato-compat', description: 'The same operations under the Zato 3.x paths' },
        { name: 'health', description: 'Liveness and readiness' }
      ],
      components: {
        securitySchemes: {
          bearerAuth: { type: 'http', scheme: 'bearer', bearerFormat: 'JWT', description: 'The caller\'s UST (current_ust).' }
        }
      }
    },
    hideUntagged: true,
    transformObject: optionalReadBodies
  })
  await fastify.register(swaggerUi, {
    routePrefix: '/docs',
    uiConfig: { tryItOutEnabled: false },
    // The UI's own policy in place of the API's `default-src 'none'`; without
    // upgrade-insecure-requests, which would break the UI served over plain http on loopback.
    staticCSP: true,
    transformStaticCSP: (header) => header.replace(/\s*upgrade-insecure-requests;?/, '')
  })
  fastify.get('/openapi.json', { schema: { hide: true } }, async () => fastify.swagger())
}, { name: 'swagger' })
