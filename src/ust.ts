import { createHash } from 'node:crypto'
import { readFileSync } from 'node:fs'
import {
  createLocalJWKSet, createRemoteJWKSet, errors as joseErrors, jwtVerify,
  type JSONWebKeySet, type JWTPayload, type JWTVerifyGetKey, type JWTVerifyOptions
} from 'jose'
import { LRUCache } from 'lru-cache'
import { AppError } from './errors.ts'
import type { Owner } from './store/types.ts'

/** Who is calling, and which session a UST names. */
export interface Identity {
  issuer: string
  subject: string
  /** Stable, opaque id of the session: a hash of issuer and session claim. Used in keys. */
  sessionId: string
  /** Stable, opaque id of the user: a hash of issuer and subject. Used in keys. */
  userId: string
  roles: string[]
  isSuperUser: boolean
  /** Epoch ms after which the token is no longer valid. */
  expiresAt: number
  /** Epoch ms of `iat`, or null when the token has none. */
  issuedAt: number | null
  /**
   * The value of `SSO_USER_CLAIM` (by default the subject): who owns user attributes, and what
   * `target_user` names. Undefined when the token lacks that claim (no user attributes then).
   */
  user?: string | undefined
  /** This token's session and user as attribute owners, made once per token (src/access.ts). */
  sessionOwner?: Owner
  userOwner?: Owner
  /** Set once this instance has recorded the session in its user's index (logout by `sub`). */
  indexed?: boolean
}

export type KeySource =
  | { kind: 'secret', secret: string }
  | { kind: 'jwks', jwks: JSONWebKeySet }
  | { kind: 'jwks-file', path: string }
  | { kind: 'jwks-url', url: string }

export interface UstVerifierOptions {
  keySource: KeySource
  /** Required `iss`; when undefined any issuer is accepted (development only). */
  issuer?: string | undefined
  audience?: string | undefined
  sessionClaim: string
  /** Claim path that names the user of user attributes; default `sub`. */
  userClaim?: string | undefined
  rolesClaim: string
  superUserRole: string
  clockToleranceSeconds: number
  cacheSize: number
  now?: () => number
  /** Told of each token-cache lookup: hit, or miss (then the token is verified). Not called with the cache off. */
  onCacheLookup?: ((hit: boolean) => void) | undefined
  /**
   * Called once per token on a cache miss, after the signature and claims checked out and
   * before the identity is cached; a throw refuses the token (an ended session or user).
   */
  onVerified?: (identity: Identity) => Promise<void>
}

export interface UstVerifier {
  verify: (token: string) => Promise<Identity>
  /** The identity of a token already verified and cached (counted as a hit), else undefined (not counted: verify() will be). */
  cached: (token: string) => Identity | undefined
  /** Drops cached identities of an ended session, or of every session of an ended user. */
  forget: (ended: { sessionId: string } | { userId: string }) => void
}

// Larger tokens are refused before any parsing: no real UST comes near this, and it bounds
// the memory a token cache entry can take.
export const MAX_UST_LENGTH = 8192
const ASYMMETRIC_ALGORITHMS = ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'EdDSA', 'Ed25519']

// jose decodes base64 leniently (padding, for one): a token is taken only in its one canonical
// form, so that no second spelling of a valid token exists.
export const COMPACT_JWS = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/

export function sessionIdOf (issuer: string, sessionClaim: string): string {
  return createHash('sha256').update(issuer).update('\0').update(sessionClaim).digest('base64url').slice(0, 22)
}

export function userIdOf (issuer: string, subject: string): string {
  return sessionIdOf(issuer, `u\0${subject}`)
}

export function claimAtPath (payload: JWTPayload, path: string): unknown {
  let node: unknown = payload
  for (const part of path.split('.')) {
    if (node === null || typeof node !== 'object' || !Object.hasOwn(node, part)) return undefined
    node = (node as Record<string, unknown>)[part]
  }
  return node
}

function rolesOf (payload: JWTPayload, path: string): string[] {
  const claim = claimAtPath(payload, path)
  if (Array.isArray(claim)) return claim.filter((role): role is string => typeof role === 'string')
  if (typeof claim === 'string') return claim.split(' ').filter((role) => role !== '')
  return []
}

export function keyResolver (source: KeySource): { key: Uint8Array | JWTVerifyGetKey, algorithms: string[] } {
  switch (source.kind) {
    case 'secret':
      return { key: new TextEncoder().encode(source.secret), algorithms: ['HS256'] }
    case 'jwks':
      return { key: createLocalJWKSet(source.jwks), algorithms: ASYMMETRIC_ALGORITHMS }
    case 'jwks-file':
      return { key: createLocalJWKSet(JSON.parse(readFileSync(source.path, 'utf8')) as JSONWebKeySet), algorithms: ASYMMETRIC_ALGORITHMS }
    case 'jwks-url':
      return {
        key: createRemoteJWKSet(new URL(source.url), { timeoutDuration: 2000, cooldownDuration: 30_000, cacheMaxAge: 600_000 }),
        algorithms: ASYMMETRIC_ALGORITHMS
      }
  }
}

export function isKeySourceOutage (error: unknown): boolean {
  if (error instanceof joseErrors.JWKSTimeout || error instanceof joseErrors.JWKSInvalid) return true
  // jose reports a JWKS response that is not 200 or not JSON as a bare JOSEError
  // (ERR_JOSE_GENERIC); every verdict on a token itself has a more specific code.
  if (error instanceof joseErrors.JOSEError) return error.code === 'ERR_JOSE_GENERIC'
  // fetch() failures (refused, DNS, TLS) are not JOSE errors.
  return true
}

export function createUstVerifier (options: UstVerifierOptions): UstVerifier {
  const { key, algorithms } = keyResolver(options.keySource)
  const now = options.now ?? Date.now
  const verifyOptions: JWTVerifyOptions = {
    algorithms,
    clockTolerance: options.clockToleranceSeconds,
    requiredClaims: ['exp', 'sub']
  }
  if (options.issuer !== undefined) verifyOptions.issuer = options.issuer
  if (options.audience !== undefined) verifyOptions.audience = options.audience
  // Keyed by the signature, the token's last segment: hashing the whole token (hundreds of
  // characters, a new string on every request) cost more than the rest of a cache hit. The
  // entry keeps the whole token, and a hit must match it exactly.
  // No ttl in the LRU itself: every hit checks the identity's expiresAt anyway, and lru-cache's
  // ttl bookkeeping cost more per hit than the rest of the lookup. An expired entry is dropped
  // when it is next looked up, or evicted by newer ones; it is never used.
  const cache = options.cacheSize > 0
    ? new LRUCache<string, { token: string, identity: Identity }>({ max: options.cacheSize })
    : undefined
  const cacheKey = (token: string) => token.slice(token.lastIndexOf('.') + 1)

  async function verifyUncached (token: string): Promise<Identity> {
    if (!COMPACT_JWS.test(token)) throw new AppError('E007001')
    let payload: JWTPayload
    try {
      // jose's overloads differ for a key and a key resolver; both are valid here.
      const result = typeof key === 'function'
        ? await jwtVerify(token, key, verifyOptions)
        : await jwtVerify(token, key, verifyOptions)
      payload = result.payload
    } catch (error) {
      if (isKeySourceOutage(error)) throw new AppError('E011003', 'Token keys are unavailable', undefined, 503)
      throw new AppError('E007001')
    }
    // A logout token (OIDC Back-Channel Logout) names a session too; it must never open one.
    if (payload.events !== undefined) throw new AppError('E007001', 'A logout token is not a session token')
    const sessionClaim = payload[options.sessionClaim]
    if ((typeof sessionClaim !== 'string' || sessionClaim === '') || typeof payload.sub !== 'string' || payload.sub === '') {
      throw new AppError('E007001', 'Session token has no session or subject claim')
    }
    const issuer = payload.iss ?? ''
    const roles = rolesOf(payload, options.rolesClaim)
    const user = options.userClaim === undefined || options.userClaim === 'sub' ? payload.sub : claimAtPath(payload, options.userClaim)
    return {
      issuer,
      subject: payload.sub,
      user: typeof user === 'string' && user !== '' ? user : undefined,
      sessionId: sessionIdOf(issuer, sessionClaim),
      userId: userIdOf(issuer, payload.sub),
      roles,
      isSuperUser: roles.includes(options.superUserRole),
      expiresAt: (payload.exp ?? 0) * 1000,
      issuedAt: typeof payload.iat === 'number' ? payload.iat * 1000 : null
    }
  }

  /** The cached identity of exactly this token while it is unexpired; an expired one is dropped. */
  function fromCache (token: string): Identity | undefined {
    if (cache === undefined) return undefined
    const key = cacheKey(token)
    const entry = cache.get(key)
    if (entry?.token !== token) return undefined
    if (entry.identity.expiresAt > now()) return entry.identity
    cache.delete(key)
    return undefined
  }

  return {
    cached (token: string): Identity | undefined {
      const identity = fromCache(token)
      if (identity !== undefined) options.onCacheLookup?.(true)
      return identity
    },
    async verify (token: string): Promise<Identity> {
      if (token.length === 0 || token.length > MAX_UST_LENGTH) throw new AppError('E007001')
      const cached = fromCache(token)
      if (cache !== undefined) options.onCacheLookup?.(cached !== undefined)
      if (cached !== undefined) return cached
      const identity = await verifyUncached(token)
      if (options.onVerified !== undefined) await options.onVerified(identity)
      if (identity.expiresAt > now()) cache?.set(cacheKey(token), { token, identity })
      return identity
    },
    forget (ended): void {
      if (cache === undefined) return
      // Logouts are rare next to requests: a walk over the cache beats an index kept on every hit.
      for (const [key, { identity }] of cache.entries()) {
        if ('sessionId' in ended ? identity.sessionId === ended.sessionId : identity.userId === ended.userId) cache.delete(key)
      }
    }
  }
}
