import { randomBytes, randomUUID } from 'node:crypto'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { exportJWK, generateKeyPair, SignJWT } from 'jose'

// The workload: sessions, their data, and the requests each scenario repeats.

export const APP = 'CRM'
export const ISSUER = 'https://idp.bench.invalid'
export const AUDIENCE = 'sso-attrs'
const KID = 'bench-es256'
export const ATTR_PATH = '/sso/session/attr'
export const BATCH = 20
export const NAMES_PER_SESSION = 100
export const MEMORY_ATTRS_PER_SESSION = 100
export const VALUE_BYTES = 100 // serialized JSON: a 98-character string and its quotes
const EXPIRATION = 3600
export const TOKEN_CACHE_DEFAULT = 10_000 // SSO_TOKEN_CACHE_SIZE, left at its default
export const RATE_LIMIT_MAX = 1_000_000_000

export function value100 (): string {
  return randomBytes(80).toString('base64url').slice(0, VALUE_BYTES - 2)
}

// HTTP calls outside the load (setup and sanity checks).

export interface Reply { status: number, body: Record<string, unknown> }

export async function call (port: number, method: string, path: string, token: string, body?: unknown): Promise<Reply> {
  const res = await fetch(`http://127.0.0.1:${port}${path}`, {
    method,
    headers: { authorization: `Bearer ${token}`, ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
    ...(body !== undefined ? { body: JSON.stringify(body) } : {})
  })
  return { status: res.status, body: await res.json() as Record<string, unknown> }
}

export function failure (what: string, reply: Reply): Error {
  return new Error(`${what}: HTTP ${reply.status} ${JSON.stringify(reply.body).slice(0, 500)}`)
}

export async function pool<T> (items: T[], concurrency: number, work: (item: T, index: number) => Promise<void>): Promise<void> {
  let next = 0
  await Promise.all(Array.from({ length: Math.min(concurrency, items.length) }, async () => {
    while (next < items.length) {
      const index = next++
      await work(items[index]!, index)
    }
  }))
}

/** UST keys: an ES256 key pair; the service gets the public half as a JWKS file in `dir`. */
export async function createMinter (dir: string): Promise<{ jwksFile: string, mint: (index: number, kind: string) => Promise<string> }> {
  const { privateKey, publicKey } = await generateKeyPair('ES256', { extractable: true })
  const jwksFile = join(dir, 'jwks.json')
  writeFileSync(jwksFile, JSON.stringify({ keys: [{ ...await exportJWK(publicKey), kid: KID, alg: 'ES256', use: 'sig' }] }))
  const mint = async (index: number, kind: string): Promise<string> => await new SignJWT({ sid: randomUUID(), roles: ['user'] })
    .setProtectedHeader({ alg: 'ES256', kid: KID, typ: 'JWT' })
    .setIssuer(ISSUER)
    .setAudience(AUDIENCE)
    .setSubject(`bench-${kind}-${index}`)
    .setIssuedAt()
    .setExpirationTime('2h')
    .sign(privateKey)
  return { jwksFile, mint }
}

/**
 * Every session gets a plain and an encrypted 100-byte value and b0..b19; the names sessions
 * get 100 attributes each.
 */
export async function populate (port: number, tokens: string[], namesTokens: string[]): Promise<void> {
  await pool(tokens, 16, async (token) => {
    const data = [
      { name: 'plain', value: value100() },
      { name: 'secret', value: value100(), encrypt: true },
      ...Array.from({ length: BATCH }, (_, j) => ({ name: `b${j}`, value: value100() }))
    ]
    const reply = await call(port, 'PUT', ATTR_PATH, token, { current_app: APP, data })
    if (reply.status !== 200) throw failure('populating a session', reply)
  })
  await pool(namesTokens, 16, async (token) => {
    const data = Array.from({ length: NAMES_PER_SESSION }, (_, j) => ({ name: `n${String(j).padStart(3, '0')}`, value: value100() }))
    const reply = await call(port, 'PUT', ATTR_PATH, token, { current_app: APP, data })
    if (reply.status !== 200) throw failure('populating a names session', reply)
  })
}

export type Method = 'GET' | 'PUT'
/** `near`: a second service process with the near cache on (bench/near-cache.ts); compare: the other build of a same-run A/B (--compare). */
export type Target = 'service' | 'baseline' | 'near' | 'compare'

export interface Scenario {
  key: string
  label: string
  target: Target
  method: Method
  path: string
  body?: string
  tokens: string[]
  /** A different UST (session) on every request; false for the baseline, which never reads it. */
  rotate: boolean
  /** Attributes read or written by one request. */
  items: number
  /** What makes a response right; returns a problem or undefined. */
  check: (reply: Reply) => string | undefined
  /** Single-form scenario the batch one is compared with. */
  singleOf?: string
}

export function okCheck (reply: Reply): string | undefined {
  if (reply.status !== 200 || reply.body.status !== 'ok') return `HTTP ${reply.status} ${JSON.stringify(reply.body).slice(0, 300)}`
  return undefined
}

/** The baseline scenario each service scenario's ratio is taken against. */
export const baselineOf = (method: Method) => method === 'GET' ? 'base-get' : 'base-put'
/** The floor (the bare route plus one EVALSHA) of the same method. */
export const floorOf = (method: Method) => method === 'GET' ? 'floor-get' : 'floor-put'
/** The single-form scenarios: the p99 target applies to these. */
export const SINGLE_FORMS = ['get-plain', 'get-secret', 'put-plain', 'put-secret']

/** The baseline rows first, then the service's; `putBody` is the PUT single both send. */
export function buildScenarios (tokens: string[], namesTokens: string[], putBody: string): Scenario[] {
  const found = (encrypted: boolean) => (reply: Reply) => okCheck(reply) ??
    (reply.body.found !== true || reply.body.is_encrypted !== encrypted || typeof reply.body.value !== 'string' || (reply.body.value).length !== VALUE_BYTES - 2
      ? `unexpected body ${JSON.stringify(reply.body).slice(0, 300)}`
      : undefined)
  const batchQuery = Array.from({ length: BATCH }, (_, j) => `data=b${j}`).join('&')
  return [
    { key: 'base-get', label: 'baseline GET (bare Fastify)', target: 'baseline', method: 'GET', path: `${ATTR_PATH}?current_app=${APP}&name=plain`, tokens, rotate: false, items: 1, check: okCheck },
    { key: 'base-put', label: 'baseline PUT (bare Fastify)', target: 'baseline', method: 'PUT', path: ATTR_PATH, body: putBody, tokens, rotate: false, items: 1, check: okCheck },
    { key: 'floor-get', label: 'floor GET (bare Fastify + one ioredis EVALSHA)', target: 'baseline', method: 'GET', path: `/floor${ATTR_PATH}?current_app=${APP}&name=plain`, tokens, rotate: false, items: 1, check: okCheck },
    { key: 'floor-put', label: 'floor PUT (bare Fastify + one ioredis EVALSHA writing a field)', target: 'baseline', method: 'PUT', path: `/floor${ATTR_PATH}`, body: putBody, tokens, rotate: false, items: 1, check: okCheck },
    { key: 'get-plain', label: 'GET single plain', target: 'service', method: 'GET', path: `${ATTR_PATH}?current_app=${APP}&name=plain`, tokens, rotate: true, items: 1, check: found(false) },
    { key: 'get-secret', label: 'GET single encrypted (decrypt)', target: 'service', method: 'GET', path: `${ATTR_PATH}?current_app=${APP}&name=secret`, tokens, rotate: true, items: 1, check: found(true) },
    { key: 'put-plain', label: 'PUT single plain', target: 'service', method: 'PUT', path: ATTR_PATH, body: putBody, tokens, rotate: true, items: 1, check: okCheck },
    {
      key: 'put-secret',
      label: 'PUT single encrypted + expiration',
      target: 'service',
      method: 'PUT',
      path: ATTR_PATH,
      body: JSON.stringify({ current_app: APP, name: 'put-secret', value: value100(), encrypt: true, expiration: EXPIRATION }),
      tokens,
      rotate: true,
      items: 1,
      check: (reply) => okCheck(reply) ?? (typeof reply.body.expiration_time !== 'string' ? 'no expiration_time in the reply' : undefined)
    },
    {
      key: 'put-batch',
      label: `PUT batch of ${BATCH}`,
      target: 'service',
      method: 'PUT',
      path: ATTR_PATH,
      body: JSON.stringify({ current_app: APP, data: Array.from({ length: BATCH }, (_, j) => ({ name: `w${j}`, value: value100() })) }),
      tokens,
      rotate: true,
      items: BATCH,
      singleOf: 'put-plain',
      check: (reply) => okCheck(reply) ?? (Object.keys(reply.body.result as object).length !== BATCH ? 'result has the wrong size' : undefined)
    },
    {
      key: 'get-batch',
      label: `GET batch of ${BATCH}`,
      target: 'service',
      method: 'GET',
      path: `${ATTR_PATH}?current_app=${APP}&${batchQuery}`,
      tokens,
      rotate: true,
      items: BATCH,
      singleOf: 'get-plain',
      check: (reply) => {
        const problem = okCheck(reply)
        if (problem !== undefined) return problem
        const result = reply.body.result as Record<string, { found?: boolean }>
        return Object.values(result).filter((item) => item.found === true).length !== BATCH ? 'not every batch item found' : undefined
      }
    },
    {
      key: 'names',
      label: `names (${NAMES_PER_SESSION}-attribute session)`,
      target: 'service',
      method: 'GET',
      path: `${ATTR_PATH}/names?current_app=${APP}`,
      tokens: namesTokens,
      rotate: true,
      items: 1,
      check: (reply) => okCheck(reply) ?? (!Array.isArray(reply.body.result) || reply.body.result.length !== NAMES_PER_SESSION ? 'names result has the wrong size' : undefined)
    }
  ]
}

/** The baselines and the `only` service scenarios (all when empty), with the single form of each batch one. */
export function selectScenarios (scenarios: Scenario[], only: string[]): Scenario[] {
  const known = scenarios.filter((s) => s.target !== 'baseline').map((s) => s.key)
  const unknown = only.filter((key) => !known.includes(key))
  if (unknown.length > 0) throw new Error(`--only: unknown scenario ${unknown.join(', ')} (known: ${known.join(', ')})`)
  if (only.length === 0) return scenarios
  // A batch scenario needs its single form for the batch gain.
  const wanted = new Set(only)
  for (const s of scenarios) if (wanted.has(s.key) && s.singleOf !== undefined) wanted.add(s.singleOf)
  return scenarios.filter((s) => s.target === 'baseline' || wanted.has(s.key))
}

/** The service scenarios again, driven on the other build of an A/B (--compare): keys `b:…`, labels `… [B]`. */
export function compareScenarios (scenarios: Scenario[]): Scenario[] {
  return scenarios.filter((s) => s.target === 'service').map((s) => ({
    ...s,
    key: `b:${s.key}`,
    label: `${s.label} [B]`,
    target: 'compare' as const,
    ...(s.singleOf === undefined ? {} : { singleOf: `b:${s.singleOf}` })
  }))
}

/** Sanity: every scenario's request is answered correctly before it is measured. */
export async function checkScenarios (scenarios: Scenario[], ports: Partial<Record<Target, number>>): Promise<void> {
  for (const scenario of scenarios) {
    const reply = await call(ports[scenario.target]!, scenario.method, scenario.path, scenario.tokens[1]!, scenario.body === undefined ? undefined : JSON.parse(scenario.body))
    const problem = scenario.check(reply)
    if (problem !== undefined) throw new Error(`${scenario.label}: ${problem}`)
  }
}
