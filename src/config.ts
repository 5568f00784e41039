import type { ErrorObject } from 'ajv'
import { envSchema } from 'env-schema'
import { Type, type Static } from 'typebox'
import type { RedisTopology } from './store/redis-topology.ts'

// Every setting the service reads, with its default. The README's configuration table is
// generated from the descriptions here (`npm run docs:config`).
export const ConfigSchema = Type.Object({
  NODE_ENV: Type.String({ default: 'development', description: '`production` turns on the strict start-up checks; anything else allows development defaults.' }),
  HOST: Type.String({ default: '127.0.0.1', description: 'Address to listen on.' }),
  PORT: Type.Integer({ default: 17010, minimum: 0, maximum: 65535, description: 'Port to listen on.' }),
  LOG_LEVEL: Type.Union([
    Type.Literal('fatal'), Type.Literal('error'), Type.Literal('warn'), Type.Literal('info'),
    Type.Literal('debug'), Type.Literal('trace'), Type.Literal('silent')
  ], { default: 'info', description: 'pino log level.' }),
  METRICS_ENABLED: Type.Boolean({ default: true, description: 'Serve Prometheus metrics at `GET /metrics`.' }),
  METRICS_PORT: Type.Integer({ default: 0, minimum: 0, maximum: 65535, description: 'Serve `/metrics` on this port (on `HOST`) instead of the API port; 0: on the API port.' }),
  SSO_STORE: Type.Union([Type.Literal('auto'), Type.Literal('redis'), Type.Literal('memory')], {
    default: 'auto',
    description: '`redis`, `memory` (embedded, development only) or `auto`: Redis when `REDIS_URL`, `REDIS_CLUSTER_NODES` or `REDIS_SENTINELS` is set, else memory.'
  }),
  REDIS_URL: Type.Optional(Type.String({ description: 'Redis URL (`redis://[user:pass@]host:port/db`, `rediss://` for TLS). Production needs this, `REDIS_CLUSTER_NODES` or `REDIS_SENTINELS` (exactly one).' })),
  REDIS_CLUSTER_NODES: Type.Optional(Type.String({ description: 'Redis Cluster seed nodes, `host:port,host:port,...` (any reachable node will do; the others are discovered).' })),
  REDIS_SENTINELS: Type.Optional(Type.String({ description: 'Sentinels of a Sentinel-managed primary, `host:port,host:port,...`; needs `REDIS_SENTINEL_NAME`.' })),
  REDIS_SENTINEL_NAME: Type.Optional(Type.String({ description: 'The master name the Sentinels monitor (`sentinel monitor <name> ...`).' })),
  REDIS_SENTINEL_PASSWORD: Type.Optional(Type.String({ description: 'Password of the Sentinels themselves, when they require one (`requirepass` in sentinel.conf).' })),
  REDIS_USERNAME: Type.Optional(Type.String({ description: 'ACL user for every Redis node (a `REDIS_URL` with its own user wins).' })),
  REDIS_PASSWORD: Type.Optional(Type.String({ description: 'Password for every Redis node (a `REDIS_URL` with its own password wins). Never logged.' })),
  REDIS_TLS: Type.Boolean({ default: false, description: 'TLS to every node of `REDIS_CLUSTER_NODES` or `REDIS_SENTINELS` (and to the Sentinels). With `REDIS_URL` use `rediss://`. A private CA goes in `NODE_EXTRA_CA_CERTS`.' }),
  SSO_REDIS_MIN_REPLICAS_ACK: Type.Integer({ default: 0, minimum: 0, description: 'Writes and deletes answer ok only once this many replicas acknowledged them (Redis `WAIT`, within half of `REDIS_COMMAND_TIMEOUT_MS`), else 503 E011003; an acknowledged write then survives a failover. 0: no wait.' }),
  REDIS_COMMAND_TIMEOUT_MS: Type.Integer({ default: 1000, minimum: 10, description: 'A Redis command that has not answered by then fails with 503 E011003.' }),
  REDIS_CONNECT_TIMEOUT_MS: Type.Integer({ default: 2000, minimum: 10, description: 'Timeout of one Redis connection attempt.' }),
  SSO_IDEMPOTENCY_TTL: Type.Integer({ default: 86400, minimum: 1, maximum: 2592000, description: 'Seconds the outcome of a write or delete sent with an Idempotency-Key is kept, so that a retry with the same key gets the same answer without writing again.' }),
  REDIS_CLUSTER_SLOTS_REFRESH_MS: Type.Integer({ default: 1000, minimum: 0, description: 'On a Cluster, reload the slot map this often even without traffic, so that an idle instance learns of a failover before its next request. 0: only when a command meets a moved slot or an unreachable master.' }),
  SSO_NEAR_CACHE: Type.Union([Type.Literal('off'), Type.Literal('on')], { default: 'off', description: '`on`: each instance keeps recently read attributes in memory and learns of every change through Redis client-side caching (`CLIENT TRACKING`, one extra pair of connections per Redis master); reads of a hot session then skip Redis. Consistency contract in docs/SCALING.md. Needs the Redis store.' }),
  SSO_NEAR_CACHE_MAX_OWNERS: Type.Integer({ default: 10000, minimum: 1, description: 'Near cache: most sessions and users whose attributes one instance keeps (least recently used go first).' }),
  SSO_NEAR_CACHE_MAX_BYTES: Type.Integer({ default: 67108864, minimum: 1024, description: 'Near cache: most bytes of names and stored values one instance keeps (an estimate; encrypted values are kept encrypted).' }),
  SSO_NEAR_CACHE_RENEW_MS: Type.Integer({ default: 10000, minimum: 1, description: 'Near cache: a read answered from memory renews the session\'s idle window in Redis at most this often (at most a quarter of `SSO_SESSION_IDLE_TTL`); a session then lives at least `SSO_SESSION_IDLE_TTL` minus this after its last read.' }),
  SSO_NEAR_CACHE_MAX_STALENESS_MS: Type.Integer({ default: 1000, minimum: 20, description: 'Near cache: reads are answered from memory only while the invalidation connection has answered a heartbeat (sent every quarter of this) sent less than this long ago; the bound on staleness when that connection hangs without closing.' }),
  SSO_KEY_PREFIX: Type.String({ default: 'sso-attrs:', pattern: '^[^{}]*$', description: 'Prefix of every Redis key (no braces: they would break cluster hash tags).' }),
  SSO_JWKS_URL: Type.Optional(Type.String({ description: 'Remote JWKS to verify USTs and logout tokens: one cache for both; a token with an unknown `kid` waits for a refetch (see `SSO_JWKS_REFETCH_INTERVAL_MS`), a JWKS that cannot be had is 503 E011003.' })),
  SSO_JWKS_REFETCH_INTERVAL_MS: Type.Integer({ default: 1000, minimum: 0, maximum: 60000, description: 'After a JWKS fetch that brought no new keys (or failed), the next fetch for an unknown `kid` waits until this long after it: a flood of made-up `kid`s costs one fetch per interval. A fetch that brought new keys (a rotation) lets the next start at once.' }),
  SSO_JWKS_MAX_AGE: Type.Integer({ default: 600, minimum: 2, maximum: 86400, description: 'Seconds a fetched JWKS is used: refreshed in the background after half of it, never used past it, so a key removed at the identity provider stops verifying within this time.' }),
  SSO_JWKS_FILE: Type.Optional(Type.String({ description: 'Local JWKS file to verify USTs.' })),
  SSO_JWT_SECRET: Type.Optional(Type.String({ description: 'HS256 secret to verify USTs (at least 32 bytes).' })),
  SSO_ISSUER: Type.Optional(Type.String({ description: 'Required `iss` of USTs. Required in production.' })),
  SSO_AUDIENCE: Type.Optional(Type.String({ description: 'Comma-separated client ids: when set, the `aud` of an ID token must contain one of them.' })),
  SSO_RESOURCE: Type.Optional(Type.String({ description: 'Comma-separated resource identifiers: the `aud` of an access token (`typ: at+jwt`, RFC 9068) must contain one of them; default `SSO_AUDIENCE`.' })),
  SSO_TOKEN_TYPES: Type.String({ default: 'id_token,access_token', pattern: '^\\s*(id_token|access_token)\\s*(,\\s*(id_token|access_token)\\s*)*$', description: 'Which tokens are USTs: `id_token` (no `typ` or `JWT`; `aud` = a client id of `SSO_AUDIENCE`), `access_token` (`typ: at+jwt`; `aud` = a resource of `SSO_RESOURCE`), or both. A logout token is never a UST.' }),
  SSO_SESSION_CLAIM: Type.String({ default: 'sid', minLength: 1, description: 'Claim that identifies the session. Session attributes need it (401 E007001 without); user attributes need only `sub`.' }),
  SSO_ROLES_CLAIM: Type.String({ default: 'roles', minLength: 1, description: 'Claim path of the roles list; dotted paths such as `realm_access.roles` work.' }),
  SSO_SUPERUSER_ROLE: Type.String({ default: 'sso:super-user', minLength: 1, description: 'Role that may touch other users\' sessions.' }),
  SSO_APPS: Type.Optional(Type.String({ description: 'Comma-separated allowed values of `current_app`. Required in production.' })),
  SSO_ENCRYPTION_KEYS: Type.Optional(Type.String({ description: '`kid:base64url-32-bytes,...`; the first encrypts, all decrypt. Required in production.' })),
  SSO_SESSION_IDLE_TTL: Type.Integer({ default: 3600, minimum: 1, description: 'Seconds a session\'s attributes live after the last call on the session (renewals are coalesced: at least 0.9 of it, D80).' }),
  SSO_SESSION_MAX_TTL: Type.Integer({ default: 86400, minimum: 1, description: 'Seconds a session\'s attributes live at most, from its first attribute.' }),
  SSO_MAX_NAME_LENGTH: Type.Integer({ default: 191, minimum: 1, maximum: 1024, description: 'Longest attribute name, in characters.' }),
  SSO_MAX_VALUE_BYTES: Type.Integer({ default: 65536, minimum: 1, description: 'Largest serialized (JSON, UTF-8) value.' }),
  SSO_MAX_BATCH: Type.Integer({ default: 100, minimum: 1, description: 'Most items in one batch request.' }),
  SSO_MAX_ATTRS_PER_SESSION: Type.Integer({ default: 1000, minimum: 1, description: 'Most live attributes in one session.' }),
  SSO_MAX_ATTRS_PER_USER: Type.Integer({ default: 1000, minimum: 1, description: 'Most live user attributes (`/sso/user/attr`) of one user.' }),
  SSO_USER_ATTR_IDLE_TTL: Type.Integer({ default: 34560000, minimum: 1, description: 'Seconds a user\'s attributes live after the last call on them (default 400 days); sessions ending does not shorten it.' }),
  SSO_USER_CLAIM: Type.String({ default: 'sub', minLength: 1, description: 'Claim that identifies the user of user attributes and of `target_user` (with the issuer); never a reusable number.' }),
  SSO_BODY_LIMIT: Type.Integer({ default: 1048576, minimum: 1024, description: 'Largest request body, in bytes (413 E011001 above it).' }),
  SSO_TOKEN_CACHE_SIZE: Type.Integer({ default: 10000, minimum: 0, description: 'Verified USTs kept in memory (each no longer than its `exp`); 0 turns the cache off.' }),
  SSO_CLOCK_TOLERANCE: Type.Integer({ default: 5, minimum: 0, description: 'Seconds of clock skew allowed on `exp`/`nbf`.' }),
  SSO_TOMBSTONE_TTL: Type.Integer({ default: 86400, minimum: 1, description: 'Seconds an ended session (logout, `DELETE /sso/session`) stays ended: its USTs get 401 E007001. Set it to at least the longest UST lifetime.' }),
  SSO_LOGOUT_AUDIENCE: Type.Optional(Type.String({ description: 'Required `aud` of back-channel logout tokens (the client id this service has at the identity provider); defaults to `SSO_AUDIENCE`.' })),
  SSO_LOGOUT_MAX_AGE: Type.Integer({ default: 300, minimum: 1, description: 'Back-channel logout tokens issued (`iat`) longer ago than this many seconds are refused.' }),
  SSO_RATE_LIMIT_MAX: Type.Integer({ default: 1200, minimum: 0, description: 'Requests a caller (`iss` + `sub`; the client IP for requests that fail authentication) may make in a window; 0 turns rate limiting off.' }),
  SSO_RATE_LIMIT_SYNC_MS: Type.Integer({ default: 100, minimum: 10, maximum: 10000, description: 'How often each instance adds its rate-limit counts to the shared counters in Redis (and learns the other instances\' counts); across N instances a caller may exceed the limit by what N instances count in this time.' }),
  SSO_RATE_LIMIT_WINDOW: Type.Integer({ default: 60, minimum: 1, description: 'Length of the rate-limit window, in seconds.' }),
  SSO_WS_ENABLED: Type.Boolean({ default: true, description: 'Serve the JSON-RPC 2.0 WebSocket API at `GET /api/current` and `/api/v1` (README, "WebSocket API").' }),
  SSO_WS_ALLOWED_ORIGINS: Type.Optional(Type.String({ description: 'Comma-separated origins (`https://app.example.com`) whose browsers may open the WebSocket; `*` allows any. A same-origin page and clients that send no `Origin` (not browsers) are always allowed. Unset: no other origin.' })),
  SSO_WS_MAX_MESSAGE_BYTES: Type.Integer({ default: 1048576, minimum: 1024, description: 'Largest WebSocket message from a client; above it the connection is closed with 1009.' }),
  SSO_WS_MAX_UNAUTHENTICATED_MESSAGE_BYTES: Type.Integer({ default: 16384, minimum: 1024, description: 'Largest message before the connection has authenticated (close 1009 above it).' }),
  SSO_WS_MAX_IN_FLIGHT: Type.Integer({ default: 20, minimum: 1, description: 'Calls one connection may have running at once; more are answered -32001 EBUSY.' }),
  SSO_WS_MAX_BATCH: Type.Integer({ default: 20, minimum: 1, description: 'Most requests in one JSON-RPC batch (array); a larger batch is one -32600 error.' }),
  SSO_WS_MAX_CONNECTIONS: Type.Integer({ default: 10000, minimum: 1, description: 'Open WebSocket connections per instance; the upgrade is refused 503 E011002 above it.' }),
  SSO_WS_MAX_CONNECTIONS_PER_USER: Type.Integer({ default: 32, minimum: 1, description: 'Open authenticated WebSocket connections of one user (`iss` + `sub`) on one instance.' }),
  SSO_WS_MAX_SUBSCRIPTIONS: Type.Integer({ default: 64, minimum: 1, description: 'Subscriptions (`core.subscribe`) one connection may hold.' }),
  SSO_WS_AUTH_TIMEOUT: Type.Integer({ default: 10, minimum: 1, description: 'Seconds a connection may stay unauthenticated before it is closed (4001).' }),
  SSO_WS_IDLE_TIMEOUT: Type.Integer({ default: 60, minimum: 1, description: 'Seconds without a message or a pong before a connection is closed (4004); the server pings every half of it.' }),
  SSO_WS_SEND_BUFFER_BYTES: Type.Integer({ default: 4194304, minimum: 1024, description: 'Bytes queued for a client that reads too slowly before it is disconnected (4008), so a slow consumer never holds unbounded memory.' }),
  SSO_TRUSTED_PROXIES: Type.Optional(Type.String({ description: 'Comma-separated addresses or CIDRs of reverse proxies whose `X-Forwarded-For` is believed; unset: the socket address is the client.' })),
  SHUTDOWN_GRACE_MS: Type.Integer({ default: 10000, minimum: 0, description: 'On SIGTERM/SIGINT: how long in-flight requests may take to finish before the process exits anyway.' }),
  SSO_DEV_DIR: Type.String({ default: '.dev', description: 'Development only: folder of the generated issuer key pair and encryption key.' })
}, { additionalProperties: true })

export type Config = Static<typeof ConfigSchema>

export class ConfigError extends Error {
  readonly problems: string[]
  constructor (problems: string[]) {
    super(`Invalid configuration:\n  - ${problems.join('\n  - ')}`)
    this.name = 'ConfigError'
    this.problems = problems
  }
}

export function isProduction (config: Pick<Config, 'NODE_ENV'>): boolean {
  return config.NODE_ENV === 'production'
}

/** The store the service runs on; the embedded one only ever outside production. */
export function storeKind (config: Config): 'redis' | 'memory' {
  if (config.SSO_STORE === 'auto') return redisSources(config).length > 0 ? 'redis' : 'memory'
  return config.SSO_STORE
}

const REDIS_SOURCES = ['REDIS_URL', 'REDIS_CLUSTER_NODES', 'REDIS_SENTINELS'] as const

/** Which of the ways to reach Redis are configured (a valid configuration has at most one). */
export function redisSources (config: Config): Array<typeof REDIS_SOURCES[number]> {
  return REDIS_SOURCES.filter((name) => config[name] !== undefined && config[name] !== '')
}

export interface HostPort {
  host: string
  port: number
}

/** `host:port,host:port,...` (IPv6 as `[::1]:6379`). */
export function parseHostPorts (name: string, spec: string): HostPort[] {
  const entries = spec.split(',').map((entry) => entry.trim()).filter((entry) => entry !== '')
  if (entries.length === 0) throw new ConfigError([`${name}: no host:port given`])
  return entries.map((entry) => {
    const match = /^(?:\[([^\]]+)\]|([^:\s]+)):(\d{1,5})$/.exec(entry)
    const port = Number(match?.[3])
    if (match === null || port < 1 || port > 65535) throw new ConfigError([`${name}: "${entry}" is not host:port`])
    return { host: match[1] ?? match[2]!, port }
  })
}

/** The entries of a comma-separated setting. */
export function listOf (value: string | undefined): string[] {
  return (value ?? '').split(',').map((entry) => entry.trim()).filter((entry) => entry !== '')
}

export function appList (config: Config): string[] {
  return listOf(config.SSO_APPS)
}

export interface EncryptionKey {
  kid: string
  key: Buffer
}

const KID_PATTERN = /^[A-Za-z0-9_-]{1,64}$/

export function parseEncryptionKeys (spec: string): EncryptionKey[] {
  const keys: EncryptionKey[] = []
  for (const entry of spec.split(',').map((s) => s.trim()).filter((s) => s !== '')) {
    const colon = entry.indexOf(':')
    const kid = colon > 0 ? entry.slice(0, colon) : ''
    const encoded = entry.slice(colon + 1)
    if (!KID_PATTERN.test(kid)) {
      throw new ConfigError([`SSO_ENCRYPTION_KEYS: each entry must be kid:key with a kid of 1-64 characters [A-Za-z0-9_-] (entry #${keys.length + 1})`])
    }
    const key = Buffer.from(encoded, 'base64url')
    if (key.length !== 32 || key.toString('base64url') !== encoded.replace(/=+$/, '')) {
      throw new ConfigError([`SSO_ENCRYPTION_KEYS: key "${kid}" must be 32 bytes in base64url (43 characters)`])
    }
    if (keys.some((k) => k.kid === kid)) throw new ConfigError([`SSO_ENCRYPTION_KEYS: kid "${kid}" appears twice`])
    keys.push({ kid, key })
  }
  if (keys.length === 0) throw new ConfigError(['SSO_ENCRYPTION_KEYS: no key given'])
  return keys
}

/** Checks that span several settings; returns every problem, not only the first. */
export function checkConfig (config: Config): string[] {
  const problems: string[] = []
  const keySources = ['SSO_JWKS_URL', 'SSO_JWKS_FILE', 'SSO_JWT_SECRET'] as const
  const givenSources = keySources.filter((name) => config[name] !== undefined && config[name] !== '')
  if (givenSources.length > 1) problems.push(`give only one UST key source, not ${givenSources.join(' and ')}`)
  if (config.SSO_JWT_SECRET !== undefined && Buffer.byteLength(config.SSO_JWT_SECRET) < 32) {
    problems.push('SSO_JWT_SECRET must be at least 32 bytes')
  }
  if (config.SSO_JWKS_URL !== undefined && !/^https?:\/\//.test(config.SSO_JWKS_URL)) {
    problems.push('SSO_JWKS_URL must be an http(s) URL')
  }
  const tokenTypes = listOf(config.SSO_TOKEN_TYPES)
  if (tokenTypes.length !== new Set(tokenTypes).size) problems.push('SSO_TOKEN_TYPES names a type twice')
  if (config.SSO_SESSION_IDLE_TTL > config.SSO_SESSION_MAX_TTL) {
    problems.push('SSO_SESSION_IDLE_TTL must not exceed SSO_SESSION_MAX_TTL')
  }
  const sources = redisSources(config)
  if (config.SSO_STORE === 'redis' && sources.length === 0) problems.push('SSO_STORE=redis needs REDIS_URL, REDIS_CLUSTER_NODES or REDIS_SENTINELS')
  if (sources.length > 1) problems.push(`give only one way to reach Redis, not ${sources.join(' and ')}`)
  for (const name of ['REDIS_CLUSTER_NODES', 'REDIS_SENTINELS'] as const) {
    const spec = config[name]
    if (spec === undefined) continue
    try {
      parseHostPorts(name, spec)
    } catch (error) {
      problems.push(...(error as ConfigError).problems)
    }
  }
  if (config.REDIS_SENTINELS !== undefined && (config.REDIS_SENTINEL_NAME ?? '') === '') problems.push('REDIS_SENTINELS needs REDIS_SENTINEL_NAME')
  if (config.SSO_NEAR_CACHE === 'on' && storeKind(config) === 'memory') problems.push('SSO_NEAR_CACHE=on needs the Redis store')
  if (config.SSO_REDIS_MIN_REPLICAS_ACK > 0 && storeKind(config) === 'memory') problems.push('SSO_REDIS_MIN_REPLICAS_ACK needs the Redis store')
  if (config.SSO_ENCRYPTION_KEYS !== undefined) {
    try {
      parseEncryptionKeys(config.SSO_ENCRYPTION_KEYS)
    } catch (error) {
      problems.push(...(error as ConfigError).problems)
    }
  }
  if (isProduction(config)) {
    if (storeKind(config) !== 'redis') problems.push('production needs REDIS_URL, REDIS_CLUSTER_NODES or REDIS_SENTINELS (the embedded store is for development only)')
    if (givenSources.length === 0) problems.push('production needs a UST key source: SSO_JWKS_URL, SSO_JWKS_FILE or SSO_JWT_SECRET')
    if (config.SSO_ISSUER === undefined) problems.push('production needs SSO_ISSUER')
    if (appList(config).length === 0) problems.push('production needs SSO_APPS')
    if (config.SSO_ENCRYPTION_KEYS === undefined) problems.push('production needs SSO_ENCRYPTION_KEYS')
  }
  return problems
}

/** One problem per setting the schema refuses, named by the setting (never with its value: it may be a secret). */
function schemaProblems (issues: readonly ErrorObject[]): Map<string, string> {
  const bySetting = new Map<string, { messages: string[], allowed: string[] }>()
  for (const issue of issues) {
    const name = issue.instancePath.slice(1) || String(issue.params.missingProperty ?? '(configuration)')
    const entry = bySetting.get(name) ?? { messages: [], allowed: [] }
    // A union of literals (LOG_LEVEL) fails once per literal, then once for the union.
    if (issue.keyword === 'const') entry.allowed.push(String(issue.params.allowedValue))
    else if (issue.keyword !== 'anyOf' && issue.message !== undefined && !entry.messages.includes(issue.message)) entry.messages.push(issue.message)
    bySetting.set(name, entry)
  }
  return new Map([...bySetting].map(([name, { messages, allowed }]) =>
    [name, `${name} ${allowed.length > 0 ? `must be one of ${allowed.join(', ')}` : messages.join(' and ')}`]))
}

export function loadConfig (env: Record<string, string | undefined> = process.env): Config {
  // An empty variable (`SSO_ISSUER=` or compose's `${X:-}`) means "not set", not "set to ''".
  const given = Object.fromEntries(Object.entries(env).filter(([, value]) => value !== undefined && value !== ''))
  const parse = (data: Record<string, unknown>) => envSchema<Config>({ schema: ConfigSchema, data, dotenv: false, env: false })
  try {
    const config = parse(given)
    const problems = checkConfig(config)
    if (problems.length > 0) throw new ConfigError(problems)
    return config
  } catch (error) {
    const issues = (error as { errors?: ErrorObject[] }).errors
    if (error instanceof ConfigError || issues === undefined) throw error instanceof ConfigError ? error : new ConfigError([(error as Error).message])
    // Every problem at once: the other settings are still checked against each other, with the
    // refused ones at their defaults, leaving out the checks that involve a refused one.
    const refused = schemaProblems(issues)
    const rest = Object.fromEntries(Object.entries(given).filter(([name]) => !refused.has(name)))
    const involvesRefused = (problem: string) => [...refused.keys()].some((name) => new RegExp(`\\b${name}\\b`).test(problem))
    let crossProblems: string[] = []
    try {
      crossProblems = checkConfig(parse(rest)).filter((problem) => !involvesRefused(problem))
    } catch {
      // Not expected (each refused setting was left out); the schema's problems are reported all the same.
    }
    throw new ConfigError([...refused.values(), ...crossProblems])
  }
}

/** A literal configuration with every default filled in, for tests and tools. */
export function defaultConfig (overrides: Partial<Config> = {}): Config {
  const config = envSchema<Config>({ schema: ConfigSchema, data: {}, dotenv: false, env: false })
  return { ...config, ...overrides }
}

/** Which Redis the configuration names; checkConfig has made sure there is exactly one. */
export function redisTopology (config: Config): RedisTopology {
  if (config.REDIS_CLUSTER_NODES !== undefined) return { kind: 'cluster', nodes: parseHostPorts('REDIS_CLUSTER_NODES', config.REDIS_CLUSTER_NODES) }
  if (config.REDIS_SENTINELS !== undefined) {
    return { kind: 'sentinel', sentinels: parseHostPorts('REDIS_SENTINELS', config.REDIS_SENTINELS), name: config.REDIS_SENTINEL_NAME ?? '' }
  }
  return { kind: 'standalone', url: config.REDIS_URL ?? '' }
}
