import { AppError } from './errors.ts'
import { sessionOwner, userOwner, type Owner } from './store/types.ts'
import { requireSession, userIdOf, type Identity, type SessionIdentity, type UstVerifier } from './ust.ts'

export interface AccessRequest {
  currentUst: string
  targetUst?: string | undefined
  currentApp: string
}

export interface UserAccessRequest {
  currentUst: string
  /** The target user's `SSO_USER_CLAIM` value (`sub`) under the caller's issuer; default the caller. */
  targetUser?: string | undefined
  currentApp: string
}

export interface Access {
  caller: Identity
  /** The session named by the request; for user attributes the caller's own. */
  target: Identity
  /** Whose attributes: the target session, or the target user. */
  owner: Owner
  /** For user attributes: the target user's claim value (audited; never a token). */
  targetUser?: string | undefined
  /** A super-user acting on another user's session or attributes (audited). */
  onBehalf: boolean
}

/** Access to session attributes: caller and target both name a session. */
export type SessionAccess = Access & { caller: SessionIdentity, target: SessionIdentity }

/** The session of a token as an attribute owner, made once per (cached) identity. */
export function sessionOwnerOf (identity: SessionIdentity): Owner {
  identity.sessionOwner ??= sessionOwner(identity.sessionId)
  return identity.sessionOwner
}

/**
 * Who may touch which session's or user's attributes. The caller is authenticated before the
 * app is checked, so an anonymous client cannot probe which apps exist. A caller may touch a
 * session of the same user (same issuer and subject), and the user's own attributes, or,
 * holding the super-user role, anyone's.
 */
export class AccessPolicy {
  readonly #verifier: UstVerifier
  readonly #apps: ReadonlySet<string>
  readonly #isSessionEnded: (sessionId: string) => Promise<boolean>

  /**
   * `isSessionEnded` answers for a caller whose session is not the target: the store checks
   * the target session's tombstone in the same round trip as the operation, not the caller's.
   */
  constructor (verifier: UstVerifier, apps: string[], isSessionEnded: (sessionId: string) => Promise<boolean>) {
    this.#verifier = verifier
    this.#apps = new Set(apps)
    this.#isSessionEnded = isSessionEnded
  }

  /** The verified caller (cached per token); rate limiting keys on it before authorization. */
  async identify (ust: string): Promise<Identity> {
    return await this.#verifier.verify(ust)
  }

  /** The caller of a token verified before, with no promise on the way; undefined when identify() must verify it. */
  identifyCached (ust: string): Identity | undefined {
    return this.#verifier.cached(ust)
  }

  async authorize (request: AccessRequest, verifiedCaller?: Identity | Promise<Identity>): Promise<SessionAccess> {
    const caller = await (verifiedCaller ?? this.#verifier.verify(request.currentUst))
    if (!this.#apps.has(request.currentApp)) throw new AppError('E004001')
    requireSession(caller, this.#verifier.sessionClaim)
    if (request.targetUst === undefined || request.targetUst === request.currentUst) {
      return { caller, target: caller, owner: sessionOwnerOf(caller), onBehalf: false }
    }
    const target = await this.#verifier.verify(request.targetUst)
    requireSession(target, this.#verifier.sessionClaim)
    const sameUser = target.issuer === caller.issuer && target.subject === caller.subject
    if (!sameUser && !caller.isSuperUser) throw new AppError('E005001')
    if (target.sessionId !== caller.sessionId && await this.#isSessionEnded(caller.sessionId)) {
      throw new AppError('E007001', 'Session has ended')
    }
    return { caller, target, owner: sessionOwnerOf(target), onBehalf: !sameUser }
  }

  /**
   * Who may touch which user's attributes: the caller's own, or (super-user only) those of
   * `targetUser` under the caller's issuer. The caller's session must not have ended: its
   * tombstone lives in the session's slot, which the user-attribute scripts cannot see, so it
   * is checked here, one more round trip that only user-attribute calls pay (D27).
   */
  async authorizeUser (request: UserAccessRequest, verifiedCaller?: Identity | Promise<Identity>): Promise<Access> {
    const caller = await (verifiedCaller ?? this.#verifier.verify(request.currentUst))
    if (!this.#apps.has(request.currentApp)) throw new AppError('E004001')
    if (caller.user === undefined) throw new AppError('E007001', 'The UST does not name a user (SSO_USER_CLAIM)')
    const targetUser = request.targetUser ?? caller.user
    const self = targetUser === caller.user
    if (!self && !caller.isSuperUser) throw new AppError('E005001')
    // A token without a session claim has no session to have ended; a logout by sub still ends it (admitSession).
    if (caller.sessionId !== undefined && await this.#isSessionEnded(caller.sessionId)) throw new AppError('E007001', 'Session has ended')
    let owner: Owner
    if (self) owner = caller.userOwner ??= userOwner(userIdOf(caller.issuer, caller.user))
    else owner = userOwner(userIdOf(caller.issuer, targetUser))
    return { caller, target: caller, owner, targetUser, onBehalf: !self }
  }
}
