import assert from 'node:assert/strict'
import { randomUUID } from 'node:crypto'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, test } from 'node:test'
import { base64url, exportJWK, exportSPKI, generateKeyPair, SignJWT, type CryptoKey, type JSONWebKeySet, type JWTPayload } from 'jose'
import { AppError } from '../../src/errors.ts'
import { createUstVerifier, MAX_UST_LENGTH, sessionIdOf, type KeySource, type UstVerifierOptions } from '../../src/ust.ts'
import { freePort } from '../fixtures/redis.ts'

const ISSUER = 'https://idp.test'
const AUDIENCE = 'sso-attrs'
const SECRET = 'unit-test-secret-that-is-at-least-32-bytes'
const SECRET_BYTES = new TextEncoder().encode(SECRET)

function verifierFor (keySource: KeySource, options: Partial<UstVerifierOptions> = {}) {
  return createUstVerifier({
    keySource,
    issuer: ISSUER,
    audience: AUDIENCE,
    sessionClaim: 'sid',
    rolesClaim: 'roles',
    superUserRole: 'sso:super-user',
    clockToleranceSeconds: 5,
    cacheSize: 100,
    ...options
  })
}

const secretVerifier = (options: Partial<UstVerifierOptions> = {}) => verifierFor({ kind: 'secret', secret: SECRET }, options)

interface TokenOptions {
  claims?: JWTPayload
  issuer?: string | null
  audience?: string | string[] | null
  subject?: string | null
  expiresAt?: number | null
  notBefore?: number
  alg?: string
  kid?: string
}

const nowSeconds = () => Math.floor(Date.now() / 1000)

/** A token with the given claims; `null` leaves a standard claim out. */
async function token (key: CryptoKey | Uint8Array, options: TokenOptions = {}): Promise<string> {
  const jwt = new SignJWT({ sid: 'session-1', ...options.claims })
    .setProtectedHeader({ alg: options.alg ?? 'HS256', ...(options.kid !== undefined ? { kid: options.kid } : {}) })
    .setIssuedAt()
  if (options.issuer !== null) jwt.setIssuer(options.issuer ?? ISSUER)
  if (options.audience !== null) jwt.setAudience(options.audience ?? AUDIENCE)
  if (options.subject !== null) jwt.setSubject(options.subject ?? 'alice')
  if (options.expiresAt !== null) jwt.setExpirationTime(options.expiresAt ?? nowSeconds() + 600)
  if (options.notBefore !== undefined) jwt.setNotBefore(options.notBefore)
  return await jwt.sign(key)
}

async function assertRejected (promise: Promise<unknown>, code = 'E007001', statusCode = 401): Promise<void> {
  await assert.rejects(promise, (error: unknown) => {
    assert.ok(error instanceof AppError, `expected an AppError, got ${String(error)}`)
    assert.equal(error.code, code)
    assert.equal(error.statusCode, statusCode)
    return true
  })
}

async function es256 (kid: string) {
  const { privateKey, publicKey } = await generateKeyPair('ES256', { extractable: true })
  const jwks: JSONWebKeySet = { keys: [{ ...await exportJWK(publicKey), kid, alg: 'ES256', use: 'sig' }] }
  return { privateKey, publicKey, jwks }
}

describe('createUstVerifier with an HS256 secret', () => {
  test('a valid token gives the identity', async () => {
    const exp = nowSeconds() + 600
    const identity = await secretVerifier().verify(await token(SECRET_BYTES, { expiresAt: exp, claims: { sid: 's-1', roles: ['reader'] } }))
    assert.equal(identity.issuer, ISSUER)
    assert.equal(identity.subject, 'alice')
    assert.equal(identity.sessionId, sessionIdOf(ISSUER, 's-1'))
    assert.deepEqual(identity.roles, ['reader'])
    assert.equal(identity.isSuperUser, false)
    assert.equal(identity.expiresAt, exp * 1000)
  })

  test('sessionId is stable for the same issuer and sid, different for another sid or issuer', async () => {
    const verifier = secretVerifier({ cacheSize: 0 })
    const a1 = await verifier.verify(await token(SECRET_BYTES, { claims: { sid: 'A', jti: randomUUID() } }))
    const a2 = await verifier.verify(await token(SECRET_BYTES, { claims: { sid: 'A', jti: randomUUID() }, subject: 'alice', expiresAt: nowSeconds() + 60 }))
    const b = await verifier.verify(await token(SECRET_BYTES, { claims: { sid: 'B' } }))
    assert.equal(a1.sessionId, a2.sessionId)
    assert.notEqual(a1.sessionId, b.sessionId)
    const anyIssuer = secretVerifier({ issuer: undefined })
    const otherIssuer = await anyIssuer.verify(await token(SECRET_BYTES, { issuer: 'https://other-idp.test', claims: { sid: 'A' } }))
    assert.notEqual(otherIssuer.sessionId, a1.sessionId)
    assert.equal(otherIssuer.issuer, 'https://other-idp.test')
    // The id is opaque: neither the sid nor the issuer shows through.
    assert.doesNotMatch(a1.sessionId!, /idp\.test/)
    assert.match(a1.sessionId!, /^[A-Za-z0-9_-]{22}$/)
  })

  test('a token signed with another secret is E007001', async () => {
    await assertRejected(secretVerifier().verify(await token(new TextEncoder().encode('another-secret-that-is-at-least-32-bytes!'))))
  })

  test('alg none is E007001', async () => {
    const header = base64url.encode(JSON.stringify({ alg: 'none', typ: 'JWT' }))
    const payload = base64url.encode(JSON.stringify({ iss: ISSUER, aud: AUDIENCE, sub: 'alice', sid: 's', exp: nowSeconds() + 600 }))
    await assertRejected(secretVerifier().verify(`${header}.${payload}.`))
    await assertRejected(secretVerifier().verify(`${header}.${payload}`))
  })

  test('an HS512 token is E007001 (only HS256 is allowed with a secret)', async () => {
    await assertRejected(secretVerifier().verify(await token(SECRET_BYTES, { alg: 'HS512' })))
  })

  test('an ES256 token is E007001 against a secret verifier', async () => {
    const { privateKey } = await es256('k')
    await assertRejected(secretVerifier().verify(await token(privateKey, { alg: 'ES256', kid: 'k' })))
  })

  test('expired is E007001; expired within the clock tolerance is still accepted', async () => {
    await assertRejected(secretVerifier().verify(await token(SECRET_BYTES, { expiresAt: nowSeconds() - 60 })))
    const identity = await secretVerifier().verify(await token(SECRET_BYTES, { expiresAt: nowSeconds() - 2 }))
    assert.equal(identity.subject, 'alice')
  })

  test('nbf in the future is E007001', async () => {
    await assertRejected(secretVerifier().verify(await token(SECRET_BYTES, { notBefore: nowSeconds() + 120 })))
  })

  test('no exp is E007001', async () => {
    await assertRejected(secretVerifier().verify(await token(SECRET_BYTES, { expiresAt: null })))
  })

  test('a wrong or missing issuer is E007001', async () => {
    await assertRejected(secretVerifier().verify(await token(SECRET_BYTES, { issuer: 'https://evil.test' })))
    await assertRejected(secretVerifier().verify(await token(SECRET_BYTES, { issuer: null })))
  })

  test('a wrong or missing audience is E007001; one of several audiences is enough', async () => {
    await assertRejected(secretVerifier().verify(await token(SECRET_BYTES, { audience: 'another-service' })))
    await assertRejected(secretVerifier().verify(await token(SECRET_BYTES, { audience: null })))
    const identity = await secretVerifier().verify(await token(SECRET_BYTES, { audience: ['another-service', AUDIENCE] }))
    assert.equal(identity.subject, 'alice')
  })

  test('without a configured audience, any audience is accepted', async () => {
    const identity = await secretVerifier({ audience: undefined }).verify(await token(SECRET_BYTES, { audience: 'whatever' }))
    assert.equal(identity.subject, 'alice')
  })

  test('a missing or empty sub is E007001', async () => {
    await assertRejected(secretVerifier().verify(await token(SECRET_BYTES, { subject: null })))
    await assertRejected(secretVerifier().verify(await token(SECRET_BYTES, { subject: '' })))
  })

  test('an empty or non-string sid is E007001; a missing one leaves the identity without a session (user attributes only)', async () => {
    const sessionless = await secretVerifier().verify(await token(SECRET_BYTES, { claims: { sid: undefined } }))
    assert.equal(sessionless.sessionId, undefined)
    assert.equal(sessionless.subject, 'alice')
    await assertRejected(secretVerifier().verify(await token(SECRET_BYTES, { claims: { sid: '' } })))
    await assertRejected(secretVerifier().verify(await token(SECRET_BYTES, { claims: { sid: 42 } })))
    await assertRejected(secretVerifier().verify(await token(SECRET_BYTES, { claims: { sid: { id: 'x' } } })))
  })

  test('the session claim is configurable', async () => {
    const verifier = secretVerifier({ sessionClaim: 'session_state' })
    const identity = await verifier.verify(await token(SECRET_BYTES, { claims: { sid: undefined, session_state: 'kc-1' } }))
    assert.equal(identity.sessionId, sessionIdOf(ISSUER, 'kc-1'))
    assert.equal((await verifier.verify(await token(SECRET_BYTES, { claims: { sid: 'kc-1' } }))).sessionId, undefined, 'sid is not the session claim here')
  })

  test('roles at a dotted claim path (realm_access.roles) and isSuperUser', async () => {
    const verifier = secretVerifier({ rolesClaim: 'realm_access.roles' })
    const root = await verifier.verify(await token(SECRET_BYTES, { claims: { realm_access: { roles: ['offline_access', 'sso:super-user'] } } }))
    assert.deepEqual(root.roles, ['offline_access', 'sso:super-user'])
    assert.equal(root.isSuperUser, true)
    const plain = await verifier.verify(await token(SECRET_BYTES, { claims: { realm_access: { roles: ['offline_access'] } } }))
    assert.equal(plain.isSuperUser, false)
    // The role at the top-level `roles` claim does not count when the path is elsewhere.
    const elsewhere = await verifier.verify(await token(SECRET_BYTES, { claims: { roles: ['sso:super-user'] } }))
    assert.deepEqual(elsewhere.roles, [])
    assert.equal(elsewhere.isSuperUser, false)
    const notAList = await verifier.verify(await token(SECRET_BYTES, { claims: { realm_access: 'sso:super-user-ish' } }))
    assert.equal(notAList.isSuperUser, false)
  })

  test('roles: a role that only resembles the super-user role does not count; a custom role does', async () => {
    const identity = await secretVerifier().verify(await token(SECRET_BYTES, { claims: { roles: ['SSO:SUPER-USER', 'sso:super-user2', 7] } }))
    assert.equal(identity.isSuperUser, false)
    assert.deepEqual(identity.roles, ['SSO:SUPER-USER', 'sso:super-user2'])
    const custom = await secretVerifier({ superUserRole: 'admin' }).verify(await token(SECRET_BYTES, { claims: { roles: ['admin'] } }))
    assert.equal(custom.isSuperUser, true)
  })

  test('a space-separated roles string (scope style) is split', async () => {
    const identity = await secretVerifier({ rolesClaim: 'scope' }).verify(await token(SECRET_BYTES, { claims: { scope: 'openid sso:super-user' } }))
    assert.deepEqual(identity.roles, ['openid', 'sso:super-user'])
    assert.equal(identity.isSuperUser, true)
  })

  test(`a token longer than ${MAX_UST_LENGTH} characters is E007001 even when validly signed`, async () => {
    const verifier = secretVerifier()
    const padded = async (length: number) => {
      const base = await token(SECRET_BYTES, { claims: { pad: '' } })
      // Each pad character adds 4/3 characters to the token; find the pad that hits the length.
      let pad = Math.floor((length - base.length) * 3 / 4)
      let jwt = await token(SECRET_BYTES, { claims: { pad: 'p'.repeat(pad) } })
      while (jwt.length < length) jwt = await token(SECRET_BYTES, { claims: { pad: 'p'.repeat(++pad) } })
      while (jwt.length > length) jwt = await token(SECRET_BYTES, { claims: { pad: 'p'.repeat(--pad) } })
      return jwt
    }
    const atLimit = await padded(MAX_UST_LENGTH)
    assert.ok(atLimit.length <= MAX_UST_LENGTH)
    assert.equal((await verifier.verify(atLimit)).subject, 'alice')
    const over = await padded(MAX_UST_LENGTH + 200)
    assert.ok(over.length > MAX_UST_LENGTH)
    await assertRejected(verifier.verify(over))
    await assertRejected(verifier.verify(''))
  })

  test('garbage is E007001', async () => {
    for (const garbage of ['garbage', 'a.b.c', '...', 'eyJ.eyJ.x', 'Bearer x']) {
      await assertRejected(secretVerifier().verify(garbage))
    }
  })
})

describe('createUstVerifier with a local JWKS (ES256)', () => {
  test('a valid ES256 token gives the identity', async () => {
    const { privateKey, jwks } = await es256('k1')
    const identity = await verifierFor({ kind: 'jwks', jwks }).verify(await token(privateKey, { alg: 'ES256', kid: 'k1', claims: { sid: 'js-1' } }))
    assert.equal(identity.subject, 'alice')
    assert.equal(identity.sessionId, sessionIdOf(ISSUER, 'js-1'))
  })

  test('a token signed by a key not in the set is E007001', async () => {
    const { jwks } = await es256('k1')
    const stranger = await es256('k1')
    await assertRejected(verifierFor({ kind: 'jwks', jwks }).verify(await token(stranger.privateKey, { alg: 'ES256', kid: 'k1' })))
  })

  test('algorithm confusion: an HS256 token keyed with the public key is E007001', async () => {
    const { publicKey, jwks } = await es256('k1')
    const verifier = verifierFor({ kind: 'jwks', jwks })
    const pem = new TextEncoder().encode(await exportSPKI(publicKey))
    await assertRejected(verifier.verify(await token(pem, { alg: 'HS256', kid: 'k1' })))
    const jwkJson = new TextEncoder().encode(JSON.stringify(jwks.keys[0]))
    await assertRejected(verifier.verify(await token(jwkJson, { alg: 'HS256', kid: 'k1' })))
    await assertRejected(verifier.verify(await token(SECRET_BYTES, { alg: 'HS256' })))
  })

  test('alg none is E007001', async () => {
    const { jwks } = await es256('k1')
    const header = base64url.encode(JSON.stringify({ alg: 'none', kid: 'k1' }))
    const payload = base64url.encode(JSON.stringify({ iss: ISSUER, aud: AUDIENCE, sub: 'alice', sid: 's', exp: nowSeconds() + 600 }))
    await assertRejected(verifierFor({ kind: 'jwks', jwks }).verify(`${header}.${payload}.`))
  })

  test('expired and wrong issuer are E007001 with a JWKS too', async () => {
    const { privateKey, jwks } = await es256('k1')
    const verifier = verifierFor({ kind: 'jwks', jwks })
    await assertRejected(verifier.verify(await token(privateKey, { alg: 'ES256', kid: 'k1', expiresAt: nowSeconds() - 60 })))
    await assertRejected(verifier.verify(await token(privateKey, { alg: 'ES256', kid: 'k1', issuer: 'https://evil.test' })))
  })

  test('a JWKS file works like an inline JWKS', async (t) => {
    const { privateKey, jwks } = await es256('file-key')
    const dir = mkdtempSync(join(tmpdir(), 'sso-attrs-jwks-'))
    t.after(() => rmSync(dir, { recursive: true, force: true }))
    const path = join(dir, 'jwks.json')
    writeFileSync(path, JSON.stringify(jwks))
    const identity = await verifierFor({ kind: 'jwks-file', path }).verify(await token(privateKey, { alg: 'ES256', kid: 'file-key' }))
    assert.equal(identity.subject, 'alice')
  })
})

describe('createUstVerifier with a remote JWKS', () => {
  test('a JWKS URL that refuses connections is E011003 with status 503, quickly', async () => {
    const port = await freePort()
    const verifier = verifierFor({ kind: 'jwks-url', url: `http://127.0.0.1:${port}/jwks.json` })
    const { privateKey } = await es256('k1')
    const started = Date.now()
    await assertRejected(verifier.verify(await token(privateKey, { alg: 'ES256', kid: 'k1' })), 'E011003', 503)
    assert.ok(Date.now() - started < 2500, 'answers within the JWKS timeout')
  })

  test('a bad token is still E007001 (not 503) when the JWKS is unreachable but the token is malformed', async () => {
    const port = await freePort()
    const verifier = verifierFor({ kind: 'jwks-url', url: `http://127.0.0.1:${port}/jwks.json` })
    await assertRejected(verifier.verify('garbage'))
  })
})

describe('the verified-token cache', () => {
  test('returns the same identity for a repeated token', async () => {
    const verifier = secretVerifier()
    const jwt = await token(SECRET_BYTES)
    const first = await verifier.verify(jwt)
    const second = await verifier.verify(jwt)
    assert.strictEqual(second, first)
    assert.notStrictEqual(await verifier.verify(await token(SECRET_BYTES, { claims: { jti: randomUUID() } })), first)
  })

  test('with cacheSize 0 every call verifies again', async () => {
    const verifier = secretVerifier({ cacheSize: 0 })
    const jwt = await token(SECRET_BYTES)
    const first = await verifier.verify(jwt)
    const second = await verifier.verify(jwt)
    assert.notStrictEqual(second, first)
    assert.deepEqual(second, first)
  })

  test('a cached identity is not returned once the token has expired', async () => {
    let now = Date.now()
    const verifier = secretVerifier({ now: () => now })
    const jwt = await token(SECRET_BYTES, { expiresAt: nowSeconds() + 30 })
    const first = await verifier.verify(jwt)
    assert.strictEqual(await verifier.verify(jwt), first)
    now += 31_000
    // Past exp by the verifier's clock: the cache no longer answers, so jose verifies again.
    assert.notStrictEqual(await verifier.verify(jwt), first)
  })

  test('a token with a cached token\'s signature but another payload is verified, not taken from the cache', async () => {
    const verifier = secretVerifier()
    const jwt = await token(SECRET_BYTES)
    const first = await verifier.verify(jwt)
    const [header, payload, signature] = jwt.split('.')
    const claims = JSON.parse(Buffer.from(payload!, 'base64url').toString()) as Record<string, unknown>
    const forged = `${header!}.${Buffer.from(JSON.stringify({ ...claims, sub: 'mallory' })).toString('base64url')}.${signature!}`
    await assertRejected(verifier.verify(forged))
    assert.strictEqual(await verifier.verify(jwt), first)
  })

  test('cached() answers only for a token verified before, unexpired and byte for byte the same, and counts only its hits', async () => {
    let now = Date.now()
    const lookups: boolean[] = []
    const verifier = secretVerifier({ now: () => now, onCacheLookup: (hit) => lookups.push(hit) })
    const jwt = await token(SECRET_BYTES, { expiresAt: nowSeconds() + 30 })
    assert.equal(verifier.cached(jwt), undefined)
    assert.deepEqual(lookups, [], 'a miss is left for verify() to count')
    const identity = await verifier.verify(jwt)
    assert.strictEqual(verifier.cached(jwt), identity)
    assert.deepEqual(lookups, [false, true])
    const [header, payload, signature] = jwt.split('.')
    const claims = JSON.parse(Buffer.from(payload!, 'base64url').toString()) as Record<string, unknown>
    assert.equal(verifier.cached(`${header!}.${Buffer.from(JSON.stringify({ ...claims, sub: 'mallory' })).toString('base64url')}.${signature!}`), undefined)
    verifier.forget({ sessionId: identity.sessionId! })
    assert.equal(verifier.cached(jwt), undefined, 'forgotten with its session')
    assert.strictEqual((await verifier.verify(jwt)).sessionId, identity.sessionId)
    now += 31_000
    assert.equal(verifier.cached(jwt), undefined, 'expired')
  })

  test('a rejected token is not cached as valid', async () => {
    const verifier = secretVerifier()
    const bad = await token(new TextEncoder().encode('another-secret-that-is-at-least-32-bytes!'))
    await assertRejected(verifier.verify(bad))
    await assertRejected(verifier.verify(bad))
  })
})

describe('createUstVerifier: token types (RFC 8725 §3.11-3.12, RFC 9068)', () => {
  const RESOURCE = 'urn:sso-attrs:api'
  async function typed (typ: string | undefined, audience: string, claims: JWTPayload = {}): Promise<string> {
    const jwt = new SignJWT({ sid: 'session-1', ...claims })
      .setProtectedHeader({ alg: 'HS256', ...(typ !== undefined ? { typ } : {}) })
      .setIssuedAt().setIssuer(ISSUER).setAudience(audience).setSubject('alice').setExpirationTime(nowSeconds() + 600)
    return await jwt.sign(SECRET_BYTES)
  }
  const message = async (promise: Promise<unknown>): Promise<string> => {
    try {
      await promise
    } catch (error) {
      assert.ok(error instanceof AppError)
      assert.equal(error.code, 'E007001')
      return error.message
    }
    assert.fail('accepted')
  }

  test('an ID token (no typ, or JWT) is judged by the client ids, an access token (at+jwt, application/at+jwt) by the resources', async () => {
    const verifier = secretVerifier({ resource: RESOURCE, cacheSize: 0 })
    assert.equal((await verifier.verify(await typed(undefined, AUDIENCE))).subject, 'alice')
    assert.equal((await verifier.verify(await typed('JWT', AUDIENCE))).subject, 'alice')
    assert.equal((await verifier.verify(await typed('at+jwt', RESOURCE))).subject, 'alice')
    assert.equal((await verifier.verify(await typed('application/AT+JWT', RESOURCE))).subject, 'alice')
    assert.match(await message(verifier.verify(await typed('at+jwt', AUDIENCE))), /access token's aud names no resource in SSO_RESOURCE/)
    assert.match(await message(verifier.verify(await typed(undefined, RESOURCE))), /ID token's aud names no client id in SSO_AUDIENCE/)
  })

  test('logout tokens (typed, or untyped with events) and other declared types are never USTs', async () => {
    const verifier = secretVerifier({ cacheSize: 0 })
    assert.match(await message(verifier.verify(await typed('logout+jwt', AUDIENCE))), /logout token is not a UST/)
    assert.match(await message(verifier.verify(await typed(undefined, AUDIENCE, { events: { 'http://schemas.openid.net/event/backchannel-logout': {} } }))), /logout token is not a UST/)
    assert.match(await message(verifier.verify(await typed('dpop+jwt', AUDIENCE))), /another type/)
  })

  test('SSO_TOKEN_TYPES: a kind left out is refused, saying which setting', async () => {
    const idOnly = secretVerifier({ tokenTypes: ['id_token'], resource: RESOURCE })
    assert.match(await message(idOnly.verify(await typed('at+jwt', RESOURCE))), /access token \(typ at\+jwt\) is not accepted as a UST here \(SSO_TOKEN_TYPES=id_token\)/)
    const accessOnly = secretVerifier({ tokenTypes: ['access_token'], resource: RESOURCE })
    assert.match(await message(accessOnly.verify(await typed(undefined, AUDIENCE))), /ID token is not accepted as a UST here \(SSO_TOKEN_TYPES=access_token\)/)
    assert.equal((await accessOnly.verify(await typed('at+jwt', RESOURCE))).subject, 'alice')
  })
})
