import { createHash } from 'node:crypto'
import {
  decodeProtectedHeader, errors as joseErrors, jwtVerify,
  type JWTPayload, type JWTVerifyOptions, type ProtectedHeaderParameters
} from 'jose'
import { LRUCache } from 'lru-cache'
import { AppError } from './errors.ts'
import { isKeySourceOutage, verificationKeys, type KeySource, type VerificationKeys } from './key-source.ts'
import type { Owner } from './store/types.ts'

/** Who is calling, and which session a UST names. */
export interface Identity {
  issuer: string
  subject: string
  /**
   * Stable, opaque id of the session: a hash of issuer and session claim. Used in keys.
   * Undefined when the token has no session claim (an access token without `sid`): such a
   * token may use user attributes, not session attributes.
   */
  sessionId: string | undefined
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

export type { KeySource } from './key-source.ts'
export { isKeySourceOutage } from './key-source.ts'

/** The kinds of token a UST may be (SSO_TOKEN_TYPES). */
export const UST_TYPES = ['id_token', 'access_token'] as const
export type UstType = typeof UST_TYPES[number]
/** What a token's header and claims say it is, before the rules of that kind are applied. */
export type TokenKind = UstType | 'logout_token' | 'other'

export const TOKEN_KIND_NAMES: Record<TokenKind, string> = {
  id_token: 'an ID token',
  access_token: 'an access token (typ at+jwt)',
  logout_token: 'a logout token',
  other: 'a token of another type (typ neither JWT, at+jwt nor logout+jwt)'
}

/** `typ` as RFC 8725 §3.11 compares it: case-insensitive, `application/` optional. */
export function normalizedTyp (header: ProtectedHeaderParameters): string | undefined {
  if (typeof header.typ !== 'string') return undefined
  const typ = header.typ.toLowerCase()
  return typ.startsWith('application/') ? typ.slice('application/'.length) : typ
}

/**
 * The kind a token declares: `at+jwt` an access token (RFC 9068 §2.1), `logout+jwt` or an
 * `events` claim a logout token, no `typ` or `JWT` an ID token, any other `typ` none of these.
 */
export function tokenKindOf (header: ProtectedHeaderParameters, payload?: JWTPayload): TokenKind {
  const typ = normalizedTyp(header)
  if (typ === 'at+jwt') return 'access_token'
  if (typ === 'logout+jwt' || (payload !== undefined && Object.hasOwn(payload, 'events'))) return 'logout_token'
  if (typ === undefined || typ === 'jwt') return 'id_token'
  return 'other'
}

export interface UstVerifierOptions {
  /** Where the keys come from; the service passes its one shared set (src/key-source.ts). */
  keySource: KeySource | VerificationKeys
  /** Required `iss`; when undefined any issuer is accepted (development only). */
  issuer?: string | undefined
  /** ID tokens: `aud` must name one of these client ids (when given). */
  audience?: string | string[] | undefined
  /** Access tokens: `aud` must name one of these resources; default `audience`. */
  resource?: string | string[] | undefined
  /** Which kinds of token are USTs; default both. */
  tokenTypes?: readonly UstType[] | undefined
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
  /** The claim that names the session (SSO_SESSION_CLAIM), for messages. */
  sessionClaim: string
  verify: (token: string) => Promise<Identity>
  /** The identity of a token already verified and cached (counted as a hit), else undefined (not counted: verify() will be). */
  cached: (token: string) => Identity | undefined
  /** Drops cached identities of an ended session, or of every session of an ended user. */
  forget: (ended: { sessionId: string } | { userId: string }) => void
}

// Larger tokens are refused before any parsing: no real UST comes near this, and it bounds
// the memory a token cache entry can take.
export const MAX_UST_LENGTH = 8192

// jose decodes base64 leniently (padding, for one): a token is taken only in its one canonical
// form, so that no second spelling of a valid token exists.
export const COMPACT_JWS = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/

/** An identity whose token names a session. */
export type SessionIdentity = Identity & { sessionId: string }

/** Session attributes need the session claim; a token without it (an access token, often) is 401 saying which. */
export function requireSession (identity: Identity, sessionClaim: string): asserts identity is SessionIdentity {
  if (identity.sessionId === undefined) {
    throw new AppError('E007001', `The UST has no session claim "${sessionClaim}" (SSO_SESSION_CLAIM): session attributes need one; user attributes need only sub`)
  }
}

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

function unaccepted (kind: TokenKind, options: Pick<UstVerifierOptions, 'tokenTypes'>): AppError {
  const name = TOKEN_KIND_NAMES[kind]
  const message = kind === 'id_token' || kind === 'access_token'
    ? `${name[0]!.toUpperCase()}${name.slice(1)} is not accepted as a UST here (SSO_TOKEN_TYPES=${(options.tokenTypes ?? UST_TYPES).join(',')})`
    : `${name[0]!.toUpperCase()}${name.slice(1)} is not a UST`
  return new AppError('E007001', message)
}

export function createUstVerifier (options: UstVerifierOptions): UstVerifier {
  const { key, algorithms } = 'kind' in options.keySource ? verificationKeys(options.keySource) : options.keySource
  const now = options.now ?? Date.now
  const tokenTypes = new Set(options.tokenTypes ?? UST_TYPES)
  // One set of rules per kind (RFC 8725 §3.12): an ID token's audience is the client, an
  // access token's the resource (RFC 9068 §4).
  const rulesOf = (audience: string | string[] | undefined): JWTVerifyOptions => {
    const rules: JWTVerifyOptions = { algorithms, clockTolerance: options.clockToleranceSeconds, requiredClaims: ['exp', 'sub'] }
    if (options.issuer !== undefined) rules.issuer = options.issuer
    if (audience !== undefined) rules.audience = audience
    return rules
  }
  const rules: Record<UstType, JWTVerifyOptions> = {
    id_token: rulesOf(options.audience),
    access_token: rulesOf(options.resource ?? options.audience)
  }
  const wrongAudience: Record<UstType, string> = {
    id_token: 'The ID token\'s aud names no client id in SSO_AUDIENCE',
    access_token: 'The access token\'s aud names no resource in SSO_RESOURCE'
  }
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
    let header: ProtectedHeaderParameters
    try {
      header = decodeProtectedHeader(token)
    } catch {
      throw new AppError('E007001')
    }
    // The declared kind picks the rules before any key is looked up; a kind that is not a UST
    // is refused as such, so a client learns what it sent (it could read the header itself).
    const kind = tokenKindOf(header)
    if (kind !== 'id_token' && kind !== 'access_token') throw unaccepted(kind, options)
    if (!tokenTypes.has(kind)) throw unaccepted(kind, options)
    let payload: JWTPayload
    try {
      // jose's overloads differ for a key and a key resolver; both are valid here.
      const result = typeof key === 'function'
        ? await jwtVerify(token, key, rules[kind])
        : await jwtVerify(token, key, rules[kind])
      payload = result.payload
    } catch (error) {
      if (isKeySourceOutage(error)) throw new AppError('E011003', 'Token keys are unavailable', undefined, 503)
      if (error instanceof joseErrors.JWTClaimValidationFailed && error.claim === 'aud') {
        throw new AppError('E007001', wrongAudience[kind])
      }
      throw new AppError('E007001')
    }
    // A logout token (OIDC Back-Channel Logout) names a session too; it must never open one.
    if (tokenKindOf(header, payload) === 'logout_token') throw unaccepted('logout_token', options)
    if (typeof payload.sub !== 'string' || payload.sub === '') throw new AppError('E007001', 'The UST has no sub claim')
    const sessionClaim = payload[options.sessionClaim]
    if (sessionClaim !== undefined && (typeof sessionClaim !== 'string' || sessionClaim === '')) {
      throw new AppError('E007001', `The UST's session claim "${options.sessionClaim}" (SSO_SESSION_CLAIM) is not a non-empty string`)
    }
    const issuer = payload.iss ?? ''
    const roles = rolesOf(payload, options.rolesClaim)
    const user = options.userClaim === undefined || options.userClaim === 'sub' ? payload.sub : claimAtPath(payload, options.userClaim)
    return {
      issuer,
      subject: payload.sub,
      user: typeof user === 'string' && user !== '' ? user : undefined,
      sessionId: sessionClaim === undefined ? undefined : sessionIdOf(issuer, sessionClaim),
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
    sessionClaim: options.sessionClaim,
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
