import { decodeProtectedHeader, errors as joseErrors, jwtVerify, type JWTPayload, type JWTVerifyOptions, type ProtectedHeaderParameters } from 'jose'
import { AppError } from './errors.ts'
import { isKeySourceOutage, type VerificationKeys } from './key-source.ts'
import { COMPACT_JWS, MAX_UST_LENGTH, normalizedTyp, TOKEN_KIND_NAMES, tokenKindOf } from './ust.ts'

// The receiving side of OpenID Connect Back-Channel Logout 1.0, section 2.6: a logout token
// is a signed JWT with iss, aud, iat, jti, the back-channel-logout event, sid and/or sub,
// and no nonce (so an ID token can never be replayed as a logout token). A typed one says
// `typ: logout+jwt` (section 2.4); any other declared type is refused as what it says it is.

export const BACKCHANNEL_LOGOUT_EVENT = 'http://schemas.openid.net/event/backchannel-logout'

export interface LogoutClaims {
  issuer: string
  subject?: string | undefined
  /** The session claim as the identity provider sent it (not yet hashed). */
  sessionClaim?: string | undefined
  jti: string
  /** Epoch ms until which the jti must be remembered to refuse a replay. */
  replayUntil: number
}

export interface LogoutTokenVerifierOptions {
  /** The service's one key set, shared with the UST verifier (src/key-source.ts). */
  keys: VerificationKeys
  issuer?: string | undefined
  audience?: string | string[] | undefined
  /** The claim naming the session in logout tokens: `sid` per the specification. */
  sessionClaim: string
  /** Logout tokens older than this (by iat) are refused. */
  maxAgeSeconds: number
  clockToleranceSeconds: number
}

function invalid (reason: string): AppError {
  return new AppError('E008002', `Invalid logout token: ${reason}`, [{ path: '/logout_token', message: reason }])
}

export function createLogoutTokenVerifier (options: LogoutTokenVerifierOptions) {
  const verifyOptions: JWTVerifyOptions = {
    algorithms: options.keys.algorithms,
    clockTolerance: options.clockToleranceSeconds,
    maxTokenAge: options.maxAgeSeconds,
    // jti is checked after the kind: an ID token (which has none) is refused as an ID token.
    requiredClaims: ['iat']
  }
  if (options.issuer !== undefined) verifyOptions.issuer = options.issuer
  if (options.audience !== undefined) verifyOptions.audience = options.audience
  const key = options.keys.key

  return async function verifyLogoutToken (token: string): Promise<LogoutClaims> {
    if (token.length === 0 || token.length > MAX_UST_LENGTH) throw invalid('missing or too long')
    if (!COMPACT_JWS.test(token)) throw invalid('not a compact JWS')
    let header: ProtectedHeaderParameters
    try {
      header = decodeProtectedHeader(token)
    } catch {
      throw invalid('signature or format check failed')
    }
    // A declared type other than a logout token's is refused as what it says it is, before
    // its claims are checked against a logout token's rules (RFC 8725 §3.11).
    const typ = normalizedTyp(header)
    if (typ !== undefined && typ !== 'logout+jwt' && typ !== 'jwt') {
      throw invalid(`${TOKEN_KIND_NAMES[tokenKindOf(header) === 'access_token' ? 'access_token' : 'other']} is not a logout token`)
    }
    let payload: JWTPayload
    try {
      const result = typeof key === 'function'
        ? await jwtVerify(token, key, verifyOptions)
        : await jwtVerify(token, key, verifyOptions)
      payload = result.payload
    } catch (error) {
      if (isKeySourceOutage(error)) throw new AppError('E011003', 'Token keys are unavailable')
      if (error instanceof joseErrors.JOSEError) throw invalid(error.code === 'ERR_JWT_CLAIM_VALIDATION_FAILED' ? (error as joseErrors.JWTClaimValidationFailed).claim + ' claim check failed' : 'signature or format check failed')
      throw invalid('cannot be verified')
    }
    const events = payload.events
    if (events === undefined) throw invalid(`no events claim: ${TOKEN_KIND_NAMES.id_token} (a UST) is not a logout token`)
    if (events === null || typeof events !== 'object' || Array.isArray(events)) throw invalid('no events claim')
    const event = (events as Record<string, unknown>)[BACKCHANNEL_LOGOUT_EVENT]
    if (event === null || typeof event !== 'object' || Array.isArray(event)) throw invalid('events has no back-channel logout event')
    if (Object.hasOwn(payload, 'nonce')) throw invalid('a logout token must not carry a nonce')
    const sessionClaim = payload[options.sessionClaim]
    const subject = payload.sub
    const hasSession = typeof sessionClaim === 'string' && sessionClaim !== ''
    const hasSubject = typeof subject === 'string' && subject !== ''
    if (!hasSession && !hasSubject) throw invalid(`neither ${options.sessionClaim} nor sub`)
    if (typeof payload.jti !== 'string' || payload.jti === '') throw invalid('jti must be a string')
    const issuedAt = (payload.iat ?? 0) * 1000
    const expiresAt = payload.exp !== undefined ? payload.exp * 1000 : issuedAt + options.maxAgeSeconds * 1000
    return {
      issuer: payload.iss ?? '',
      subject: hasSubject ? subject : undefined,
      sessionClaim: hasSession ? sessionClaim : undefined,
      jti: payload.jti,
      replayUntil: Math.max(expiresAt, issuedAt + options.maxAgeSeconds * 1000) + options.clockToleranceSeconds * 1000
    }
  }
}
