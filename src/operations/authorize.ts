import type { Access, AccessPolicy, AccessRequest } from '../access.ts'
import { accessEntry, type AuditEntry, type AuditOperation } from '../audit.ts'
import { AppError, missingInput } from '../errors.ts'
import type { Owner } from '../store/types.ts'
import type { Identity } from '../ust.ts'
import { userFields, type Fields } from './fields.ts'

export function ustRequired (): AppError {
  return new AppError('E007001', 'A UST is required: Authorization: Bearer <ust>, or current_ust')
}

export function accessRequest (fields: Fields): AccessRequest {
  // Authentication comes first: a request without a UST is 401 whatever else it lacks.
  if (fields.current_ust === undefined) throw ustRequired()
  if (fields.current_app === undefined) throw missingInput('/current_app', 'current_app is required')
  return {
    currentApp: fields.current_app as string,
    currentUst: fields.current_ust as string,
    targetUst: fields.target_ust as string | undefined
  }
}

export interface AuthorizedCall {
  /** The fields, with Zato's aliases of user-attribute calls taken in. */
  fields: Fields
  access: Access
  owner: Owner
  /** The call's audit entry, to which the operation adds what it touched. */
  audit: AuditEntry
}

/**
 * Who calls on whose attributes, for every transport: a session's (the caller's, or with
 * `target_ust` another of the same user's, or a super-user's pick) or a user's (the caller's,
 * or with `target_user` a super-user's pick). Throws the AppError that refuses the call.
 */
export async function authorizeCall (
  policy: AccessPolicy, scope: Owner['scope'], operation: AuditOperation, given: Fields, verifiedCaller?: Identity | Promise<Identity>
): Promise<AuthorizedCall> {
  if (scope === 'session') {
    const input = accessRequest(given)
    const access = await policy.authorize(input, verifiedCaller)
    return { fields: given, access, owner: access.owner, audit: accessEntry(operation, input.currentApp, access) }
  }
  const fields = userFields(given)
  const input = accessRequest(fields)
  const access = await policy.authorizeUser({ ...input, targetUser: fields.target_user as string | undefined }, verifiedCaller)
  return { fields, access, owner: access.owner, audit: accessEntry(operation, input.currentApp, access) }
}
