import type { Access } from './access.ts'
import type { ErrorCode } from './errors.ts'

export type AuditOperation =
  | 'create' | 'update' | 'set' | 'delete' | 'get' | 'exists' | 'names' | 'end-session' | 'logout' | 'erase-user' | 'subscribe'

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

/** The audit entry of a request once the caller and target are known. */
export function accessEntry (operation: AuditOperation, app: string, access: Access): AuditEntry {
  return access.targetUser === undefined
    ? { operation, app, caller: access.caller.subject, target_session: access.target.sessionId, on_behalf: access.onBehalf }
    : { operation, app, caller: access.caller.subject, target_user: access.targetUser, on_behalf: access.onBehalf }
}

/** Every write, delete, session end and user erasure is logged, and any access by a super-user to another user's session or attributes. */
export function isAudited (entry: AuditEntry): boolean {
  return ALWAYS_AUDITED.has(entry.operation) || entry.on_behalf === true
}
