import assert from 'node:assert/strict'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { createServer, type IncomingMessage, type OutgoingHttpHeaders, type Server, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, test, type TestContext } from 'node:test'
import type { Redis } from 'ioredis'
import {
  base64url, CompactEncrypt, exportJWK, exportSPKI, FlattenedSign, generateKeyPair,
  type CryptoKey, type JSONWebKeySet, type JWSHeaderParameters, type JWTPayload
} from 'jose'
import type { App } from '../../src/app.ts'
import type { Config } from '../../src/config.ts'
import { MAX_UST_LENGTH } from '../../src/ust.ts'
import { freePort, RedisServer } from '../fixtures/redis.ts'
import { build, TEST_AUDIENCE, TEST_ISSUER, TEST_SECRET } from '../helper.ts'
import { assertUnchanged, snapshot } from './redis-snapshot.ts'

// A JWT attack corpus through the HTTP API. test/src/ust.test.ts covers the verifier as a
// unit; here every token goes the way an attacker sends it (bearer header, Zato body field,
// target_ust next to a valid super-user token), against an app that verifies with a JWKS,
// and each case checks the exact answer and that the Redis behind it did not change.

const CID = /^[0-9a-f]{24}$/
const P = '/sso/session/attr'
const Z = '/zato/sso/session/attr'
const VICTIM_SID = 'victim-session'

// Rate limiting (issue 3) counts failed authentications per client address; this file fails
// authentication on purpose dozens of times from one address.
const NO_RATE_LIMIT: Partial<Config> = Object.fromEntries([['SSO_RATE_LIMIT_MAX', 0]])

const nowSeconds = () => Math.floor(Date.now() / 1000)
const utf8 = (text: string) => new TextEncoder().encode(text)

interface Claims {
  iss?: string | null
  aud?: string | string[] | null
  sub?: string | null
  sid?: unknown
  exp?: number | null
  nbf?: number
  extra?: Record<string, unknown>
}

function payloadOf (claims: Claims = {}): Record<string, unknown> {
  const payload: Record<string, unknown> = { iat: nowSeconds(), ...claims.extra }
  if (claims.sid !== null) payload.sid = claims.sid ?? VICTIM_SID
  if (claims.iss !== null) payload.iss = claims.iss ?? TEST_ISSUER
  if (claims.aud !== null) payload.aud = claims.aud ?? TEST_AUDIENCE
  if (claims.sub !== null) payload.sub = claims.sub ?? 'alice'
  if (claims.exp !== null) payload.exp = claims.exp ?? nowSeconds() + 600
  if (claims.nbf !== undefined) payload.nbf = claims.nbf
  return payload
}

/** A compact JWS of any header, so headers jose's SignJWT would refuse can be sent too. */
async function sign (key: CryptoKey | Uint8Array, header: JWSHeaderParameters, claims: Claims = {}, crit: Record<string, boolean> = {}): Promise<string> {
  const jws = await new FlattenedSign(utf8(JSON.stringify(payloadOf(claims)))).setProtectedHeader(header).sign(key, { crit })
  return `${jws.protected!}.${jws.payload}.${jws.signature}`
}

function unsigned (header: Record<string, unknown>, claims: Claims = {}): string {
  return `${base64url.encode(JSON.stringify(header))}.${base64url.encode(JSON.stringify(payloadOf(claims)))}.`
}

/** The token's header replaced, its payload and signature kept. */
function relabel (token: string, header: Record<string, unknown>): string {
  const [, payload, signature] = parts(token)
  return `${base64url.encode(JSON.stringify(header))}.${payload}.${signature}`
}

function parts (token: string): [string, string, string] {
  const [header, payload, signature] = token.split('.')
  return [header!, payload!, signature!]
}

interface Keys {
  es: { privateKey: CryptoKey, publicKey: CryptoKey }
  rsa: { privateKey: CryptoKey, publicKey: CryptoKey }
  jwks: JSONWebKeySet
}

async function issuerKeys (): Promise<Keys> {
  const es = await generateKeyPair('ES256', { extractable: true })
  const rsa = await generateKeyPair('RS256', { extractable: true })
  const jwks: JSONWebKeySet = {
    keys: [
      { ...await exportJWK(es.publicKey), kid: 'k1', alg: 'ES256', use: 'sig' },
      { ...await exportJWK(rsa.publicKey), kid: 'r1', alg: 'RS256', use: 'sig' }
    ]
  }
  return { es, rsa, jwks }
}

// ---- the running service -----------------------------------------------------------------

let redis: RedisServer
let inspect: Redis
let dir: string
let keys: Keys
let jwksPath: string

before(async () => {
  redis = await RedisServer.start()
  inspect = redis.client()
  dir = mkdtempSync(join(tmpdir(), 'sso-attrs-jwt-attacks-'))
  keys = await issuerKeys()
  jwksPath = join(dir, 'jwks.json')
  writeFileSync(jwksPath, JSON.stringify(keys.jwks))
})

after(async () => {
  inspect?.disconnect()
  await redis?.close()
  if (dir !== undefined) rmSync(dir, { recursive: true, force: true })
})

const redisOverrides = (): Partial<Config> => ({ SSO_STORE: 'redis', REDIS_URL: redis.url, ...NO_RATE_LIMIT })

async function jwksFileApp (t: TestContext): Promise<App> {
  return await build(t, { ...redisOverrides(), SSO_JWT_SECRET: undefined, SSO_JWKS_FILE: jwksPath })
}

interface Envelope {
  cid: string
  status: 'ok' | 'error'
  sub_status?: string[]
  message?: string
}

interface Sent {
  statusCode: number
  headers: Record<string, string | string[] | number | undefined>
  body: Envelope
}

async function withAuthorization (app: App, authorization: string | string[]): Promise<Sent> {
  // @types/node types authorization as one string; Node itself takes a list (repeated header).
  const headers = { authorization } as unknown as OutgoingHttpHeaders
  const reply = await app.inject({ method: 'PUT', url: P, headers, payload: { current_app: 'CRM', name: 'pwned', value: 1 } })
  return { statusCode: reply.statusCode, headers: reply.headers, body: reply.json<Envelope>() }
}

type Delivery = 'bearer' | 'zato-body' | 'target'

/**
 * One write carrying the token the way `delivery` says. `target` sends it as target_ust
 * next to a valid super-user bearer, so that only the target's verification stands between
 * the attacker and the victim's session.
 */
async function attempt (app: App, delivery: Delivery, token: string, superUser: string, name = 'pwned'): Promise<Sent> {
  const write = { current_app: 'CRM', name, value: 'attacker was here' }
  const request = delivery === 'bearer'
    ? { url: P, headers: { authorization: `Bearer ${token}` }, payload: write }
    : delivery === 'zato-body'
      ? { url: Z, headers: {}, payload: { ...write, current_ust: token } }
      : { url: P, headers: { authorization: `Bearer ${superUser}` }, payload: { ...write, target_ust: token } }
  const reply = await app.inject({ method: 'PUT', ...request })
  return { statusCode: reply.statusCode, headers: reply.headers, body: reply.json<Envelope>() }
}

function assertAnswer (reply: Sent, status: number, code: string, what: string): void {
  assert.equal(reply.statusCode, status, `${what}: ${reply.statusCode} ${JSON.stringify(reply.body)}`)
  assert.equal(reply.body.status, 'error', what)
  assert.deepEqual(reply.body.sub_status, [code], what)
  assert.match(reply.body.cid, CID, what)
  assert.equal(reply.headers['x-cid'], reply.body.cid, what)
}

/** Sends, checks the answer, and checks that Redis holds exactly what it held before. */
async function assertRefused (app: App, send: () => Promise<Sent>, status: number, code: string, what: string): Promise<Sent> {
  const before = await snapshot(inspect)
  const reply = await send()
  assertAnswer(reply, status, code, what)
  assertUnchanged(before, await snapshot(inspect), what)
  return reply
}

interface AttackCase {
  what: string
  token: string
  /** Expected HTTP status and sub_status as target_ust; 401 E007001, as in every other delivery, when left out. */
  asTarget?: [number, string]
}

async function corpus (k: Keys): Promise<AttackCase[]> {
  const valid = await sign(k.es.privateKey, { alg: 'ES256', kid: 'k1' })
  const [header, payload, signature] = parts(valid)
  const rsaValid = await sign(k.rsa.privateKey, { alg: 'RS256', kid: 'r1' })
  const stranger = await generateKeyPair('ES256', { extractable: true })
  const strangerRsa = await generateKeyPair('RS256')
  const pem = utf8(await exportSPKI(k.es.publicKey))
  const rsaPem = utf8(await exportSPKI(k.rsa.publicKey))
  const jwkBytes = utf8(JSON.stringify(k.jwks.keys[0]))
  const claims = JSON.parse(Buffer.from(payload, 'base64url').toString('utf8')) as JWTPayload
  const tamperedPayload = (change: JWTPayload) => base64url.encode(JSON.stringify({ ...claims, ...change }))
  const flipped = Buffer.from(signature, 'base64url')
  flipped[0] = flipped[0]! ^ 0x01
  const otherValid = parts(await sign(k.es.privateKey, { alg: 'ES256', kid: 'k1' }, { sub: 'bob', sid: 'bob-session' }))
  const oversized = await sign(k.es.privateKey, { alg: 'ES256', kid: 'k1' }, { extra: { pad: 'p'.repeat(6500) } })
  assert.ok(oversized.length > MAX_UST_LENGTH && oversized.length > 8192, 'the oversized token is over 8 KiB')
  const jwe = await new CompactEncrypt(utf8(JSON.stringify(payloadOf())))
    .setProtectedHeader({ alg: 'dir', enc: 'A256GCM', kid: 'k1' })
    .encrypt(new Uint8Array(32))
  const strangerJwk = { ...await exportJWK(stranger.publicKey), alg: 'ES256' }

  return [
    // alg none and friends
    { what: 'alg none, signature part empty', token: unsigned({ alg: 'none', kid: 'k1' }) },
    { what: 'alg none without the trailing dot', token: unsigned({ alg: 'none' }).slice(0, -1) },
    { what: 'alg None (case variant)', token: unsigned({ alg: 'None', typ: 'JWT' }) },
    { what: 'alg NONE (case variant)', token: unsigned({ alg: 'NONE' }) },
    { what: 'alg none keeping a real signature', token: `${base64url.encode(JSON.stringify({ alg: 'none', kid: 'k1' }))}.${payload}.${signature}` },
    { what: 'no alg at all', token: `${base64url.encode(JSON.stringify({ kid: 'k1' }))}.${payload}.${signature}` },
    // algorithm confusion
    { what: 'HS256 keyed with the ES256 public key (SPKI PEM)', token: await sign(pem, { alg: 'HS256', kid: 'k1' }) },
    { what: 'HS256 keyed with the RSA public key (SPKI PEM)', token: await sign(rsaPem, { alg: 'HS256', kid: 'r1' }) },
    { what: 'HS256 keyed with the public JWK as JSON text', token: await sign(jwkBytes, { alg: 'HS256', kid: 'k1' }) },
    { what: 'HS512 keyed with the public key', token: await sign(pem, { alg: 'HS512', kid: 'k1' }) },
    { what: 'HS256 keyed with a guessable secret', token: await sign(utf8(TEST_SECRET), { alg: 'HS256' }) },
    { what: 'an RS256 signature relabelled PS256', token: relabel(rsaValid, { alg: 'PS256', kid: 'r1' }) },
    { what: 'an RS256 signature relabelled RS512', token: relabel(rsaValid, { alg: 'RS512', kid: 'r1' }) },
    { what: 'an ES256 token naming the RSA key', token: await sign(k.es.privateKey, { alg: 'ES256', kid: 'r1' }) },
    { what: 'an ES256 signature under alg ES384', token: `${base64url.encode(JSON.stringify({ alg: 'ES384', kid: 'k1' }))}.${payload}.${signature}` },
    // key selection
    { what: 'unknown kid', token: await sign(k.es.privateKey, { alg: 'ES256', kid: 'no-such-key' }) },
    { what: 'kid with path characters (../../etc/passwd)', token: await sign(k.es.privateKey, { alg: 'ES256', kid: '../../etc/passwd' }) },
    { what: 'kid /dev/null', token: await sign(k.es.privateKey, { alg: 'ES256', kid: '/dev/null' }) },
    { what: 'kid with SQL (\' OR 1=1 --)', token: await sign(k.es.privateKey, { alg: 'ES256', kid: '\' OR 1=1 --' }) },
    { what: 'kid with a NUL and a glob', token: await sign(k.es.privateKey, { alg: 'ES256', kid: 'k1\u0000*' }) },
    { what: 'kid that is not a string', token: `${base64url.encode(JSON.stringify({ alg: 'ES256', kid: ['k1'] }))}.${payload}.${signature}` },
    { what: 'signed by another key under the same kid', token: await sign(stranger.privateKey, { alg: 'ES256', kid: 'k1' }) },
    { what: 'signed by another RSA key under the RSA kid', token: await sign(strangerRsa.privateKey, { alg: 'RS256', kid: 'r1' }) },
    { what: 'the attacker\'s key embedded in the header (jwk)', token: await sign(stranger.privateKey, { alg: 'ES256', jwk: strangerJwk }) },
    { what: 'the attacker\'s key set named in the header (jku, x5u)', token: await sign(stranger.privateKey, { alg: 'ES256', kid: 'k1', jku: 'http://127.0.0.1:1/jwks.json', x5u: 'http://127.0.0.1:1/cert.pem' }) },
    // critical headers
    { what: 'crit with an unknown extension', token: await sign(k.es.privateKey, { alg: 'ES256', kid: 'k1', crit: ['x-unknown'], 'x-unknown': true }, {}, { 'x-unknown': true }) },
    { what: 'crit naming a header that is not there', token: `${base64url.encode(JSON.stringify({ alg: 'ES256', kid: 'k1', crit: ['exp'] }))}.${payload}.${signature}` },
    { what: 'crit that is not a list', token: `${base64url.encode(JSON.stringify({ alg: 'ES256', kid: 'k1', crit: 'x' }))}.${payload}.${signature}` },
    // size
    // As target_ust the schema's length bound refuses it first, as invalid input (as current_ust, 401).
    { what: `oversized (${oversized.length} characters, validly signed)`, token: oversized, asTarget: [400, 'E008002'] },
    // claims
    { what: 'nbf in the future', token: await sign(k.es.privateKey, { alg: 'ES256', kid: 'k1' }, { nbf: nowSeconds() + 300 }) },
    { what: 'expired', token: await sign(k.es.privateKey, { alg: 'ES256', kid: 'k1' }, { exp: nowSeconds() - 300 }) },
    { what: 'no exp', token: await sign(k.es.privateKey, { alg: 'ES256', kid: 'k1' }, { exp: null }) },
    { what: 'exp as a string', token: await sign(k.es.privateKey, { alg: 'ES256', kid: 'k1' }, { exp: null, extra: { exp: String(nowSeconds() + 600) } }) },
    { what: 'wrong aud', token: await sign(k.es.privateKey, { alg: 'ES256', kid: 'k1' }, { aud: 'another-service' }) },
    { what: 'no aud', token: await sign(k.es.privateKey, { alg: 'ES256', kid: 'k1' }, { aud: null }) },
    { what: 'wrong iss', token: await sign(k.es.privateKey, { alg: 'ES256', kid: 'k1' }, { iss: 'https://evil.test' }) },
    { what: 'iss differing only by a trailing slash', token: await sign(k.es.privateKey, { alg: 'ES256', kid: 'k1' }, { iss: `${TEST_ISSUER}/` }) },
    { what: 'no sid', token: await sign(k.es.privateKey, { alg: 'ES256', kid: 'k1' }, { sid: null }) },
    { what: 'sid as an object', token: await sign(k.es.privateKey, { alg: 'ES256', kid: 'k1' }, { sid: { $ne: '' } }) },
    // damaged signatures and parts
    { what: 'signature stripped (trailing dot kept)', token: `${header}.${payload}.` },
    { what: 'signature stripped (two parts)', token: `${header}.${payload}` },
    { what: 'signature with one bit flipped', token: `${header}.${payload}.${base64url.encode(flipped)}` },
    { what: 'psychic signature (r = s = 0)', token: `${header}.${payload}.${base64url.encode(new Uint8Array(64))}` },
    { what: 'payload tampered: sub changed to another user', token: `${header}.${tamperedPayload({ sub: 'mallory' })}.${signature}` },
    { what: 'payload tampered: super-user role added', token: `${header}.${tamperedPayload({ roles: ['sso:super-user'] })}.${signature}` },
    { what: 'payload tampered: exp extended', token: `${header}.${tamperedPayload({ exp: nowSeconds() + 86_400 * 365 })}.${signature}` },
    { what: 'signature of another valid token', token: `${header}.${payload}.${otherValid[2]}` },
    { what: 'payload of another valid token under this signature', token: `${header}.${otherValid[1]}.${signature}` },
    { what: 'four parts', token: `${valid}.${signature}` },
    { what: 'a JWE (five parts) instead of a JWS', token: jwe },
    { what: 'the JSON serialization of a valid JWS', token: JSON.stringify({ protected: header, payload, signature }) },
    { what: 'base64 (not base64url) alphabet', token: `${header}.${payload}.${Buffer.from(signature, 'base64url').toString('base64')}` },
    // The same signature with base64 padding: jose would decode it; a second spelling of a token.
    { what: 'a padded signature', token: `${valid}==` },
    { what: 'a padded payload', token: `${header}.${payload}=.${signature}` }
  ]
}

// ---- the tests -----------------------------------------------------------------------------

describe('JWT attack corpus against a JWKS-file app (ES256 and RS256 keys), through the HTTP API', () => {
  test('control: a valid token writes in each delivery (bearer, Zato body, target_ust of a super-user)', async (t) => {
    const app = await jwksFileApp(t)
    const superUser = await sign(keys.es.privateKey, { alg: 'ES256', kid: 'k1' }, { sub: 'root', sid: 'root-session', extra: { roles: ['sso:super-user'] } })
    const rsaToken = await sign(keys.rsa.privateKey, { alg: 'RS256', kid: 'r1' }, { sid: 'control-rsa' })
    const valid = await sign(keys.es.privateKey, { alg: 'ES256', kid: 'k1' }, { sid: 'control' })
    for (const delivery of ['bearer', 'zato-body', 'target'] as const) {
      const reply = await attempt(app, delivery, valid, superUser, `control-${delivery}`)
      assert.equal(reply.statusCode, 200, `${delivery}: ${JSON.stringify(reply.body)}`)
    }
    assert.equal((await attempt(app, 'bearer', rsaToken, superUser, 'control-rsa')).statusCode, 200, 'RS256 with the r1 key')
  })

  test('every attack token is 401 E007001 in every delivery (an oversized one as target_ust is 400 E008002), and nothing is stored', async (t) => {
    const app = await jwksFileApp(t)
    const superUser = await sign(keys.es.privateKey, { alg: 'ES256', kid: 'k1' }, { sub: 'root', sid: 'root-session', extra: { roles: ['sso:super-user'] } })
    // The victim's session holds data, and the valid token is in the verified-token cache:
    // a tampered variant of a cached token must not be taken for it.
    const victim = await sign(keys.es.privateKey, { alg: 'ES256', kid: 'k1' })
    assert.equal((await attempt(app, 'bearer', victim, superUser, 'victim-data')).statusCode, 200)
    // The super-user's first use indexes its session (logout by sub); that is no attack's doing.
    assert.equal((await attempt(app, 'bearer', superUser, superUser, 'root-data')).statusCode, 200)
    const cases = await corpus(keys)
    const failures: string[] = []
    for (const item of cases) {
      for (const delivery of ['bearer', 'zato-body', 'target'] as const) {
        // A token with quotes or spaces (the JSON serialization) cannot be one bearer value; it still goes in bodies.
        if (delivery === 'bearer' && /[\s"]/.test(item.token)) continue
        const [status, code] = delivery === 'target' && item.asTarget !== undefined ? item.asTarget : [401, 'E007001']
        try {
          await assertRefused(app, async () => await attempt(app, delivery, item.token, superUser), status, code, `${item.what} (${delivery})`)
        } catch (error) {
          failures.push((error as Error).message.split('\n')[0]!)
        }
      }
    }
    assert.deepEqual(failures, [])
    t.diagnostic(`${cases.length} attack tokens, each in up to 3 deliveries`)
  })

  test('Authorization header forms: empty bearer, bare scheme, two bearer values, other schemes: 401 E007001, nothing stored', async (t) => {
    const app = await jwksFileApp(t)
    const a = await sign(keys.es.privateKey, { alg: 'ES256', kid: 'k1' })
    const b = await sign(keys.es.privateKey, { alg: 'ES256', kid: 'k1' }, { sub: 'bob', sid: 'bob-session' })
    const forms: Array<[string, string | string[]]> = [
      ['an empty bearer', 'Bearer '],
      ['the scheme alone', 'Bearer'],
      ['an empty header', ''],
      ['two bearer values separated by a space', `Bearer ${a} ${b}`],
      ['two bearer values separated by a comma', `Bearer ${a}, Bearer ${b}`],
      ['two tokens joined by a comma', `Bearer ${a},${b}`],
      ['Basic with a token', `Basic ${a}`],
      ['the token without a scheme', a],
      ['a tab instead of a space', `Bearer\t${a}`],
      ['a quoted token', `Bearer "${a}"`]
    ]
    for (const [what, authorization] of forms) {
      await assertRefused(app, async () => await withAuthorization(app, authorization), 401, 'E007001', what)
    }
  })

  // Node keeps the first of two Authorization headers and drops the second (inject and real
  // sockets alike), so the service authenticates with whichever came first. A proxy in front
  // that checks or logs the other one is then fooled; two credentials should be refused.
  test('two Authorization headers: 401 E007001, nothing stored', async (t) => {
    const app = await jwksFileApp(t)
    const a = await sign(keys.es.privateKey, { alg: 'ES256', kid: 'k1' })
    const b = await sign(keys.es.privateKey, { alg: 'ES256', kid: 'k1' }, { sub: 'bob', sid: 'bob-session' })
    await assertRefused(app, async () => await withAuthorization(app, [`Bearer ${a}`, `Bearer ${b}`]), 401, 'E007001', 'two Authorization headers')
  })

  test('a UST of a session ended by DELETE /sso/session is 401 E007001 in every delivery, nothing stored', async (t) => {
    const app = await jwksFileApp(t)
    const superUser = await sign(keys.es.privateKey, { alg: 'ES256', kid: 'k1' }, { sub: 'root', sid: 'root-session', extra: { roles: ['sso:super-user'] } })
    const ended = await sign(keys.es.privateKey, { alg: 'ES256', kid: 'k1' }, { sid: 'ended-session' })
    // A token of the same session that the service has never seen (not in its cache).
    const unseen = await sign(keys.es.privateKey, { alg: 'ES256', kid: 'k1' }, { sid: 'ended-session', extra: { jti: 'another' } })
    assert.equal((await attempt(app, 'bearer', ended, superUser, 'before-the-end')).statusCode, 200)
    assert.equal((await attempt(app, 'bearer', superUser, superUser, 'root-data')).statusCode, 200)
    const reply = await app.inject({ method: 'DELETE', url: '/sso/session', headers: { authorization: `Bearer ${ended}` }, payload: { current_app: 'CRM' } })
    assert.equal(reply.statusCode, 200, reply.body)
    for (const token of [ended, unseen]) {
      for (const delivery of ['bearer', 'zato-body', 'target'] as const) {
        await assertRefused(app, async () => await attempt(app, delivery, token, superUser), 401, 'E007001', `ended session, ${delivery}`)
      }
    }
  })
})

describe('JWT attack corpus against an HS256-secret app', () => {
  test('alg none, HS512 with the secret, asymmetric tokens, tampering: 401 E007001, nothing stored', async (t) => {
    const app = await build(t, redisOverrides())
    const secret = utf8(TEST_SECRET)
    const superUser = await sign(secret, { alg: 'HS256' }, { sub: 'root', sid: 'root-session', extra: { roles: ['sso:super-user'] } })
    const valid = await sign(secret, { alg: 'HS256' })
    assert.equal((await attempt(app, 'bearer', valid, superUser, 'victim-data')).statusCode, 200, 'control')
    assert.equal((await attempt(app, 'bearer', superUser, superUser, 'root-data')).statusCode, 200, 'super-user control')
    const [header, payload, signature] = parts(valid)
    const stranger = await generateKeyPair('ES256')
    const cases: AttackCase[] = [
      { what: 'alg none', token: unsigned({ alg: 'none' }) },
      { what: 'HS512 with the right secret (only HS256 is allowed)', token: await sign(secret, { alg: 'HS512' }) },
      { what: 'HS384 with the right secret', token: await sign(secret, { alg: 'HS384' }) },
      { what: 'ES256 signed by the attacker', token: await sign(stranger.privateKey, { alg: 'ES256', kid: 'k1' }) },
      { what: 'HS256 with another secret', token: await sign(utf8('another-secret-that-is-at-least-32-bytes!'), { alg: 'HS256' }) },
      { what: 'HS256 with a one-word secret', token: await sign(utf8('secret'), { alg: 'HS256' }) },
      { what: 'payload tampered (super-user role)', token: `${header}.${base64url.encode(JSON.stringify({ ...JSON.parse(Buffer.from(payload, 'base64url').toString()) as JWTPayload, roles: ['sso:super-user'] }))}.${signature}` },
      { what: 'signature stripped', token: `${header}.${payload}.` },
      { what: 'crit with an unknown extension', token: await sign(secret, { alg: 'HS256', crit: ['x-unknown'], 'x-unknown': 1 }, {}, { 'x-unknown': true }) },
      { what: 'expired', token: await sign(secret, { alg: 'HS256' }, { exp: nowSeconds() - 300 }) }
    ]
    for (const item of cases) {
      for (const delivery of ['bearer', 'zato-body', 'target'] as const) {
        await assertRefused(app, async () => await attempt(app, delivery, item.token, superUser), 401, 'E007001', `${item.what} (${delivery})`)
      }
    }
  })
})

// ---- remote JWKS ---------------------------------------------------------------------------

interface JwksServer {
  url: string
  fetches: () => number
  close: () => Promise<void>
}

/** A JWKS endpoint on a free loopback port that answers with `handler`. */
async function jwksServer (t: TestContext, handler: (request: IncomingMessage, response: ServerResponse) => void): Promise<JwksServer> {
  let count = 0
  const server: Server = createServer((request, response) => {
    count++
    handler(request, response)
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const close = async () => {
    server.closeAllConnections()
    await new Promise<void>((resolve) => server.close(() => resolve()))
  }
  t.after(async () => { if (server.listening) await close() })
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/jwks.json`, fetches: () => count, close }
}

async function remoteApp (t: TestContext, url: string): Promise<App> {
  return await build(t, { ...redisOverrides(), SSO_JWT_SECRET: undefined, SSO_JWKS_URL: url })
}

async function bearerWrite (app: App, token: string): Promise<Sent> {
  return await attempt(app, 'bearer', token, token)
}

describe('JWT verification against a remote JWKS (SSO_JWKS_URL)', () => {
  test('JWKS endpoint down (closed port): 503 E011003 with Retry-After, not 401, quickly; nothing stored', async (t) => {
    const app = await remoteApp(t, `http://127.0.0.1:${await freePort()}/jwks.json`)
    const token = await sign(keys.es.privateKey, { alg: 'ES256', kid: 'k1' })
    const started = Date.now()
    const reply = await assertRefused(app, async () => await bearerWrite(app, token), 503, 'E011003', 'JWKS down')
    assert.ok(Date.now() - started < 2500, 'answers within the JWKS timeout')
    assert.equal(reply.headers['retry-after'], '1')
    for (const delivery of ['zato-body', 'target'] as const) {
      await assertRefused(app, async () => await attempt(app, delivery, token, token), 503, 'E011003', `JWKS down (${delivery})`)
    }
  })

  test('JWKS endpoint down: a token that can be judged without keys is still 401 E007001 (garbage, alg none, HS256, oversized)', async (t) => {
    const app = await remoteApp(t, `http://127.0.0.1:${await freePort()}/jwks.json`)
    const tokens: Array<[string, string]> = [
      ['garbage', 'garbage'],
      ['alg none', unsigned({ alg: 'none', kid: 'k1' })],
      ['HS256 keyed with the public key', await sign(utf8(await exportSPKI(keys.es.publicKey)), { alg: 'HS256', kid: 'k1' })],
      ['oversized', 'a.b.'.padEnd(MAX_UST_LENGTH + 10, 'c')]
    ]
    for (const [what, token] of tokens) await assertRefused(app, async () => await bearerWrite(app, token), 401, 'E007001', what)
  })

  test('JWKS endpoint that never answers: 503 E011003 after the fetch timeout, not a hang', { timeout: 15_000 }, async (t) => {
    const server = await jwksServer(t, () => { /* never answers */ })
    const app = await remoteApp(t, server.url)
    const started = Date.now()
    await assertRefused(app, async () => await bearerWrite(app, await sign(keys.es.privateKey, { alg: 'ES256', kid: 'k1' })), 503, 'E011003', 'JWKS hangs')
    assert.ok(Date.now() - started < 5000, `answered in ${Date.now() - started} ms`)
  })

  test('JWKS endpoint serving JSON that is not a key set: 503 E011003', async (t) => {
    const server = await jwksServer(t, (_request, response) => {
      response.writeHead(200, { 'content-type': 'application/json' }).end('{"keys":"none here"}')
    })
    const app = await remoteApp(t, server.url)
    await assertRefused(app, async () => await bearerWrite(app, await sign(keys.es.privateKey, { alg: 'ES256', kid: 'k1' })), 503, 'E011003', 'JWKS not a key set')
  })

  // jose reports a non-JSON body and a non-200 status as a plain JOSEError: the IdP's outage,
  // not the client's fault (a client that logs the user out on 401 would do so for nothing).
  for (const [what, status, body] of [
    ['garbage (not JSON)', 200, 'this is not json <html>'],
    ['HTTP 500', 500, 'Internal Server Error'],
    ['HTTP 404', 404, 'not found'],
    ['a redirect', 302, '']
  ] as const) {
    test(`JWKS endpoint serving ${what}: 503 E011003, not 401`, async (t) => {
      const server = await jwksServer(t, (_request, response) => {
        response.writeHead(status, { 'content-type': 'application/json', location: 'http://127.0.0.1:1/jwks.json' }).end(body)
      })
      const app = await remoteApp(t, server.url)
      await assertRefused(app, async () => await bearerWrite(app, await sign(keys.es.privateKey, { alg: 'ES256', kid: 'k1' })), 503, 'E011003', `JWKS ${what}`)
    })
  }

  test('once fetched, keys are cached: the JWKS endpoint going down does not stop valid tokens, and attack tokens stay 401', async (t) => {
    const server = await jwksServer(t, (_request, response) => {
      response.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(keys.jwks))
    })
    const app = await remoteApp(t, server.url)
    assert.equal((await bearerWrite(app, await sign(keys.es.privateKey, { alg: 'ES256', kid: 'k1' }, { sid: 'cached-1' }))).statusCode, 200)
    assert.equal(server.fetches(), 1)
    await server.close()
    // A new token (not in the verified-token cache) still verifies with the cached key set.
    assert.equal((await bearerWrite(app, await sign(keys.es.privateKey, { alg: 'ES256', kid: 'k1' }, { sid: 'cached-2' }))).statusCode, 200)
    const stranger = await generateKeyPair('ES256')
    await assertRefused(app, async () => await bearerWrite(app, await sign(stranger.privateKey, { alg: 'ES256', kid: 'k1' })), 401, 'E007001', 'stranger key, JWKS down, key cached')
    // An unknown kid may be a key made current a moment ago: it waits for a refetch, which
    // cannot be had, so the answer is 503 (try again), not 401 (drop the token) (issue 17).
    await assertRefused(app, async () => await bearerWrite(app, await sign(keys.es.privateKey, { alg: 'ES256', kid: 'rotated-away' })), 503, 'E011003', 'unknown kid, JWKS down')
  })

  test('a flood of unknown kids does not make the service hammer the JWKS endpoint', async (t) => {
    const server = await jwksServer(t, (_request, response) => {
      response.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(keys.jwks))
    })
    const app = await remoteApp(t, server.url)
    // Each unknown kid waits for one refetch that starts after it arrived: a wave of them at
    // once shares one (after the first fetch, which a wave that finds no keys shares too).
    for (const wave of [1, 2]) {
      const before = server.fetches()
      const tokens = await Promise.all(Array.from({ length: 25 }, async (_, index) => await sign(keys.es.privateKey, { alg: 'ES256', kid: `random-${wave}-${index}-${Math.random()}` })))
      const replies = await Promise.all(tokens.map(async (token) => await bearerWrite(app, token)))
      for (const reply of replies) assertAnswer(reply, 401, 'E007001', `unknown kid, wave ${wave}`)
      assert.ok(server.fetches() - before <= 2, `${server.fetches() - before} JWKS fetches for a wave of 25 unknown kids`)
    }
  })
})
