import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from 'typebox'
import { errorResponses, OkSchema } from '../src/schemas/common.ts'

const healthRoutes: FastifyPluginAsyncTypebox = async (fastify) => {
  fastify.get('/healthz', {
    schema: { tags: ['health'], operationId: 'liveness', summary: 'Liveness: the process answers', security: [], response: { 200: Type.Object(OkSchema.properties, { description: 'The process answers' }) } }
  }, async (request) => ({ cid: request.id, status: 'ok' as const }))

  fastify.get('/readyz', {
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
