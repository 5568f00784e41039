import fp from 'fastify-plugin'
import { AccessPolicy } from '../src/access.ts'
import { AttributeService } from '../src/attribute-service.ts'
import type { Settings } from '../src/settings.ts'
import { createUstVerifier } from '../src/ust.ts'
import { ValueCipher } from '../src/value-cipher.ts'

declare module 'fastify' {
  interface FastifyInstance {
    access: AccessPolicy
    attributes: AttributeService
  }
}

export default fp<{ settings: Settings }>(async (fastify, { settings }) => {
  const { config } = settings
  const verifier = createUstVerifier({
    keySource: settings.keySource,
    issuer: settings.issuer,
    audience: settings.audience,
    sessionClaim: config.SSO_SESSION_CLAIM,
    rolesClaim: config.SSO_ROLES_CLAIM,
    superUserRole: config.SSO_SUPERUSER_ROLE,
    clockToleranceSeconds: config.SSO_CLOCK_TOLERANCE,
    cacheSize: config.SSO_TOKEN_CACHE_SIZE,
    onCacheLookup: fastify.metrics?.tokenCacheLookup
  })
  fastify.decorate('access', new AccessPolicy(verifier, settings.apps))
  fastify.decorate('attributes', new AttributeService(fastify.store, new ValueCipher(settings.encryptionKeys), {
    maxNameLength: config.SSO_MAX_NAME_LENGTH,
    maxValueBytes: config.SSO_MAX_VALUE_BYTES,
    maxBatch: config.SSO_MAX_BATCH
  }))
}, { name: 'attributes', dependencies: ['store'] })
