import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from 'typebox'
import { ErrorResponses, OkSchema } from '../src/schemas/common.ts'

const healthRoutes: FastifyPluginAsyncTypebox = async (fastify) => {
  // Probed every few seconds (Docker, Kubernetes): request lines at info would drown the log.
  // Warnings and errors still show, such as a 503 from /readyz.
  fastify.get('/healthz', {
    logLevel: 'warn',
    schema: { tags: ['health'], operationId: 'liveness', summary: 'Liveness: the process answers', response: { 200: OkSchema } }
  }, async (request) => ({ cid: request.id, status: 'ok' as const }))

  fastify.get('/readyz', {
    logLevel: 'warn',
    schema: {
      tags: ['health'],
      operationId: 'readiness',
      summary: 'Readiness: the store answers (503 E011003 when it does not)',
      response: { 200: Type.Object({ ...OkSchema.properties, store: Type.String({ description: '`redis` or `memory`' }) }), 503: ErrorResponses[503] }
    }
  }, async (request) => {
    await fastify.store.ping()
    return { cid: request.id, status: 'ok' as const, store: fastify.store.kind }
  })
}

export default healthRoutes
