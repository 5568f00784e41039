import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from 'typebox'
import { errorResponses, OkSchema } from '../src/schemas/common.ts'

const healthRoutes: FastifyPluginAsyncTypebox = async (fastify) => {
  // Probed every few seconds (Docker, Kubernetes): request lines at info would drown the log.
  // Warnings and errors still show, such as a 503 from /readyz.
  fastify.get('/healthz', {
    logLevel: 'warn',
    schema: { tags: ['health'], operationId: 'liveness', summary: 'Liveness: the process answers', security: [], response: { 200: Type.Object(OkSchema.properties, { description: 'The process answers' }) } }
  }, async (request) => ({ cid: request.id, status: 'ok' as const }))

  fastify.get('/readyz', {
    logLevel: 'warn',
    schema: {
      tags: ['health'],
      operationId: 'readiness',
      summary: 'Readiness: the store answers (503 E011003 when it does not)',
      security: [],
      response: { 200: Type.Object({ ...OkSchema.properties, store: Type.String({ description: '`redis` or `memory`', examples: ['redis'] }) }, { description: 'The store answers' }), ...errorResponses(503) }
    }
  }, async (request) => {
    await fastify.store.ping()
    return { cid: request.id, status: 'ok' as const, store: fastify.store.kind }
  })
}

export default healthRoutes
