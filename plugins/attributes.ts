import fp from 'fastify-plugin'
import { AccessPolicy, type Access } from '../src/access.ts'
import { AttributeService } from '../src/attribute-service.ts'
import { createLogoutTokenVerifier, type LogoutClaims } from '../src/logout-token.ts'
import { SessionLifecycle } from '../src/session-lifecycle.ts'
import { listOf } from '../src/config.ts'
import type { Settings } from '../src/settings.ts'
import { DEFAULT_REMOTE_KEY_SET_OPTIONS, verificationKeys } from '../src/key-source.ts'
import { createUstVerifier } from '../src/ust.ts'
import { ValueCipher } from '../src/value-cipher.ts'

declare module 'fastify' {
  interface FastifyRequest {
    /** Who called on which session, once authorized. */
    authorized: Access | null
  }
  interface FastifyInstance {
    access: AccessPolicy
    attributes: AttributeService
    sessions: SessionLifecycle
    verifyLogoutToken: (token: string) => Promise<LogoutClaims>
  }
}

export default fp<{ settings: Settings }>(async (fastify, { settings }) => {
  const { config } = settings
  // One key set for every verifier: a key the provider has just made current is fetched once, for both.
  const keys = verificationKeys(settings.keySource, {
    timeoutMs: DEFAULT_REMOTE_KEY_SET_OPTIONS.timeoutMs,
    refetchIntervalMs: config.SSO_JWKS_REFETCH_INTERVAL_MS,
    maxAgeMs: config.SSO_JWKS_MAX_AGE * 1000,
    onFetch: (outcome) => {
      if (!outcome.ok) fastify.log.warn({ err: outcome.error, ms: Math.round(outcome.ms) }, 'JWKS fetch failed')
      else if (outcome.changed) fastify.log.info({ ms: Math.round(outcome.ms) }, 'JWKS fetched: new keys')
    }
  })
  const verifier = createUstVerifier({
    keySource: keys,
    issuer: settings.issuer,
    audience: settings.audience,
    resource: settings.resource,
    tokenTypes: settings.tokenTypes,
    sessionClaim: config.SSO_SESSION_CLAIM,
    userClaim: config.SSO_USER_CLAIM,
    rolesClaim: config.SSO_ROLES_CLAIM,
    superUserRole: config.SSO_SUPERUSER_ROLE,
    clockToleranceSeconds: config.SSO_CLOCK_TOLERANCE,
    cacheSize: config.SSO_TOKEN_CACHE_SIZE,
    onCacheLookup: fastify.metrics?.tokenCacheLookup,
    // Once per token: refused if its user was ended (logout by sub) after it was issued.
    onVerified: async (identity) => await fastify.store.admitSession(identity.userId, identity.issuedAt)
  })
  fastify.decorate('access', new AccessPolicy(verifier, settings.apps, async (sessionId) => await fastify.store.isSessionEnded(sessionId)))
  const sessions = new SessionLifecycle(fastify.store, verifier, config.SSO_TOMBSTONE_TTL * 1000)
  fastify.decorate('sessions', sessions)
  // A session enters its user's index with its first successful request (not before: a
  // rejected request stores nothing), before the answer leaves, so the next request sees it.
  fastify.decorateRequest('authorized', null)
  // A callback hook: nearly every request has nothing to do here, and pays no promise for it.
  // `authorized` is undefined, not null, on routes of plugins registered before this one.
  fastify.addHook('onSend', (request, reply, payload, done) => {
    const access = request.authorized
    if (access == null || reply.statusCode >= 400 || (access.caller.indexed === true && access.target.indexed === true)) {
      done(null, payload)
      return
    }
    const record = async () => {
      await sessions.recordUse(access.caller)
      if (access.target !== access.caller) await sessions.recordUse(access.target)
    }
    record().catch((error: unknown) => {
      // The answer stands; the next request of this token tries again.
      request.log.warn({ err: error }, 'could not record the session in its user index')
    }).finally(() => done(null, payload))
  })
  fastify.decorate('verifyLogoutToken', createLogoutTokenVerifier({
    keys,
    issuer: settings.issuer,
    audience: config.SSO_LOGOUT_AUDIENCE !== undefined ? listOf(config.SSO_LOGOUT_AUDIENCE) : settings.audience,
    sessionClaim: 'sid',
    maxAgeSeconds: config.SSO_LOGOUT_MAX_AGE,
    clockToleranceSeconds: config.SSO_CLOCK_TOLERANCE
  }))
  fastify.decorate('attributes', new AttributeService(fastify.store, new ValueCipher(settings.encryptionKeys), {
    maxNameLength: config.SSO_MAX_NAME_LENGTH,
    maxValueBytes: config.SSO_MAX_VALUE_BYTES,
    maxBatch: config.SSO_MAX_BATCH,
    idempotencyTtlMs: config.SSO_IDEMPOTENCY_TTL * 1000
  }))
}, { name: 'attributes', dependencies: ['store'] })
