import { AppError } from './errors.ts'
import type { Identity, UstVerifier } from './ust.ts'

export interface AccessRequest {
  currentUst: string
  targetUst?: string | undefined
  currentApp: string
}

export interface Access {
  caller: Identity
  target: Identity
  /** A super-user acting on another user's session (audited). */
  onBehalf: boolean
}

/**
 * Who may touch which session. The caller is authenticated before the app is checked, so an
 * anonymous client cannot probe which apps exist. A caller may touch a session of the same
 * user (same issuer and subject) or, holding the super-user role, anyone's.
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

  async authorize (request: AccessRequest, verifiedCaller?: Identity | Promise<Identity>): Promise<Access> {
    const caller = await (verifiedCaller ?? this.#verifier.verify(request.currentUst))
    if (!this.#apps.has(request.currentApp)) throw new AppError('E004001')
    if (request.targetUst === undefined || request.targetUst === request.currentUst) return { caller, target: caller, onBehalf: false }
    const target = await this.#verifier.verify(request.targetUst)
    const sameUser = target.issuer === caller.issuer && target.subject === caller.subject
    if (!sameUser && !caller.isSuperUser) throw new AppError('E005001')
    if (target.sessionId !== caller.sessionId && await this.#isSessionEnded(caller.sessionId)) {
      throw new AppError('E007001', 'Session has ended')
    }
    return { caller, target, onBehalf: !sameUser }
  }
}
