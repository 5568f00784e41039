import fp from 'fastify-plugin'
import { isAudited, type AuditEntry } from '../src/audit.ts'

declare module 'fastify' {
  interface FastifyRequest {
    audit: AuditEntry | null
  }
}

// One structured line per audited request (src/audit.ts), written when the response is sent,
// so it carries the outcome.
export default fp(async (fastify) => {
  fastify.decorateRequest('audit', null)
  fastify.addHook('onResponse', (request, reply, done) => {
    // Undefined, not null, on routes of plugins registered before this one (Swagger UI).
    const entry = request.audit
    if (entry != null && isAudited(entry)) {
      request.log.info({ audit: { ...entry, status: reply.statusCode, outcome: reply.statusCode < 400 ? 'ok' : 'error' } }, 'audit')
    }
    done()
  })
}, { name: 'audit' })
