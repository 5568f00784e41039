import type { FastifyRequest } from 'fastify'
import fp from 'fastify-plugin'
import type { Access } from '../src/access.ts'
import type { ErrorCode } from '../src/errors.ts'

export type AuditOperation =
  | 'create' | 'update' | 'set' | 'delete' | 'get' | 'exists' | 'names' | 'end-session' | 'logout' | 'erase-user'

const ALWAYS_AUDITED: ReadonlySet<AuditOperation> = new Set(['create', 'update', 'set', 'delete', 'end-session', 'logout', 'erase-user'])

/** What an audited request did: never a value, never a token. */
export interface AuditEntry {
  operation: AuditOperation
  app?: string
  /** `sub` of the caller. */
  caller?: string
  /** The target session's id: already a hash of issuer and session claim (docs/KEYS.md). */
  target_session?: string
  /** User attributes and `DELETE /sso/user`: the target user (`SSO_USER_CLAIM`, like `caller`). */
  target_user?: string
  /** A super-user acting on another user's session or user attributes. */
  on_behalf?: boolean
  names?: string[]
  /** Logout by `sub`: how many sessions ended. */
  sessions_ended?: number
  /** `DELETE /sso/user`: how many attributes were erased. */
  attributes_erased?: number
  sub_status?: ErrorCode
}

declare module 'fastify' {
  interface FastifyRequest {
    audit: AuditEntry | null
  }
}

/** Starts the audit entry of a request once the caller and target are known. */
export function auditAccess (request: FastifyRequest, operation: AuditOperation, app: string, access: Access): AuditEntry {
  request.audit = access.targetUser === undefined
    ? { operation, app, caller: access.caller.subject, target_session: access.target.sessionId, on_behalf: access.onBehalf }
    : { operation, app, caller: access.caller.subject, target_user: access.targetUser, on_behalf: access.onBehalf }
  return request.audit
}

// One structured line per write, delete, session end, user erasure, and per super-user access
// to another user's session or attributes, written when the response is sent, so it carries
// the outcome.
export default fp(async (fastify) => {
  fastify.decorateRequest('audit', null)
  fastify.addHook('onResponse', (request, reply, done) => {
    // Undefined, not null, on routes of plugins registered before this one (Swagger UI).
    const entry = request.audit
    if (entry != null && (ALWAYS_AUDITED.has(entry.operation) || entry.on_behalf === true)) {
      request.log.info({ audit: { ...entry, status: reply.statusCode, outcome: reply.statusCode < 400 ? 'ok' : 'error' } }, 'audit')
    }
    done()
  })
}, { name: 'audit' })
