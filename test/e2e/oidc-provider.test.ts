import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'
import type { Redis } from 'ioredis'
import { decodeJwt, decodeProtectedHeader } from 'jose'
import type { Config } from '../../src/config.ts'
import { sessionIdOf } from '../../src/ust.ts'
import { CLIENT_ID, OpenIdProvider, RESOURCE, type Tokens } from '../fixtures/oidc-provider.ts'
import { RedisServer } from '../fixtures/redis.ts'
import { call, listen, type Listening, type Reply } from './http.ts'

// Interop with a real OpenID Provider (panva's oidc-provider, ES256, code flow with PKCE, JWT
// access tokens, RP-initiated logout with its own back-channel delivery) against the service
// listening on a real socket with a real redis-server (issue 17).

const P = '/sso/session/attr'
const U = '/sso/user/attr'
const PREFIX = 'oidc-interop:'

let redis: RedisServer
let inspect: Redis
let op: OpenIdProvider
let service: Listening

function serviceConfig (overrides: Partial<Config> = {}): Partial<Config> {
  return {
    SSO_STORE: 'redis',
    REDIS_URL: redis.url,
    SSO_KEY_PREFIX: PREFIX,
    SSO_JWT_SECRET: undefined,
    SSO_JWKS_URL: op.jwksUri,
    SSO_ISSUER: op.issuer,
    SSO_AUDIENCE: CLIENT_ID,
    SSO_RESOURCE: RESOURCE,
    // Shorter than the default (1 s) so that the outage test's waits after failed fetches stay
    // short; a rotation never waits for it (a fetch that brings new keys lets the next start at once).
    SSO_JWKS_REFETCH_INTERVAL_MS: 250,
    ...overrides
  }
}

before(async () => {
  redis = await RedisServer.start()
  inspect = redis.client()
  op = await OpenIdProvider.start()
  service = await listen(undefined, serviceConfig())
  op.configure(`${service.base}/sso/backchannel-logout`)
})

after(async () => {
  await service?.app.close()
  await op?.close()
  inspect?.disconnect()
  await redis?.close()
})

function refused (reply: Reply, status: number, code: string, message?: RegExp): void {
  assert.equal(reply.status, status, reply.text)
  assert.deepEqual(reply.body?.sub_status, [code], reply.text)
  if (message !== undefined) assert.match(reply.body?.message ?? '', message)
}

async function write (ust: string, name = 'theme', value: unknown = 'dark', base = service.base): Promise<Reply> {
  return await call(base, 'PUT', P, { ust, body: { current_app: 'CRM', name, value } })
}

async function read (ust: string, name = 'theme', base = service.base): Promise<Reply> {
  return await call(base, 'GET', `${P}?current_app=CRM&name=${name}`, { ust })
}

async function backchannelLogout (logoutToken: string, base = service.base): Promise<Reply> {
  const started = performance.now()
  const response = await fetch(`${base}/sso/backchannel-logout`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ logout_token: logoutToken })
  })
  const text = await response.text()
  return { status: response.status, headers: Object.fromEntries(response.headers), text, body: JSON.parse(text) as Reply['body'], ms: performance.now() - started }
}

const sidOf = (tokens: Tokens) => decodeJwt(tokens.idToken).sid as string
const sessionKey = (tokens: Tokens, suffix: 'a' | 't') => `${PREFIX}{${sessionIdOf(op.issuer, sidOf(tokens))}}:${suffix}`

describe('interop with oidc-provider (code flow, ES256, back-channel logout)', () => {
  test('the ID token and the access token with sid are USTs of one session; an access token without sid gets user attributes, and for session attributes a 401 naming the claim and the setting', async () => {
    const alice = await op.login('alice')
    assert.equal(decodeProtectedHeader(alice.accessToken).typ, 'at+jwt')
    assert.equal(decodeJwt(alice.accessToken).aud, RESOURCE)
    assert.equal(decodeJwt(alice.accessToken).sid, sidOf(alice), 'extraTokenClaims put the sid in the access token')
    assert.equal((await write(alice.idToken)).status, 200)
    assert.equal((await read(alice.accessToken)).body?.value, 'dark', 'the access token names the same session')

    op.accessTokenSid = false
    try {
      const bob = await op.login('bob')
      assert.equal(decodeJwt(bob.accessToken).sid, undefined)
      refused(await write(bob.accessToken), 401, 'E007001', /session claim "sid" \(SSO_SESSION_CLAIM\)/)
      assert.equal((await call(service.base, 'PUT', U, { ust: bob.accessToken, body: { current_app: 'CRM', name: 'lang', value: 'fr' } })).status, 200)
      assert.equal((await call(service.base, 'GET', `${U}?current_app=CRM&name=lang`, { ust: bob.idToken })).body?.value, 'fr', 'one user, whichever token')
    } finally {
      op.accessTokenSid = true
    }
  })

  test('RP-initiated logout: the provider\'s back-channel delivery ends the session and purges its attributes', async () => {
    const carol = await op.login('carol')
    assert.equal((await write(carol.idToken)).status, 200)
    assert.equal(await inspect.exists(sessionKey(carol, 'a')), 1)
    const delivered = op.backchannel.length
    await op.logout(carol)
    assert.deepEqual(op.backchannel.slice(delivered), [{ ok: true, sid: sidOf(carol) }])
    assert.equal(await inspect.exists(sessionKey(carol, 'a')), 0, 'attributes purged')
    assert.equal(await inspect.exists(sessionKey(carol, 't')), 1, 'session ended')
    refused(await read(carol.idToken), 401, 'E007001')
    refused(await read(carol.accessToken), 401, 'E007001')
  })

  test('three key rotations in quick succession: the logout token under each newest key is honoured, a UST under each newest key accepted at once, one JWKS fetch each', async (t) => {
    let previous = await op.login('rotating-0')
    assert.equal((await write(previous.idToken)).status, 200)
    const delivered = op.backchannel.length
    const figures: string[] = []
    for (const rotation of [1, 2, 3]) {
      const fetchesBefore = op.jwksRequests
      const switchedAt = performance.now()
      const kid = await op.rotate()
      let firstAcceptedMs: number
      let serviceMs: number
      let current: Tokens
      if (rotation % 2 === 1) {
        // The first token the service sees under the new key is a logout token.
        await op.logout(previous)
        firstAcceptedMs = performance.now() - switchedAt
        const outcome = op.backchannel.at(-1)
        assert.deepEqual(outcome, { ok: true, sid: sidOf(previous) }, `rotation ${rotation}: logout honoured`)
        serviceMs = NaN
        current = await op.login(`rotating-${rotation}`)
        assert.equal(decodeProtectedHeader(current.idToken).kid, kid)
        assert.equal((await write(current.idToken)).status, 200)
      } else {
        // The first token the service sees under the new key is a UST.
        current = await op.login(`rotating-${rotation}`)
        assert.equal(decodeProtectedHeader(current.idToken).kid, kid)
        const reply = await write(current.idToken)
        firstAcceptedMs = performance.now() - switchedAt
        serviceMs = reply.ms
        assert.equal(reply.status, 200, `rotation ${rotation}: ${reply.text}`)
        await op.logout(previous)
        assert.deepEqual(op.backchannel.at(-1), { ok: true, sid: sidOf(previous) }, `rotation ${rotation}: logout honoured`)
      }
      assert.equal((await read(current.accessToken)).status, 200, 'the access token under the new key')
      assert.equal(await inspect.exists(sessionKey(previous, 'a')), 0, `rotation ${rotation}: the logged-out session's attributes are purged`)
      refused(await read(previous.idToken), 401, 'E007001')
      const fetches = op.jwksRequests - fetchesBefore
      assert.equal(fetches, 1, `rotation ${rotation}: one JWKS fetch`)
      const fetchedMs = op.jwksRequestTimes.at(-1)! - switchedAt
      figures.push(`rotation ${rotation} (first seen in ${rotation % 2 === 1 ? 'a logout token' : 'a UST'}): key switch to first accepted token ${firstAcceptedMs.toFixed(0)} ms (the provider's login or logout included; the service fetched the JWKS at ${fetchedMs.toFixed(0)} ms)${Number.isNaN(serviceMs) ? '' : `, the service's request ${serviceMs.toFixed(1)} ms`}, ${fetches} JWKS fetch`)
      previous = current
    }
    const lost = op.backchannel.slice(delivered).filter((outcome) => !outcome.ok)
    assert.deepEqual(lost, [], 'no logout lost')
    figures.push(`lost logouts: ${lost.length} of ${op.backchannel.length - delivered}`)
    for (const line of figures) t.diagnostic(line)
  })

  test('type confusion is refused in every direction, with a message that says so', async () => {
    const dave = await op.login('dave')
    const logoutToken = await op.logoutToken('dave', sidOf(dave))
    assert.equal(decodeProtectedHeader(logoutToken).typ, 'logout+jwt')
    assert.equal((await write(dave.idToken)).status, 200)

    refused(await write(logoutToken), 401, 'E007001', /logout token is not a UST/)
    refused(await call(service.base, 'GET', `${U}?current_app=CRM&name=x`, { ust: logoutToken }), 401, 'E007001', /logout token is not a UST/)
    refused(await backchannelLogout(dave.idToken), 400, 'E008002', /an ID token \(a UST\) is not a logout token/)
    refused(await backchannelLogout(dave.accessToken), 400, 'E008002', /an access token \(typ at\+jwt\) is not a logout token/)
    assert.equal((await read(dave.idToken)).body?.value, 'dark', 'no refused token ended the session')

    const idOnly = await listen(undefined, serviceConfig({ SSO_TOKEN_TYPES: 'id_token' }))
    const accessOnly = await listen(undefined, serviceConfig({ SSO_TOKEN_TYPES: 'access_token' }))
    const otherResource = await listen(undefined, serviceConfig({ SSO_RESOURCE: 'urn:another:api' }))
    const otherClient = await listen(undefined, serviceConfig({ SSO_AUDIENCE: 'another-client', SSO_RESOURCE: RESOURCE }))
    try {
      refused(await read(dave.accessToken, 'theme', idOnly.base), 401, 'E007001', /access token \(typ at\+jwt\) is not accepted as a UST here \(SSO_TOKEN_TYPES=id_token\)/)
      assert.equal((await read(dave.idToken, 'theme', idOnly.base)).status, 200)
      refused(await read(dave.idToken, 'theme', accessOnly.base), 401, 'E007001', /ID token is not accepted as a UST here \(SSO_TOKEN_TYPES=access_token\)/)
      assert.equal((await read(dave.accessToken, 'theme', accessOnly.base)).status, 200)
      refused(await read(dave.accessToken, 'theme', otherResource.base), 401, 'E007001', /access token's aud names no resource in SSO_RESOURCE/)
      refused(await read(dave.idToken, 'theme', otherClient.base), 401, 'E007001', /ID token's aud names no client id in SSO_AUDIENCE/)
      assert.equal((await read(dave.accessToken, 'theme', otherClient.base)).status, 200, 'an access token is judged by its resource, not the client id')
    } finally {
      await Promise.all([idOnly, accessOnly, otherResource, otherClient].map(async ({ app }) => await app.close()))
    }
    assert.equal((await backchannelLogout(logoutToken)).status, 200, 'the logout token where it belongs')
    refused(await read(dave.idToken), 401, 'E007001')
  })

  test('the JWKS endpoint down: a token under a new key is 503 E011003 on USTs and on the back-channel logout (not 401/400), known keys keep working, then it recovers', async () => {
    const erin = await op.login('erin')
    assert.equal((await write(erin.idToken)).status, 200)
    op.jwksDown = true
    try {
      await op.rotate()
      const frank = await op.login('frank')
      const unavailable = await write(frank.idToken)
      refused(unavailable, 503, 'E011003')
      assert.ok(unavailable.headers['retry-after'] !== undefined, 'Retry-After')
      refused(await read(frank.accessToken), 503, 'E011003')
      const logoutToken = await op.logoutToken('frank', sidOf(frank))
      refused(await backchannelLogout(logoutToken), 503, 'E011003')
      const delivered = op.backchannel.length
      await op.logout(frank)
      assert.match(op.backchannel[delivered]?.error ?? '', /got: 503/, 'the provider was told to try again, not that the token is bad')
      assert.equal((await read(erin.idToken)).status, 200, 'a known key still verifies')
      op.jwksDown = false
      assert.equal((await read(frank.accessToken)).status, 200, 'recovered')
      // The provider's retry (here: the same kind of token, made by its own code) now lands.
      assert.equal((await backchannelLogout(logoutToken)).status, 200)
      refused(await read(frank.idToken), 401, 'E007001')
    } finally {
      op.jwksDown = false
    }
  })
})
