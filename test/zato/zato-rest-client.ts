import { randomBytes } from 'node:crypto'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe } from 'node:test'
import type { Config } from '../../src/config.ts'
import { issueDevToken, loadOrCreateDevKeys, type DevKeys } from '../../src/dev-issuer.ts'
import { listen, raw, type Reply } from '../e2e/http.ts'
import { RedisServer } from '../fixtures/redis.ts'

// Zato 3.2's own SSO tests (zatosource/zato, branch support/3.2, code/zato-sso/test/zato/),
// ported request for request. This module stands in for what they import:
// - RESTClient (code/zato-common/src/zato/common/test/rest_client.py): how a request goes out
//   and how its answer is judged;
// - BaseTest (code/zato-sso/test/zato/base.py): the login step and the random data. Zato logged
//   a super-user in with a password and TOTP code; here the UST comes from the development
//   issuer (src/dev-issuer.ts), as `npm start` serves it, with the super-user role. Creating,
//   approving and logging in other users (only the user-attribute tests do) is the identity
//   provider's job now: a user is a `sub`, its login a UST from the same issuer.
// Every test runs over a real socket in two client profiles, against Redis and the embedded store.

export type Profile = 'zato-wire' | 'migrated'
export const PROFILES: Profile[] = ['zato-wire', 'migrated']
export type StoreKind = 'redis' | 'memory'

/** What RESTClient.get/post/patch/delete return: the answer's JSON (a Bunch in Python). */
export interface ZatoResponse {
  cid: string
  status: string
  sub_status?: string[]
  [field: string]: unknown
}

/** Zato's TestConfig.current_app: RESTClient adds it to every request. */
export const CURRENT_APP = 'CRM'

/**
 * Python's `json.dumps(value)` with its defaults, as RESTClient serializes a request: `", "` and
 * `": "` as separators and every non-ASCII character escaped (ensure_ascii).
 */
export function pythonJsonDumps (value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(pythonJsonDumps).join(', ')}]`
  if (value !== null && typeof value === 'object') {
    return `{${Object.entries(value).map(([key, item]) => `${pythonJsonDumps(key)}: ${pythonJsonDumps(item)}`).join(', ')}}`
  }
  if (typeof value === 'string') {
    return JSON.stringify(value).replace(/[\u0080-\uffff]/g, (char) => `\\u${char.charCodeAt(0).toString(16).padStart(4, '0')}`)
  }
  return JSON.stringify(value)
}

/** What `requests.get(url, data=json_text)` puts on the wire besides the body: no Content-Type. */
const REQUESTS_HEADERS = { 'user-agent': 'python-requests/2.31.0', 'accept-encoding': 'gzip, deflate', accept: '*/*', connection: 'keep-alive' }

export interface ClientOptions {
  port: number
  profile: Profile
  /** The caller's own user id (its `sub`): the migrated profile leaves `user_id` out when it is this one. */
  selfUserId?: string
}

/**
 * RESTClient, for one profile:
 * - `zato-wire`: exactly what Zato's RESTClient sends: the request as `json.dumps` text on every
 *   verb (GET and DELETE included), no Content-Type, no Authorization, `current_app` added;
 * - `migrated`: what docs/ZATO-MIGRATION.md recommends: `Content-Type: application/json`, the
 *   caller's UST as `Authorization: Bearer` (not in the body), no `user_id` where it names the
 *   caller (user attributes: another user's id as `target_user`), no `target_ust` equal to the
 *   caller's UST, and none of Zato's ignored fields.
 */
export class ZatoRestClient {
  readonly #options: ClientOptions

  constructor (options: ClientOptions) {
    this.#options = options
  }

  async get (urlPath: string, request: Record<string, unknown>, expectOk = true): Promise<ZatoResponse> {
    return await this.#invoke('GET', urlPath, request, expectOk)
  }

  async post (urlPath: string, request: Record<string, unknown>, expectOk = true): Promise<ZatoResponse> {
    return await this.#invoke('POST', urlPath, request, expectOk)
  }

  async patch (urlPath: string, request: Record<string, unknown>, expectOk = true): Promise<ZatoResponse> {
    return await this.#invoke('PATCH', urlPath, request, expectOk)
  }

  async delete (urlPath: string, request: Record<string, unknown>, expectOk = true): Promise<ZatoResponse> {
    return await this.#invoke('DELETE', urlPath, request, expectOk)
  }

  /** The raw answer, for the tests that look at the HTTP status too. */
  async send (method: string, urlPath: string, request: Record<string, unknown>): Promise<Reply> {
    const fields: Record<string, unknown> = { ...request }
    if (Object.keys(fields).length > 0) fields.current_app ??= CURRENT_APP
    const headers: Record<string, string | number> = { ...REQUESTS_HEADERS }
    let text: string
    if (this.#options.profile === 'zato-wire') {
      text = Object.keys(fields).length > 0 ? pythonJsonDumps(fields) : ''
    } else {
      const token = (fields.current_ust ?? fields.ust) as string | undefined
      if (token !== undefined) headers.authorization = `Bearer ${token}`
      if (fields.target_ust === token) delete fields.target_ust
      if (fields.user_id !== undefined && fields.user_id !== this.#options.selfUserId) fields.target_user = fields.user_id
      for (const field of ['current_ust', 'ust', 'user_id', 'serialize_dt']) delete fields[field]
      text = JSON.stringify(fields)
      headers['content-type'] = 'application/json'
    }
    headers['content-length'] = Buffer.byteLength(text)
    return await raw(this.#options.port, { method, path: urlPath, headers, body: text })
  }

  async #invoke (method: string, urlPath: string, request: Record<string, unknown>, expectOk: boolean): Promise<ZatoResponse> {
    const reply = await this.send(method, urlPath, request)
    if (expectOk) {
      if (reply.status !== 200) throw new Error(`Unexpected response.status_code found in response_data \`${reply.text}\` (${reply.status})`)
      const data = JSON.parse(reply.text) as ZatoResponse
      if (!Object.hasOwn(data, 'cid')) throw new Error(`Unexpected CID found in response \`${reply.text}\``)
      if (data.status !== 'ok') throw new Error(`Unexpected response_data.status found in response \`${reply.text}\` (${data.status})`)
      return data
    }
    return JSON.parse(reply.text) as ZatoResponse
  }
}

/** Zato's status_code constants the ported tests compare with. */
export const status_code = { ok: 'ok', error: 'error', attr: { already_exists: 'E009001' }, auth: { not_allowed: 'E005001' } } as const

/** One service for a ported test file: development issuer keys, and Redis or the embedded store. */
export interface ZatoEnvironment {
  port: number
  keys: DevKeys
  store: StoreKind
}

/** BaseTest's per-test context: a logged-in super-user, a client, random data. */
export class BaseTest {
  readonly client: ZatoRestClient
  readonly ctx: { super_user_ust: string, super_user_id: string }
  /** The service's port, for the few requests no RESTClient would send. */
  readonly port: number
  readonly #keys: DevKeys
  readonly #profile: Profile
  #counter = 0

  private constructor (environment: ZatoEnvironment, profile: Profile, superUserUst: string, superUserId: string) {
    this.#keys = environment.keys
    this.port = environment.port
    this.#profile = profile
    this.ctx = { super_user_ust: superUserUst, super_user_id: superUserId }
    this.client = new ZatoRestClient({ port: environment.port, profile, selfUserId: superUserId })
  }

  /** setUp: the super-user logs in (here: a UST of a new session from the development issuer). */
  static async setUp (environment: ZatoEnvironment, profile: Profile): Promise<BaseTest> {
    const superUserId = `zusr${randomBytes(12).toString('hex')}`
    const ust = await issueDevToken(environment.keys, { sub: superUserId, superUser: true })
    return new BaseTest(environment, profile, ust, superUserId)
  }

  get = async (urlPath: string, request: Record<string, unknown>, expectOk = true) => await this.client.get(urlPath, request, expectOk)
  post = async (urlPath: string, request: Record<string, unknown>, expectOk = true) => await this.client.post(urlPath, request, expectOk)
  patch = async (urlPath: string, request: Record<string, unknown>, expectOk = true) => await this.client.patch(urlPath, request, expectOk)
  delete = async (urlPath: string, request: Record<string, unknown>, expectOk = true) => await this.client.delete(urlPath, request, expectOk)

  /** `_get_random_data`: `rand.{utcnow().isoformat()}+{counter}.{10 random characters}`. */
  _get_random_data (): string {
    return this.#random('rand')
  }

  /** `_get_random_username`. */
  _get_random_username (): string {
    return this.#random('test')
  }

  #random (prefix: string): string {
    const now = new Date().toISOString().slice(0, -1) + '000'
    return `${prefix}.${now}+${this.#counter++}.${randomBytes(8).toString('base64url').slice(0, 10)}`
  }

  /**
   * What `POST /zato/sso/user` + `_approve` + `POST /zato/sso/user/login` gave a user-attribute
   * test: a user id and a UST of that (regular) user. Users live at the identity provider now.
   */
  async createAndLogInUser (): Promise<{ user_id: string, ust: string, client: ZatoRestClient }> {
    const userId = `zusr${randomBytes(12).toString('hex')}`
    const ust = await issueDevToken(this.#keys, { sub: userId })
    return { user_id: userId, ust, client: new ZatoRestClient({ port: this.port, profile: this.#profile, selfUserId: userId }) }
  }
}

/**
 * Runs `body` once per store, each over a real listening server configured with the development
 * defaults (development issuer, its keys in a temporary folder), and gives each test a BaseTest
 * per profile.
 */
export function zatoSuite (title: string, body: (setUp: (profile: Profile) => Promise<BaseTest>, store: StoreKind) => void): void {
  for (const store of ['redis', 'memory'] as const) {
    describe(`${title} [${store}]`, () => {
      let environment: ZatoEnvironment | undefined
      let redis: RedisServer | undefined
      let devDir = ''
      let close: (() => Promise<void>) | undefined
      before(async () => {
        devDir = mkdtempSync(join(tmpdir(), 'sso-attrs-zato-'))
        const overrides: Partial<Config> = {
          SSO_JWT_SECRET: undefined, SSO_ISSUER: undefined, SSO_AUDIENCE: undefined, SSO_ENCRYPTION_KEYS: undefined, SSO_DEV_DIR: devDir
        }
        if (store === 'redis') {
          redis = await RedisServer.start()
          Object.assign(overrides, { SSO_STORE: 'redis', REDIS_URL: redis.url, SSO_KEY_PREFIX: `zato-${randomBytes(4).toString('hex')}:` })
        }
        const { app, port } = await listen(undefined, overrides)
        close = async () => { await app.close() }
        environment = { port, keys: await loadOrCreateDevKeys(devDir), store }
      })
      after(async () => {
        await close?.()
        await redis?.close()
        rmSync(devDir, { recursive: true, force: true })
      })
      body(async (profile) => await BaseTest.setUp(environment!, profile), store)
    })
  }
}
