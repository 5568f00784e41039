import assert from 'node:assert/strict'
import { randomUUID } from 'node:crypto'
import { after, before, describe, test, type TestContext } from 'node:test'
import { SignJWT } from 'jose'
import type { App } from '../src/app.ts'
import { StoreFullError, StoreUnavailableError } from '../src/errors.ts'
import { BACKCHANNEL_LOGOUT_EVENT } from '../src/logout-token.ts'
import { MemoryStore } from '../src/store/memory-store.ts'
import type { Store } from '../src/store/types.ts'
import { build, mintUst, TEST_AUDIENCE, TEST_ISSUER, TEST_SECRET } from './helper.ts'
import { conformanceProblems, documentedStatuses, operations, type DocumentedOperation } from './openapi-contract.ts'

// Each operation of openapi.yaml lists the statuses it can answer, no more and no fewer: this
// file answers each listed status of each operation with a request that provokes it (and the
// answer conforms to the document), and fails when an operation lists a status nobody here can
// provoke or when a provocation below is not listed.

interface Request {
  method: string
  url: string
  headers?: Record<string, string>
  payload?: string | Json
  /** Sent to this app rather than the provocation's. */
  via?: keyof Apps
}
type Json = Record<string, unknown>

const MAX_BATCH = 2
const MAX_VALUE_BYTES = 64
const STORE_LIMITS = { sessionIdleTtlMs: 3_600_000, sessionMaxTtlMs: 86_400_000, maxAttributesPerSession: 1000 }
const OTHER_KEYS = `k9:${Buffer.alloc(32, 9).toString('base64url')}`

/** Every store call throws this: a Redis outage (503) or a bug (500). */
function failingStore (failure: () => Error): Store {
  const store = new MemoryStore(STORE_LIMITS)
  return new Proxy(store, {
    get (target, property, receiver) {
      const value: unknown = Reflect.get(target, property, receiver)
      if (typeof value !== 'function') return value
      // Closing and the event feed are not calls that fail with the store.
      if (property === 'close' || property === 'createEventFeed') return (value as () => unknown).bind(target)
      return async () => { throw failure() }
    }
  })
}

interface Apps {
  /** Small limits (batch of 2, values of 64 bytes), no rate limit. */
  plain: App
  /** One request a minute per caller. */
  limited: App
  /** Every store call fails with a plain error: 500. */
  broken: App
  /** Every store call fails as Redis does when it is down: 503. */
  down: App
  /** Every store call fails as Redis does when it is full: 507 (the real one: test/e2e/redis-full.test.ts). */
  full: App
  /** Shares plain's store with other encryption keys: what plain encrypted no longer decrypts (422). */
  rekeyed: App
}

async function apps (t: TestContext | undefined): Promise<Apps> {
  const store = new MemoryStore(STORE_LIMITS)
  const limits = { SSO_MAX_BATCH: MAX_BATCH, SSO_MAX_VALUE_BYTES: MAX_VALUE_BYTES }
  return {
    plain: await build(t, limits, { store }),
    limited: await build(t, { SSO_RATE_LIMIT_MAX: 1 }),
    broken: await build(t, {}, { store: failingStore(() => new Error('store bug')) }),
    down: await build(t, {}, { store: failingStore(() => new StoreUnavailableError()) }),
    full: await build(t, {}, { store: failingStore(() => new StoreFullError()) }),
    rekeyed: await build(t, { ...limits, SSO_ENCRYPTION_KEYS: OTHER_KEYS }, { store })
  }
}

async function logoutToken (claims: Json): Promise<string> {
  return await new SignJWT({ events: { [BACKCHANNEL_LOGOUT_EVENT]: {} }, jti: randomUUID(), ...claims })
    .setProtectedHeader({ alg: 'HS256', typ: 'logout+jwt' }).setIssuer(TEST_ISSUER).setAudience(TEST_AUDIENCE)
    .setIssuedAt().setExpirationTime('2m').sign(new TextEncoder().encode(TEST_SECRET))
}

const bearer = (ust: string) => ({ authorization: `Bearer ${ust}` })
const FORGED = { secret: 'another-secret-that-is-at-least-32-bytes' }
const P = '/sso/session/attr'
const json = (method: string, url: string, ust: string, body: Json): Request => ({ method, url, headers: bearer(ust), payload: body })

/**
 * For one status of one operation: the app that answers it, and the requests to send in order
 * (the last one's answer must have that status). `ust` is a fresh session's token.
 */
type Provocation = (ust: string) => Promise<[keyof Apps, Request[]]>

const common = (valid: (ust: string) => Request, invalid: (ust: string) => Request, noApp: (ust: string) => Request): Record<number, Provocation> => ({
  200: async (ust) => ['plain', [valid(ust)]],
  400: async (ust) => ['plain', [invalid(ust)]],
  401: async () => ['plain', [valid(await mintUst(FORGED))]],
  403: async (ust) => ['plain', [noApp(ust)]],
  429: async (ust) => ['limited', [valid(ust), valid(ust)]],
  500: async (ust) => ['broken', [valid(ust)]],
  503: async (ust) => ['down', [valid(ust)]]
})

const setEncrypted = (ust: string) => json('PUT', P, ust, { current_app: 'CRM', name: 'secret', value: 's', encrypt: true })
const tooBig = 'x'.repeat(MAX_VALUE_BYTES + 1)
const tooMany = Array.from({ length: MAX_BATCH + 1 }, (_, index) => `n${index}`)
const query = (path: string, fields: Record<string, string | string[]>) => {
  const params = new URLSearchParams()
  for (const [key, value] of Object.entries(fields)) for (const item of [value].flat()) params.append(key, item)
  return `${path}?${params.toString()}`
}
const get = (path: string, ust: string, fields: Record<string, string | string[]>): Request => ({ method: 'GET', url: query(path, fields), headers: bearer(ust) })
const del = (path: string, ust: string, fields: Record<string, string | string[]>): Request => ({ method: 'DELETE', url: query(path, fields), headers: bearer(ust) })
/** The same Idempotency-Key sent with two different requests: the second is 422 E011008. */
const reusedKey = (first: Request, second: Request): Request[] => {
  const key = `"${randomUUID()}"`
  return [{ ...first, headers: { ...first.headers, 'idempotency-key': key } }, { ...second, headers: { ...second.headers, 'idempotency-key': key } }]
}
const textBody = (method: string, ust: string): Request => ({ method, url: P, headers: { ...bearer(ust), 'content-type': 'text/plain' }, payload: 'name=a' })

const PROVOCATIONS: Record<string, Record<number, Provocation>> = {
  liveness: { 200: async () => ['plain', [{ method: 'GET', url: '/healthz' }]] },
  readiness: {
    200: async () => ['plain', [{ method: 'GET', url: '/readyz' }]],
    503: async () => ['down', [{ method: 'GET', url: '/readyz' }]]
  },
  createAttributes: {
    ...common((ust) => json('POST', P, ust, { current_app: 'CRM', name: 'a', value: 1 }), (ust) => json('POST', P, ust, { name: 'a', value: 1 }), (ust) => json('POST', P, ust, { current_app: 'Nope', name: 'a', value: 1 })),
    409: async (ust) => ['plain', [json('POST', P, ust, { current_app: 'CRM', name: 'a', value: 1 }), json('POST', P, ust, { current_app: 'CRM', name: 'a', value: 2 })]],
    413: async (ust) => ['plain', [json('POST', P, ust, { current_app: 'CRM', name: 'a', value: tooBig })]],
    415: async (ust) => ['plain', [textBody('POST', ust)]],
    422: async (ust) => ['plain', reusedKey(json('POST', P, ust, { current_app: 'CRM', name: 'a', value: 1 }), json('POST', P, ust, { current_app: 'CRM', name: 'b', value: 1 }))],
    507: async (ust) => ['full', [json('POST', P, ust, { current_app: 'CRM', name: 'a', value: 1 })]]
  },
  updateAttributes: {
    ...common((ust) => json('PATCH', P, ust, { current_app: 'CRM', name: 'a', value: 1 }), (ust) => json('PATCH', P, ust, { current_app: 'CRM', name: 'a', value: 1, colour: 'red' }), (ust) => json('PATCH', P, ust, { current_app: 'Nope', name: 'a', value: 1 })),
    200: async (ust) => ['plain', [json('PUT', P, ust, { current_app: 'CRM', name: 'a', value: 1 }), json('PATCH', P, ust, { current_app: 'CRM', name: 'a', value: 2 })]],
    404: async (ust) => ['plain', [json('PATCH', P, ust, { current_app: 'CRM', name: 'missing', value: 1 })]],
    409: async (ust) => ['plain', [json('PUT', P, ust, { current_app: 'CRM', name: 'a', value: 1 }), json('PATCH', P, ust, { current_app: 'CRM', name: 'a', value: 2, if_version: 7 })]],
    413: async (ust) => ['plain', [json('PATCH', P, ust, { current_app: 'CRM', name: 'a', value: tooBig })]],
    415: async (ust) => ['plain', [textBody('PATCH', ust)]],
    422: async (ust) => await encryptedThen(ust, json('PATCH', P, ust, { current_app: 'CRM', name: 'secret', encrypt: false })),
    507: async (ust) => ['full', [json('PATCH', P, ust, { current_app: 'CRM', name: 'a', value: 2 })]]
  },
  setAttributes: {
    ...common((ust) => json('PUT', P, ust, { current_app: 'CRM', name: 'a', value: 1 }), (ust) => json('PUT', P, ust, { current_app: 'CRM', name: 'a', expiration: 0 }), (ust) => json('PUT', P, ust, { current_app: 'Nope', name: 'a', value: 1 })),
    409: async (ust) => ['plain', [json('PUT', P, ust, { current_app: 'CRM', name: 'a', value: 1 }), json('PUT', P, ust, { current_app: 'CRM', name: 'a', value: 2, if_version: 7 })]],
    413: async (ust) => ['plain', [json('PUT', P, ust, { current_app: 'CRM', data: tooMany.map((name) => ({ name, value: 1 })) })]],
    415: async (ust) => ['plain', [textBody('PUT', ust)]],
    422: async (ust) => ['plain', reusedKey(json('PUT', P, ust, { current_app: 'CRM', name: 'a', value: 1 }), json('PUT', P, ust, { current_app: 'CRM', name: 'a', value: 2 }))],
    507: async (ust) => ['full', [json('PUT', P, ust, { current_app: 'CRM', name: 'a', value: 1 })]]
  },
  getAttributes: {
    ...common((ust) => get(P, ust, { current_app: 'CRM', name: 'a' }), (ust) => get(P, ust, { current_app: 'CRM' }), (ust) => get(P, ust, { current_app: 'Nope', name: 'a' })),
    413: async (ust) => ['plain', [get(P, ust, { current_app: 'CRM', data: tooMany })]],
    422: async (ust) => await encryptedThen(ust, get(P, ust, { current_app: 'CRM', name: 'secret' }))
  },
  deleteAttributes: {
    ...common((ust) => del(P, ust, { current_app: 'CRM', name: 'a' }), (ust) => del(P, ust, { current_app: 'CRM', name: 'a', if_version: '0' }), (ust) => del(P, ust, { current_app: 'Nope', name: 'a' })),
    409: async (ust) => ['plain', [del(P, ust, { current_app: 'CRM', name: 'a', if_version: '1' })]],
    413: async (ust) => ['plain', [del(P, ust, { current_app: 'CRM', data: tooMany })]],
    422: async (ust) => ['plain', reusedKey(del(P, ust, { current_app: 'CRM', name: 'a' }), del(P, ust, { current_app: 'CRM', name: 'b' }))]
  },
  attributesExist: {
    ...common((ust) => get(`${P}/exists`, ust, { current_app: 'CRM', name: 'a' }), (ust) => get(`${P}/exists`, ust, { current_app: 'CRM', name: 'a', data: 'b' }), (ust) => get(`${P}/exists`, ust, { current_app: 'Nope', name: 'a' })),
    413: async (ust) => ['plain', [get(`${P}/exists`, ust, { current_app: 'CRM', data: tooMany })]]
  },
  attributeNames: common((ust) => get(`${P}/names`, ust, { current_app: 'CRM' }), (ust) => get(`${P}/names`, ust, {}), (ust) => get(`${P}/names`, ust, { current_app: 'Nope' })),
  endSession: common((ust) => del('/sso/session', ust, { current_app: 'CRM' }), (ust) => del('/sso/session', ust, {}), (ust) => del('/sso/session', ust, { current_app: 'Nope' })),
  backchannelLogout: {
    200: async () => ['plain', [logout(await logoutToken({ sid: randomUUID() }))]],
    400: async () => ['plain', [logout(`${await logoutToken({ sid: randomUUID() })}x`)]],
    415: async () => ['plain', [{ method: 'POST', url: '/sso/backchannel-logout', headers: { 'content-type': 'application/json' }, payload: { logout_token: 'x' } }]],
    429: async () => ['limited', [logout('x'), logout('x')]],
    500: async () => ['broken', [logout(await logoutToken({ sid: randomUUID() }))]],
    503: async () => ['down', [logout(await logoutToken({ sid: randomUUID() }))]]
  }
}

// User attributes: the same operations answer the same statuses for the same reasons, so each
// is provoked by the session operation's requests sent to the user path.
const USER_P = '/sso/user/attr'
const asUserOperation = (provocations: Record<number, Provocation>): Record<number, Provocation> =>
  Object.fromEntries(Object.entries(provocations).map(([status, provoke]) => [status, async (ust: string) => {
    const [app, requests] = await provoke(ust)
    return [app, requests.map((request) => ({ ...request, url: request.url.replace(P, USER_P) }))]
  }]))
const SUPER_USER = { roles: ['sso:super-user'] }
const erase = (ust: string, app?: string): Request => del('/sso/user', ust, app === undefined ? {} : { current_app: app })
Object.assign(PROVOCATIONS, {
  createUserAttributes: asUserOperation(PROVOCATIONS.createAttributes!),
  updateUserAttributes: asUserOperation(PROVOCATIONS.updateAttributes!),
  setUserAttributes: asUserOperation(PROVOCATIONS.setAttributes!),
  getUserAttributes: asUserOperation(PROVOCATIONS.getAttributes!),
  deleteUserAttributes: asUserOperation(PROVOCATIONS.deleteAttributes!),
  userAttributesExist: asUserOperation(PROVOCATIONS.attributesExist!),
  userAttributeNames: asUserOperation(PROVOCATIONS.attributeNames!),
  eraseUser: {
    200: async () => ['plain', [erase(await mintUst(SUPER_USER), 'CRM')]],
    400: async () => ['plain', [erase(await mintUst(SUPER_USER))]],
    401: async () => ['plain', [erase(await mintUst({ ...FORGED, ...SUPER_USER }), 'CRM')]],
    403: async (ust) => ['plain', [erase(ust, 'CRM')]],
    429: async () => { const ust = await mintUst(SUPER_USER); return ['limited', [erase(ust, 'CRM'), erase(ust, 'CRM')]] },
    500: async () => ['broken', [erase(await mintUst(SUPER_USER), 'CRM')]],
    503: async () => ['down', [erase(await mintUst(SUPER_USER), 'CRM')]]
  } satisfies Record<number, Provocation>
})

function logout (token: string): Request {
  return { method: 'POST', url: '/sso/backchannel-logout', headers: { 'content-type': 'application/x-www-form-urlencoded' }, payload: new URLSearchParams({ logout_token: token }).toString() }
}

/** A value encrypted by `plain`, then `request` sent to `rekeyed`, whose keys cannot decrypt it. */
async function encryptedThen (ust: string, request: Request): Promise<[keyof Apps, Request[]]> {
  return ['rekeyed', [{ ...setEncrypted(ust), via: 'plain' }, request]]
}

async function send (app: App, request: Request) {
  return await app.inject({ method: request.method as 'GET', url: request.url, headers: request.headers ?? {}, ...(request.payload !== undefined ? { payload: request.payload } : {}) })
}

describe('openapi.yaml: each operation lists exactly the statuses it can answer', () => {
  // One set of apps for every operation: each provocation uses a fresh session of its own.
  let built: Apps
  before(async () => { built = await apps(undefined) })
  after(async () => { await Promise.all(Object.values(built).map(async (app) => { await app.close() })) })

  test('every documented operation has provocations, and every provocation is of a documented operation', () => {
    const ids = operations.map(({ operation }) => operation.operationId).sort()
    assert.deepEqual(Object.keys(PROVOCATIONS).sort(), ids)
  })

  for (const documented of operations) {
    const { operationId } = documented.operation
    test(`${operationId} (${documented.method} ${documented.path}): ${documentedStatuses(documented.operation).join(', ')}`, async (t) => {
      const provocations = PROVOCATIONS[operationId] ?? {}
      assert.deepEqual(Object.keys(provocations).map(Number).sort((a, b) => a - b), documentedStatuses(documented.operation),
        'the statuses provoked here are the statuses the document lists')
      for (const [status, provoke] of Object.entries(provocations)) {
        const [appName, requests] = await provoke(await mintUst({ sid: randomUUID() }))
        let answer: Awaited<ReturnType<typeof send>> | undefined
        for (const request of requests) {
          answer = await send(built[request.via ?? appName], request)
        }
        assert.ok(answer !== undefined)
        assert.equal(answer.statusCode, Number(status), `${operationId} ${status}: ${answer.body}`)
        assertConforms(documented, answer)
      }
    })
  }
})

function assertConforms (documented: DocumentedOperation, answer: { statusCode: number, headers: Record<string, unknown>, body: string }): void {
  assert.deepEqual(conformanceProblems(documented.operation, answer), [], `${documented.operation.operationId} ${answer.statusCode}`)
}
