import { performance } from 'node:perf_hooks'
import { Counter, Registry, collectDefaultMetrics } from 'prom-client'
import { LabeledCounter, LabeledHistogram, type CounterSeries, type HistogramSeries } from './metric-series.ts'
import { ERROR_CATALOG, isAppError } from './errors.ts'
import type { NearCacheStats } from './store/near-cache.ts'
import { CipherNeededError, StaleReadError, type Owner, type Store, type WriteItem, type WriteOutcome } from './store/types.ts'

// The service's Prometheus metrics. Every label takes its values from a closed set (operation
// ids, HTTP statuses, catalog codes, configured apps, store method names): never an attribute
// name, a token, a session or user id, or anything else a client chooses.

/** `app` label of a request with no `current_app`, and of one whose app is not configured. */
export const NO_APP = 'none'
export const OTHER_APP = 'other'
/** `sub_status` label of a response that is not an error envelope. */
export const NO_SUB_STATUS = 'none'

export interface RequestSample {
  operation: string
  status: number
  /** The first sub_status code of an error envelope, else undefined. */
  errorCode?: string | undefined
  app: unknown
  seconds: number
}

export class ServiceMetrics {
  readonly registry = new Registry()
  readonly #apps: ReadonlySet<string>
  readonly #requests = new LabeledCounter(
    'sso_attrs_http_requests_total',
    'HTTP requests answered, by operation id, HTTP status, first sub_status code and current_app.',
    ['operation', 'status', 'sub_status', 'app'] as const,
    this.registry
  )

  readonly #requestSeconds = new LabeledHistogram(
    'sso_attrs_http_request_duration_seconds',
    'Time from receiving a request to sending its response, by operation id and HTTP status.',
    ['operation', 'status'] as const,
    [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
    this.registry
  )

  readonly #storeSeconds = new LabeledHistogram(
    'sso_attrs_store_command_duration_seconds',
    'Duration of store calls (one Lua script or command per call on Redis), by store, scope (session or user attributes, none for calls on neither), call and outcome (ok, refused: a precondition or ended session, error: store failure).',
    ['store', 'scope', 'command', 'outcome'] as const,
    [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1],
    this.registry
  )

  readonly #tokenCache = new LabeledCounter(
    'sso_attrs_token_cache_lookups_total',
    'Lookups of verified USTs in the token cache: hit, or miss (the signature is then verified).',
    ['result'] as const,
    this.registry
  )

  readonly #tokenCacheHit = this.#tokenCache.series({ result: 'hit' })
  readonly #tokenCacheMiss = this.#tokenCache.series({ result: 'miss' })

  readonly #written = this.#byScope(new LabeledCounter(
    'sso_attrs_attributes_written_total',
    'Attributes written (created, updated or set) by successful store writes, by scope (session or user attributes).',
    ['scope'] as const,
    this.registry
  ))

  readonly #encrypted = this.#byScope(new LabeledCounter(
    'sso_attrs_attributes_encrypted_total',
    'Attributes written as ciphertext because the request said encrypt: true, by scope; a write that keeps an existing attribute encrypted is counted as written only.',
    ['scope'] as const,
    this.registry
  ))

  readonly #expiring = this.#byScope(new LabeledCounter(
    'sso_attrs_attributes_expiring_total',
    'Attributes written with an expiry time, by scope. The stores purge expired attributes lazily and do not report them: each of these expires unless rewritten or deleted first.',
    ['scope'] as const,
    this.registry
  ))

  #byScope (counter: LabeledCounter<'scope'>): Record<Owner['scope'], CounterSeries> {
    return { session: counter.series({ scope: 'session' }), user: counter.series({ scope: 'user' }) }
  }

  constructor (apps: readonly string[], options: { defaultMetrics?: boolean } = {}) {
    this.#apps = new Set(apps)
    if (options.defaultMetrics !== false) collectDefaultMetrics({ register: this.registry })
  }

  appLabel (app: unknown): string {
    if (app === undefined || app === null) return NO_APP
    return typeof app === 'string' && this.#apps.has(app) ? app : OTHER_APP
  }

  observeRequest (sample: RequestSample): void {
    const status = String(sample.status)
    // An error answered without our envelope (Fastify's own 503 while closing) is `other`.
    let subStatus = NO_SUB_STATUS
    if (sample.errorCode !== undefined) subStatus = sample.errorCode in ERROR_CATALOG ? sample.errorCode : 'other'
    else if (sample.status >= 400) subStatus = 'other'
    this.#requests.series({ operation: sample.operation, status, sub_status: subStatus, app: this.appLabel(sample.app) }).inc()
    this.#requestSeconds.series({ operation: sample.operation, status }).observe(sample.seconds)
  }

  /** The near cache's counters (SSO_NEAR_CACHE=on), read at scrape time. */
  observeNearCache (stats: Readonly<NearCacheStats>): void {
    const counted: Record<string, number> = {}
    const registered = new Counter({
      name: 'sso_attrs_near_cache_events_total',
      help: 'Near cache: reads answered from memory (hit), filled from Redis (miss), passed to Redis with no tracking connection ready (bypass); fills, fills dropped because a change came while they were in flight, invalidations received, whole-cache flushes.',
      labelNames: ['event'] as const,
      registers: [this.registry],
      collect () {
        for (const [event, value] of Object.entries(NEAR_CACHE_EVENTS).map(([event, key]) => [event, stats[key]] as const)) {
          const delta = value - (counted[event] ?? 0)
          if (delta > 0) registered.labels({ event }).inc(delta)
          counted[event] = value
        }
      }
    })
    for (const event of Object.keys(NEAR_CACHE_EVENTS)) registered.labels({ event }).inc(0)
  }

  /** For the UST verifier's onCacheLookup option. */
  readonly tokenCacheLookup = (hit: boolean): void => {
    (hit ? this.#tokenCacheHit : this.#tokenCacheMiss).inc()
  }

  /**
   * Times every asynchronous method of the store, in place (the attribute service and the
   * routes keep the same object), and counts the attributes its writes store.
   */
  instrumentStore<S extends Store> (store: S): S {
    const target = store as unknown as Record<string, unknown> // methods are replaced by name
    for (const command of methodNames(store)) {
      if (command === 'close') continue
      const method = target[command] as (...args: unknown[]) => unknown
      const outcomes = (scope: string): Outcomes => {
        const [ok, refused, failed] = (['ok', 'refused', 'error'] as const).map((outcome) => this.#storeSeconds.series({ store: store.kind, scope, command, outcome }))
        return { ok: ok!, refused: refused!, failed: failed! }
      }
      // Attribute calls take their owner first and are labelled by its scope; the others have one scope.
      const fixedScope = STORE_CALL_SCOPES[command]
      const byScope: Record<string, Outcomes> = fixedScope !== undefined
        ? { [fixedScope]: outcomes(fixedScope) }
        : { session: outcomes('session'), user: outcomes('user') }
      target[command] = (...args: unknown[]): unknown => {
        const started = performance.now()
        const result = method.apply(store, args)
        if (!(result instanceof Promise)) return result
        const scope = fixedScope ?? (args[0] as Partial<Owner> | undefined)?.scope ?? 'none'
        const series = byScope[scope] ??= outcomes(scope)
        return result.then((value: unknown) => {
          series.ok.observe((performance.now() - started) / 1000)
          if (command === 'write') this.#countWrite((args[0] as Owner).scope, args[2] as WriteItem[], value as WriteOutcome[])
          return value
        }, (error: unknown) => {
          (isRefusal(error) ? series.refused : series.failed).observe((performance.now() - started) / 1000)
          throw error
        })
      }
    }
    return store
  }

  #countWrite (scope: Owner['scope'], items: WriteItem[], outcomes: WriteOutcome[]): void {
    this.#written[scope].inc(outcomes.length)
    const encrypted = items.filter((item) => item.value.kind === 'cipher').length
    if (encrypted > 0) this.#encrypted[scope].inc(encrypted)
    const expiring = outcomes.filter((outcome) => outcome.expiresAt !== null).length
    if (expiring > 0) this.#expiring[scope].inc(expiring)
  }

  get contentType (): string {
    return this.registry.contentType
  }

  async render (): Promise<string> {
    return await this.registry.metrics()
  }
}

const NEAR_CACHE_EVENTS = {
  hit: 'hits',
  miss: 'misses',
  bypass: 'bypassed',
  fill: 'fills',
  discarded_fill: 'discardedFills',
  invalidation: 'invalidations',
  flush: 'flushes'
} as const satisfies Record<string, keyof NearCacheStats>

interface Outcomes {
  ok: HistogramSeries
  refused: HistogramSeries
  failed: HistogramSeries
}

/** The scope label of store calls that take no owner; the attribute calls take theirs from the owner. */
const STORE_CALL_SCOPES: Readonly<Record<string, string>> = {
  eraseUserAttributes: 'user',
  endSession: 'session',
  isSessionEnded: 'session',
  endUserSessions: 'user',
  admitSession: 'user',
  indexSession: 'user',
  rememberOnce: 'none',
  forgetOnce: 'none',
  countHits: 'none',
  ping: 'none'
}

/** A refusal is the store's answer about the data (precondition, ended session, a retry the service handles), not a failure of the store. */
function isRefusal (error: unknown): boolean {
  return error instanceof StaleReadError || error instanceof CipherNeededError || (isAppError(error) && error.statusCode < 500)
}

/** Method names of an object and its class chain (private #methods are not visible, and not wrapped). */
function methodNames (instance: object): string[] {
  const names = new Set<string>()
  for (let level: object | null = instance; level !== null && level !== Object.prototype; level = Object.getPrototypeOf(level) as object | null) {
    for (const name of Object.getOwnPropertyNames(level)) {
      if (name !== 'constructor' && typeof Object.getOwnPropertyDescriptor(level, name)?.value === 'function') names.add(name)
    }
  }
  return [...names]
}
