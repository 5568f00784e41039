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
}

/**
 * Who may touch which session. The caller is authenticated before the app is checked, so an
 * anonymous client cannot probe which apps exist. A caller may touch a session of the same
 * user (same issuer and subject) or, holding the super-user role, anyone's.
 */
export class AccessPolicy {
  readonly #verifier: UstVerifier
  readonly #apps: ReadonlySet<string>

  constructor (verifier: UstVerifier, apps: string[]) {
    this.#verifier = verifier
    this.#apps = new Set(apps)
  }

  async authorize (request: AccessRequest): Promise<Access> {
    const caller = await this.#verifier.verify(request.currentUst)
    if (!this.#apps.has(request.currentApp)) throw new AppError('E004001')
    if (request.targetUst === undefined || request.targetUst === request.currentUst) return { caller, target: caller }
    const target = await this.#verifier.verify(request.targetUst)
    const sameUser = target.issuer === caller.issuer && target.subject === caller.subject
    if (!sameUser && !caller.isSuperUser) throw new AppError('E005001')
    return { caller, target }
  }
}
