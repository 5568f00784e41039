import { createHash } from 'node:crypto'
import { AppError } from './errors.ts'
import type { LogoutClaims } from './logout-token.ts'
import { SessionEndedError, type Store } from './store/types.ts'
import { sessionIdOf, userIdOf, type Identity, type UstVerifier } from './ust.ts'

/** What a logout ended: one session, or every session of a user. */
export type EndedScope =
  | { kind: 'session', sessionId: string }
  | { kind: 'user', userId: string, sessions: number }

/**
 * Ending sessions: by the session itself (`DELETE /sso/session`, a logout token with `sid`) or
 * every session of a user (a logout token with `sub` only). The store keeps the tombstones that
 * every instance checks; this instance's verified-token cache forgets the ended identities too.
 */
export class SessionLifecycle {
  readonly #store: Store
  readonly #verifier: Pick<UstVerifier, 'forget'>
  readonly #tombstoneTtlMs: number
  readonly #endedListeners = new Set<(ended: EndedScope) => void>()

  constructor (store: Store, verifier: Pick<UstVerifier, 'forget'>, tombstoneTtlMs: number) {
    this.#store = store
    this.#verifier = verifier
    this.#tombstoneTtlMs = tombstoneTtlMs
  }

  /**
   * Told of every session or user this instance ends, after the store recorded it: open
   * WebSocket connections of that session close (other instances learn it from the event feed).
   */
  onEnded (listener: (ended: EndedScope) => void): () => void {
    this.#endedListeners.add(listener)
    return () => this.#endedListeners.delete(listener)
  }

  #ended (ended: EndedScope): EndedScope {
    for (const listener of this.#endedListeners) listener(ended)
    return ended
  }

  async endSession (sessionId: string): Promise<EndedScope> {
    await this.#store.endSession(sessionId, this.#tombstoneTtlMs)
    this.#verifier.forget({ sessionId })
    return this.#ended({ kind: 'session', sessionId })
  }

  /**
   * After a successful request: records the session in its user's index (once per token and
   * instance), so that a logout by `sub` finds it. A logout of the user that raced the request
   * is caught here and ends the session after all.
   */
  async recordUse (identity: Identity): Promise<void> {
    // A token without a session claim (user attributes only) has no session to index.
    if (identity.indexed === true || identity.sessionId === undefined) return
    const { sessionId } = identity
    try {
      await this.#store.indexSession(identity.userId, sessionId, identity.issuedAt, identity.expiresAt)
      identity.indexed = true
    } catch (error) {
      if (!(error instanceof SessionEndedError)) throw error
      await this.endSession(sessionId)
    }
  }

  async endUser (userId: string): Promise<EndedScope> {
    const sessions = await this.#store.endUserSessions(userId, this.#tombstoneTtlMs)
    this.#verifier.forget({ userId })
    return this.#ended({ kind: 'user', userId, sessions })
  }

  /**
   * OpenID Connect Back-Channel Logout: a `sid` ends that session, a `sub` alone ends all the
   * user's sessions. A `jti` seen before is refused, so a captured token cannot be replayed to
   * end sessions opened after the logout it carried.
   */
  async logout (claims: LogoutClaims): Promise<EndedScope> {
    const onceId = createHash('sha256').update(claims.issuer).update('\0').update(claims.jti).digest('base64url').slice(0, 22)
    if (!await this.#store.rememberOnce(onceId, claims.replayUntil)) {
      throw new AppError('E008002', 'Invalid logout token: already used (jti replay)', [{ path: '/logout_token', message: 'jti already used' }])
    }
    try {
      return claims.sessionClaim !== undefined
        ? await this.endSession(sessionIdOf(claims.issuer, claims.sessionClaim))
        : await this.endUser(userIdOf(claims.issuer, claims.subject!))
    } catch (error) {
      // The identity provider retries a logout that failed; its retry must not count as a replay.
      await this.#store.forgetOnce(onceId).catch(() => {})
      throw error
    }
  }
}
