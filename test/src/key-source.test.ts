import assert from 'node:assert/strict'
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { describe, test, type TestContext } from 'node:test'
import { setTimeout as sleep } from 'node:timers/promises'
import { errors as joseErrors, exportJWK, generateKeyPair, jwtVerify, SignJWT, type CryptoKey, type JWK } from 'jose'
import { createRemoteKeySet, KeySourceUnavailable, type RemoteKeySetOptions } from '../../src/key-source.ts'

// The shared remote key set (src/key-source.ts) against a JWKS endpoint on loopback whose key
// set the test changes, as an identity provider's rotation does.

interface Key {
  kid: string
  privateKey: CryptoKey
  jwk: JWK
}

async function newKey (kid: string): Promise<Key> {
  const { privateKey, publicKey } = await generateKeyPair('ES256', { extractable: true })
  return { kid, privateKey, jwk: { ...await exportJWK(publicKey), kid, alg: 'ES256', use: 'sig' } }
}

async function tokenUnder (key: Pick<Key, 'privateKey'>, kid: string): Promise<string> {
  return await new SignJWT({ sub: 'alice' }).setProtectedHeader({ alg: 'ES256', kid }).setIssuedAt().setExpirationTime('5m').sign(key.privateKey)
}

interface Endpoint {
  url: URL
  published: Key[]
  mode: 'up' | 'down' | 'hang'
  requests: number
  /** Serve the keys in another order on every request. */
  reorder: boolean
}

async function jwksEndpoint (t: TestContext, published: Key[]): Promise<Endpoint> {
  const endpoint: Endpoint = { url: new URL('http://127.0.0.1/'), published, mode: 'up', requests: 0, reorder: false }
  const server: Server = createServer((_request, response) => {
    endpoint.requests++
    if (endpoint.mode === 'hang') return
    if (endpoint.mode === 'down') {
      response.writeHead(503).end()
      return
    }
    const keys = endpoint.published.map((key) => key.jwk)
    if (endpoint.reorder && endpoint.requests % 2 === 0) keys.reverse()
    response.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ keys }))
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  endpoint.url = new URL(`http://127.0.0.1:${(server.address() as AddressInfo).port}/jwks`)
  t.after(async () => {
    server.closeAllConnections()
    await new Promise<void>((resolve) => server.close(() => resolve()))
  })
  return endpoint
}

const OPTIONS: RemoteKeySetOptions = { timeoutMs: 500, refetchIntervalMs: 300, maxAgeMs: 60_000 }

async function verifies (keySet: ReturnType<typeof createRemoteKeySet>, token: string): Promise<boolean> {
  try {
    await jwtVerify(token, keySet, { algorithms: ['ES256'] })
    return true
  } catch (error) {
    if (error instanceof KeySourceUnavailable) throw error
    return false
  }
}

describe('createRemoteKeySet', () => {
  test('a key made current right after a fetch is fetched at once for the first token under it (no cool-down), one fetch per rotation', async (t) => {
    const endpoint = await jwksEndpoint(t, [await newKey('k0')])
    const keySet = createRemoteKeySet(endpoint.url, OPTIONS)
    assert.equal(await verifies(keySet, await tokenUnder(endpoint.published[0]!, 'k0')), true)
    for (const kid of ['k1', 'k2', 'k3']) {
      const key = await newKey(kid)
      endpoint.published = [key, ...endpoint.published]
      const before = endpoint.requests
      const started = performance.now()
      assert.equal(await verifies(keySet, await tokenUnder(key, kid)), true, kid)
      assert.ok(performance.now() - started < OPTIONS.refetchIntervalMs, 'no wait for the interval after a fetch that brought new keys')
      assert.equal(endpoint.requests - before, 1, `${kid}: one fetch`)
    }
    assert.equal(await verifies(keySet, await tokenUnder(endpoint.published.at(-1)!, 'k0')), true, 'an old key verifies while it is published')
  })

  test('single flight: 50 tokens with unknown kids at once cost one fetch, and every one waits for it', async (t) => {
    const endpoint = await jwksEndpoint(t, [await newKey('k0')])
    const keySet = createRemoteKeySet(endpoint.url, OPTIONS)
    assert.equal(await verifies(keySet, await tokenUnder(endpoint.published[0]!, 'k0')), true)
    const fresh = await newKey('k1')
    endpoint.published = [fresh, ...endpoint.published]
    const tokens = await Promise.all(Array.from({ length: 50 }, async (_, index) => await tokenUnder(fresh, index % 2 === 0 ? 'k1' : `bogus-${index}`)))
    const before = endpoint.requests
    const results = await Promise.all(tokens.map(async (token) => await verifies(keySet, token)))
    assert.equal(endpoint.requests - before, 1)
    assert.deepEqual(results, tokens.map((_, index) => index % 2 === 0))
  })

  for (const reorder of [false, true]) {
    test(`a flood of made-up kids costs one fetch per interval, not one per token${reorder ? ' (a JWKS served in another order each time is no rotation)' : ''}`, async (t) => {
      await flood(t, reorder)
    })
  }

  async function flood (t: TestContext, reorder: boolean): Promise<void> {
    const endpoint = await jwksEndpoint(t, [await newKey('k0'), await newKey('k1')])
    endpoint.reorder = reorder
    const keySet = createRemoteKeySet(endpoint.url, OPTIONS)
    const key = endpoint.published[0]!
    assert.equal(await verifies(keySet, await tokenUnder(key, 'k0')), true)
    const before = endpoint.requests
    const started = performance.now()
    let refused = 0
    while (performance.now() - started < 1000) {
      const wave = await Promise.all(Array.from({ length: 10 }, async () => await verifies(keySet, await tokenUnder(key, `made-up-${Math.random()}`))))
      refused += wave.filter((ok) => !ok).length
    }
    const fetches = endpoint.requests - before
    // 1 s at one fetch per 300 ms after the first unchanged one: at most 1 + ceil(1000 / 300).
    assert.ok(fetches <= 5, `${fetches} fetches for ${refused} made-up kids in 1 s`)
    assert.ok(refused >= 20, `${refused} refused`)
  }

  test('the endpoint down: an unknown kid is KeySourceUnavailable (never a verdict on the token), known kids keep verifying', async (t) => {
    const endpoint = await jwksEndpoint(t, [await newKey('k0')])
    const keySet = createRemoteKeySet(endpoint.url, OPTIONS)
    const key = endpoint.published[0]!
    assert.equal(await verifies(keySet, await tokenUnder(key, 'k0')), true)
    endpoint.mode = 'down'
    await assert.rejects(verifies(keySet, await tokenUnder(key, 'k-new')), KeySourceUnavailable)
    assert.equal(await verifies(keySet, await tokenUnder(key, 'k0')), true)
    endpoint.mode = 'up'
    const fresh = await newKey('k-new')
    endpoint.published = [fresh, key]
    assert.equal(await verifies(keySet, await tokenUnder(fresh, 'k-new')), true, 'recovered (after the interval)')
  })

  test('an endpoint that never answers: KeySourceUnavailable after the timeout', async (t) => {
    const endpoint = await jwksEndpoint(t, [await newKey('k0')])
    endpoint.mode = 'hang'
    const keySet = createRemoteKeySet(endpoint.url, OPTIONS)
    const started = performance.now()
    await assert.rejects(verifies(keySet, await tokenUnder(endpoint.published[0]!, 'k0')), KeySourceUnavailable)
    const ms = performance.now() - started
    assert.ok(ms >= OPTIONS.timeoutMs - 50 && ms < OPTIONS.timeoutMs + 1000, `${ms} ms`)
  })

  test('a removed key stops verifying within maxAge; past maxAge a set that cannot be refreshed is not used', async (t) => {
    const endpoint = await jwksEndpoint(t, [await newKey('k0'), await newKey('k1')])
    const keySet = createRemoteKeySet(endpoint.url, { ...OPTIONS, maxAgeMs: 400 })
    const [k0, k1] = endpoint.published as [Key, Key]
    assert.equal(await verifies(keySet, await tokenUnder(k1, 'k1')), true)
    endpoint.published = [k0]
    assert.equal(await verifies(keySet, await tokenUnder(k1, 'k1')), true, 'still cached')
    await sleep(450)
    assert.equal(await verifies(keySet, await tokenUnder(k1, 'k1')), false, 'removed at the provider: gone by maxAge')
    await sleep(450)
    endpoint.mode = 'down'
    await assert.rejects(verifies(keySet, await tokenUnder(k0, 'k0')), KeySourceUnavailable)
  })

  test('a response that is not a key set, or not JSON, is KeySourceUnavailable', async (t) => {
    const server = createServer((request, response) => {
      response.writeHead(200, { 'content-type': 'application/json' }).end(request.url === '/garbage' ? '<html>' : '{"keys":"none"}')
    })
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
    t.after(() => server.close())
    const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
    const key = await newKey('k0')
    for (const path of ['/garbage', '/not-a-set']) {
      const keySet = createRemoteKeySet(new URL(`${base}${path}`), OPTIONS)
      await assert.rejects(verifies(keySet, await tokenUnder(key, 'k0')), KeySourceUnavailable, path)
    }
    assert.ok(new joseErrors.JWKSNoMatchingKey() instanceof joseErrors.JOSEError)
  })
})
