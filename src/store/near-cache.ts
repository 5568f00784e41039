import { createRequire } from 'node:module'
import { performance } from 'node:perf_hooks'
import { Cluster, type Redis } from 'ioredis'
import { LRUCache } from 'lru-cache'
import { parseRecord, type RedisStore } from './redis-store.ts'
import { createNodeClient } from './redis-topology.ts'
import {
  SessionEndedError, sessionOwner, userOwner,
  type Idempotency, type Owner, type Store, type StoredAttribute, type WriteItem, type WriteMode, type WriteOutcome
} from './types.ts'

// The near cache (SSO_NEAR_CACHE=on, D90-D96): a Store around the Redis store that answers
// reads of recently read attributes from process memory. Redis tells it of every change through
// server-assisted client-side caching: a reader connection per server (per master on a Cluster)
// runs `CLIENT TRACKING on REDIRECT <id>` to a subscriber connection on `__redis__:invalidate`
// (RESP2), and every key the reader has read is reported there when it changes, expires or is
// deleted. Fills read with plain commands in one MULTI (the read script renews the idle window
// with PEXPIRE, which would invalidate the very keys it just read); the renewal goes in the
// background, at most once per owner per interval. The consistency contract: docs/SCALING.md.

// ioredis routes Cluster commands with cluster-key-slot (no type declarations of its own).
const slotOf = createRequire(import.meta.url)('cluster-key-slot') as (key: string) => number

const INVALIDATE_CHANNEL = '__redis__:invalidate'
// Redis' clock and this process' monotonic clock may run at slightly different rates: an entry
// counts as that much older than it is (0.1 % of its age: 10 ms after 10 s).
const CLOCK_RATE_MARGIN = 0.001
const TRACKER_RETRY_MS = 200
/** The CLIENT SETNAME of the tracking connections, for CLIENT LIST: `-reader` and `-invalidations` after it. */
export const NEAR_CACHE_CONNECTION = 'sso-attrs-near-cache'
// A rough size of what an entry holds (UTF-16 strings plus the objects around them).
const FIELD_OVERHEAD_BYTES = 120

export interface NearCacheOptions {
  /** Most owners (sessions or users) whose attributes are kept. */
  maxOwners: number
  /** Most bytes of names and stored values kept (an estimate: 2 bytes a character plus overhead). */
  maxBytes: number
  /** A cached read renews the owner's idle window at most this often (ms); at most a quarter of the idle window. */
  renewIntervalMs: number
  /**
   * A cached read is answered only while the invalidation connection has answered a heartbeat
   * sent less than this long ago (ms): the bound on staleness when that connection hangs silently.
   */
  maxStalenessMs: number
}

export interface NearCacheStats {
  hits: number
  misses: number
  /** Reads passed to the Redis store because no tracking connection was ready for the key. */
  bypassed: number
  fills: number
  /** Fills not kept: an invalidation or a flush came while they were in flight. */
  discardedFills: number
  invalidations: number
  flushes: number
}

interface CachedField {
  record: StoredAttribute | null
  /** Redis time (epoch ms) from which the field may no longer be served; Infinity: until invalidated. */
  validUntil: number
}

interface OwnerEntry {
  tracker: Tracker
  /** An upper bound of Redis time minus performance.now() (ms), from the fills' TIME. */
  clockBase: number
  /** performance.now() of the oldest fill merged into the entry. */
  filledAt: number
  fields: Map<string, CachedField>
  bytes: number
}

/** The fills of one owner in flight; an invalidation bumps `generation` and their results are dropped. */
interface FillsInFlight {
  generation: number
  count: number
}

/** A fill others may wait for instead of sending their own, while nothing has spoilt it. */
interface SharedFill {
  generation: number
  epoch: number
  result: Promise<Array<StoredAttribute | null>>
}

interface TrackerEvents {
  onInvalidate: (message: unknown) => void
  onDown: (tracker: Tracker) => void
}

/** The two connections to one server: the tracked reader and the subscriber it redirects to. */
class Tracker {
  readonly node: string
  readonly reader: Redis
  readonly #subscriber: Redis
  readonly #events: TrackerEvents
  readonly #heartbeatMs: number
  #state: 'starting' | 'ready' | 'down' = 'starting'
  /** performance.now() when the newest answered heartbeat was sent: every invalidation of a change made before it has arrived. */
  #confirmedAt = Number.NEGATIVE_INFINITY
  #timer: NodeJS.Timeout | undefined

  constructor (node: string, reader: Redis, subscriber: Redis, heartbeatMs: number, events: TrackerEvents) {
    this.node = node
    this.reader = reader
    this.#subscriber = subscriber
    this.#heartbeatMs = heartbeatMs
    this.#events = events
    for (const connection of [reader, subscriber]) {
      connection.on('error', () => {})
      connection.once('close', () => { this.close() })
    }
  }

  get ready (): boolean {
    return this.#state === 'ready'
  }

  /** Ready, and a heartbeat sent at most `maxStalenessMs` ago has come back. */
  fresh (now: number, maxStalenessMs: number): boolean {
    return this.#state === 'ready' && now - this.#confirmedAt <= maxStalenessMs
  }

  async start (): Promise<void> {
    await Promise.all([this.reader.connect(), this.#subscriber.connect()])
    const id = await this.#subscriber.client('ID')
    // Payload: an array of key names, or null after FLUSHALL/FLUSHDB ('message' would join the array with commas).
    this.#subscriber.on('messageBuffer', (_channel: Buffer, message: unknown) => { this.#events.onInvalidate(message) })
    await this.#subscriber.subscribe(INVALIDATE_CHANNEL)
    await this.reader.client('TRACKING', 'ON', 'REDIRECT', String(id))
    if (this.#state !== 'starting') return
    // Nothing was read on the reader before tracking was on, so nothing is cached that could miss an invalidation.
    this.#confirmedAt = performance.now()
    this.#state = 'ready'
    this.#timer = setInterval(() => { this.#heartbeat() }, this.#heartbeatMs)
    this.#timer.unref()
  }

  /**
   * Resolves once every invalidation of a change made before the call has arrived: Redis writes
   * them to the subscriber before its answer to a later PING.
   */
  async barrier (): Promise<void> {
    const sentAt = performance.now()
    try {
      await this.#subscriber.ping()
      if (sentAt > this.#confirmedAt) this.#confirmedAt = sentAt
    } catch {
      this.close()
    }
  }

  #heartbeat (): void {
    this.barrier().catch(() => {})
  }

  /** Both connections go; the cache forgets everything read through them (onDown). Idempotent. */
  close (): void {
    if (this.#state === 'down') return
    this.#state = 'down'
    clearInterval(this.#timer)
    this.reader.disconnect()
    this.#subscriber.disconnect()
    this.#events.onDown(this)
  }
}

export class NearCacheStore implements Store {
  readonly kind = 'redis' as const
  readonly inner: RedisStore
  readonly stats: NearCacheStats = { hits: 0, misses: 0, bypassed: 0, fills: 0, discardedFills: 0, invalidations: 0, flushes: 0 }
  readonly #options: NearCacheOptions
  readonly #entries: LRUCache<string, OwnerEntry>
  /** Owners whose idle window this instance renewed within the interval. */
  readonly #renewed: LRUCache<string, true>
  readonly #fills = new Map<string, FillsInFlight>()
  /** Fills by owner and names: concurrent misses of the same read (a hot key just invalidated) send one. */
  readonly #sharedFills = new Map<string, SharedFill>()
  /** Trackers by Cluster node key (`host:port`), or '' for the one server. */
  readonly #trackers = new Map<string, Tracker>()
  readonly #retryAt = new Map<string, number>()
  readonly #housekeeping: NodeJS.Timeout
  /** Bumped by every flush: a fill that started before one is not kept. */
  #epoch = 0
  /** Where fill generations come from: never the same number twice, so a finished fill is never taken for a live one. */
  #generations = 0
  #closed = false

  constructor (inner: RedisStore, options: NearCacheOptions, limits: { sessionIdleTtlMs: number, userIdleTtlMs?: number | undefined }) {
    this.inner = inner
    this.#options = options
    this.#entries = new LRUCache<string, OwnerEntry>({
      max: options.maxOwners,
      maxSize: options.maxBytes,
      sizeCalculation: (entry) => Math.max(1, entry.bytes)
    })
    const idleMs = Math.min(limits.sessionIdleTtlMs, limits.userIdleTtlMs ?? Number.POSITIVE_INFINITY)
    this.#renewed = new LRUCache<string, true>({
      max: options.maxOwners,
      ttl: Math.max(1, Math.min(options.renewIntervalMs, Math.floor(idleMs / 4))),
      ttlAutopurge: false
    })
    this.#housekeeping = setInterval(() => { this.#followTopology() }, 1000)
    this.#housekeeping.unref()
    if (!(inner.redis instanceof Cluster)) this.#startTracker('')
  }

  /**
   * Waits that tests and tools use, kept off the class's methods so that the metrics (which time
   * every method of the store) do not take them for store calls.
   */
  readonly tracking = {
    /** Resolves once a tracking connection serves the server of `key` (an owner's key). */
    whenReady: async (key: string, timeoutMs = 5000): Promise<void> => {
      const until = performance.now() + timeoutMs
      while (performance.now() < until) {
        if (this.#trackerFor(key)?.fresh(performance.now(), this.#options.maxStalenessMs) === true) return
        await new Promise((resolve) => setTimeout(resolve, 10))
      }
      throw new Error('no tracking connection became ready')
    },
    /**
     * Resolves once every invalidation of a change made before the call has arrived on every
     * ready tracker (one PING each): a read after it sees every write answered before the call.
     */
    sync: async (): Promise<void> => { await this.#sync() }
  }

  /** The Redis client of the store underneath (readiness, eviction-policy check, tests). */
  get redis (): RedisStore['redis'] {
    return this.inner.redis
  }

  /** Change events come from the store underneath: every write goes through it. */
  createEventFeed (): ReturnType<RedisStore['createEventFeed']> {
    return this.inner.createEventFeed()
  }

  async get (owner: Owner, names: string[]): Promise<Array<StoredAttribute | null>> {
    const keys = this.inner.keysOf(owner)
    const attrs = keys[0]!
    const tracker = this.#trackerFor(attrs)
    const now = performance.now()
    if (tracker === undefined || !tracker.fresh(now, this.#options.maxStalenessMs)) {
      this.stats.bypassed++
      return await this.inner.get(owner, names)
    }
    const base = attrs.slice(0, -2)
    const cached = this.#cached(base, tracker, names, now)
    if (cached !== undefined) {
      this.stats.hits++
      this.#renew(base, owner)
      return cached.map((field) => field.record)
    }
    this.stats.misses++
    return await this.#sharedFill(owner, keys, base, tracker, names)
  }

  /**
   * Joins a fill of the same names in flight, unless an invalidation or a flush came since it
   * was sent (its answer may then be older than this read: a write answered in between must be
   * seen); else sends one.
   */
  async #sharedFill (owner: Owner, keys: string[], base: string, tracker: Tracker, names: string[]): Promise<Array<StoredAttribute | null>> {
    const key = names.length === 1 ? `${base}\0${names[0]!}` : `${base}\0${names.join('\0')}`
    const generation = this.#fills.get(base)?.generation
    const shared = this.#sharedFills.get(key)
    if (shared !== undefined && shared.generation === generation && shared.epoch === this.#epoch) return await shared.result
    const result = this.#fill(owner, keys, base, tracker, names)
    const entry = { generation: this.#fills.get(base)!.generation, epoch: this.#epoch, result }
    this.#sharedFills.set(key, entry)
    try {
      return await result
    } finally {
      if (this.#sharedFills.get(key) === entry) this.#sharedFills.delete(key)
    }
  }

  async exists (owner: Owner, names: string[]): Promise<boolean[]> {
    const attrs = this.inner.keysOf(owner)[0]!
    const tracker = this.#trackerFor(attrs)
    const now = performance.now()
    const base = attrs.slice(0, -2)
    const cached = tracker !== undefined && tracker.fresh(now, this.#options.maxStalenessMs) && names.length > 0
      ? this.#cached(base, tracker, names, now)
      : undefined
    if (cached === undefined) return await this.inner.exists(owner, names)
    this.stats.hits++
    this.#renew(base, owner)
    return cached.map((field) => field.record !== null)
  }

  /** The fields of every name when each is cached and still valid on Redis' clock, else undefined. */
  #cached (base: string, tracker: Tracker, names: string[], now: number): CachedField[] | undefined {
    const entry = this.#entries.get(base)
    if (entry === undefined || entry.tracker !== tracker) return undefined
    // The latest Redis time it can be now, a little later for every second the entry is old.
    const redisNow = now + entry.clockBase + (now - entry.filledAt) * CLOCK_RATE_MARGIN
    const fields: CachedField[] = []
    for (const name of names) {
      const field = entry.fields.get(name)
      if (field === undefined || field.validUntil <= redisNow) return undefined
      fields.push(field)
    }
    return fields
  }

  /**
   * Reads the names on the tracked connection, atomically with Redis' time, the tombstone, the
   * deadline and the hash's TTL, and keeps the result unless an invalidation or a flush came
   * while the read was in flight. Any failure goes to the Redis store's own read instead.
   */
  async #fill (owner: Owner, keys: string[], base: string, tracker: Tracker, names: string[]): Promise<Array<StoredAttribute | null>> {
    const [attrs, , meta, ended] = keys
    const epoch = this.#epoch
    let inFlight = this.#fills.get(base)
    if (inFlight === undefined) {
      inFlight = { generation: ++this.#generations, count: 0 }
      this.#fills.set(base, inFlight)
    }
    const generation = inFlight.generation
    inFlight.count++
    const sentAt = performance.now()
    let replies: Array<[Error | null, unknown]> | null = null
    try {
      const multi = tracker.reader.multi().time()
      if (owner.scope === 'session') multi.pttl(ended!).get(meta!)
      replies = await multi.pttl(attrs!).hmget(attrs!, ...names).exec()
    } catch {
      replies = null
    } finally {
      if (--inFlight.count === 0) this.#fills.delete(base)
    }
    if (replies === null || replies.some(([error]) => error !== null)) return await this.inner.get(owner, names)
    this.stats.fills++

    const [seconds, micros] = replies[0]![1] as [string, string]
    const redisTime = Number(seconds) * 1000 + Number(micros) / 1000
    const redisMs = Math.floor(redisTime)
    let next = 1
    let hasData: boolean
    if (owner.scope === 'session') {
      if (replies[1]![1] !== -2) throw new SessionEndedError()
      hasData = replies[2]![1] !== null
      next = 3
    } else {
      hasData = replies[1]![1] !== -2
    }
    const hashTtl = replies[next]![1] as number
    const values = replies[next + 1]![1] as Array<string | null>
    const hashExpiresAt = hashTtl >= 0 ? redisMs + hashTtl : Number.POSITIVE_INFINITY
    const fields = names.map((name, index): CachedField => {
      const value = values[index]
      if (!hasData || value === null || value === undefined) return { record: null, validUntil: Number.POSITIVE_INFINITY }
      const record = parseRecord(name, value)
      // As the scripts' purge: an attribute whose expiry is at or before Redis' now is gone.
      if (record.expiresAt !== null && record.expiresAt <= redisMs) return { record: null, validUntil: Number.POSITIVE_INFINITY }
      return { record, validUntil: Math.min(hashExpiresAt, record.expiresAt ?? Number.POSITIVE_INFINITY) }
    })

    if (this.#epoch === epoch && inFlight.generation === generation && tracker.ready && !this.#closed) {
      this.#keep(base, tracker, redisTime - sentAt, sentAt, names, fields)
    } else {
      this.stats.discardedFills++
    }
    this.#renew(base, owner)
    return fields.map((field) => field.record)
  }

  #keep (base: string, tracker: Tracker, clockBase: number, filledAt: number, names: string[], fields: CachedField[]): void {
    let entry = this.#entries.get(base)
    if (entry === undefined || entry.tracker !== tracker) {
      entry = { tracker, clockBase, filledAt, fields: new Map(), bytes: 0 }
    } else {
      entry.clockBase = Math.min(entry.clockBase, clockBase)
      entry.filledAt = Math.min(entry.filledAt, filledAt)
    }
    names.forEach((name, index) => entry.fields.set(name, fields[index]!))
    let bytes = 0
    for (const [name, field] of entry.fields) bytes += FIELD_OVERHEAD_BYTES + 2 * (name.length + (field.record?.payload.length ?? 0))
    entry.bytes = bytes
    // set() again: the LRU takes the size at set time.
    this.#entries.set(base, entry)
  }

  /** The idle renewal of a read from the cache: the Redis store's read script with no names, in the background. */
  #renew (base: string, owner: Owner): void {
    if (this.#renewed.has(base)) return
    this.#renewed.set(base, true)
    this.inner.exists(owner, []).catch(() => {})
  }

  /** Forgets an owner and spoils its fills in flight. */
  #invalidate (base: string): void {
    this.#entries.delete(base)
    const inFlight = this.#fills.get(base)
    if (inFlight !== undefined) inFlight.generation = ++this.#generations
  }

  #flush (): void {
    this.#epoch++
    this.#entries.clear()
    for (const inFlight of this.#fills.values()) inFlight.generation = ++this.#generations
    this.stats.flushes++
  }

  #onInvalidate (message: unknown): void {
    if (message === null) {
      this.#flush()
      return
    }
    if (!Array.isArray(message)) return
    for (const key of message as unknown[]) {
      // Every key of an owner is `<prefix>{<tag>}:<kind>`, and the prefix has no braces.
      const text = String(key)
      const end = text.lastIndexOf('}')
      if (end >= 0) this.#invalidate(text.slice(0, end + 1))
      this.stats.invalidations++
    }
  }

  /** The ready-or-starting tracker of the server that holds `key`; starts one when there is none. */
  #trackerFor (key: string): Tracker | undefined {
    const redis = this.inner.redis
    let node = ''
    if (redis instanceof Cluster) {
      const owner = redis.slots[slotOf(key)]?.[0]
      if (owner === undefined) return undefined
      node = owner
    }
    const tracker = this.#trackers.get(node)
    if (tracker === undefined) this.#startTracker(node)
    return tracker
  }

  #startTracker (node: string): void {
    if (this.#closed || (this.#retryAt.get(node) ?? 0) > performance.now()) return
    const connection = this.inner.connection
    const separator = node.lastIndexOf(':')
    const address = node === '' ? undefined : { host: node.slice(0, separator), port: Number(node.slice(separator + 1)) }
    // Never reconnected: a connection that drops may have missed invalidations, so the tracker
    // is dropped with the whole cache and a new one starts on a later read.
    const open = (role: 'reader' | 'invalidations') => createNodeClient({
      ...connection,
      redisOptions: { ...connection.redisOptions, retryStrategy: () => null, autoResubscribe: false, enableAutoPipelining: false, connectionName: `${NEAR_CACHE_CONNECTION}-${role}` }
    }, address)
    const tracker = new Tracker(node, open('reader'), open('invalidations'), Math.max(10, Math.floor(this.#options.maxStalenessMs / 4)), {
      onInvalidate: (message) => { this.#onInvalidate(message) },
      onDown: (down) => {
        if (this.#trackers.get(down.node) === down) this.#trackers.delete(down.node)
        this.#retryAt.set(down.node, performance.now() + TRACKER_RETRY_MS)
        this.#flush()
      }
    })
    this.#trackers.set(node, tracker)
    tracker.start().catch(() => { tracker.close() })
  }

  /** Closes the trackers of Cluster nodes that are no longer masters; restarts the one server's. */
  #followTopology (): void {
    const redis = this.inner.redis
    if (!(redis instanceof Cluster)) {
      if (!this.#trackers.has('')) this.#startTracker('')
      return
    }
    if (redis.status !== 'ready') return
    const masters = new Set(redis.nodes('master').map((node) => `${node.options.host ?? ''}:${node.options.port ?? ''}`))
    for (const [node, tracker] of this.#trackers) if (!masters.has(node)) tracker.close()
  }

  async #sync (): Promise<void> {
    await Promise.all([...this.#trackers.values()].filter((tracker) => tracker.ready).map(async (tracker) => { await tracker.barrier() }))
  }

  /** A change through this instance: forgotten before it is sent and again once answered, so this instance reads its own writes. */
  async #changing<T> (owner: Owner, change: () => Promise<T>): Promise<T> {
    const base = this.inner.keysOf(owner)[0]!.slice(0, -2)
    this.#invalidate(base)
    try {
      return await change()
    } finally {
      this.#invalidate(base)
    }
  }

  async write (owner: Owner, mode: WriteMode, items: WriteItem[], idempotency?: Idempotency): Promise<WriteOutcome[]> {
    return await this.#changing(owner, async () => await this.inner.write(owner, mode, items, idempotency))
  }

  async delete (owner: Owner, names: string[], ifVersion?: number, idempotency?: Idempotency): Promise<boolean[]> {
    return await this.#changing(owner, async () => await this.inner.delete(owner, names, ifVersion, idempotency))
  }

  async names (owner: Owner): Promise<string[]> {
    return await this.inner.names(owner)
  }

  async eraseUserAttributes (userId: string): Promise<number> {
    return await this.#changing(userOwner(userId), async () => await this.inner.eraseUserAttributes(userId))
  }

  async endSession (sessionId: string, tombstoneTtlMs: number): Promise<void> {
    await this.#changing(sessionOwner(sessionId), async () => { await this.inner.endSession(sessionId, tombstoneTtlMs) })
  }

  async endUserSessions (userId: string, tombstoneTtlMs: number): Promise<number> {
    // The sessions are known only to the script: wait for their invalidations instead.
    const ended = await this.inner.endUserSessions(userId, tombstoneTtlMs)
    await this.#sync()
    return ended
  }

  async admitSession (userId: string, issuedAtMs: number | null): Promise<void> {
    await this.inner.admitSession(userId, issuedAtMs)
  }

  async indexSession (userId: string, sessionId: string, issuedAtMs: number | null, untilMs: number): Promise<void> {
    await this.inner.indexSession(userId, sessionId, issuedAtMs, untilMs)
  }

  async isSessionEnded (sessionId: string): Promise<boolean> {
    return await this.inner.isSessionEnded(sessionId)
  }

  async rememberOnce (id: string, untilMs: number): Promise<boolean> {
    return await this.inner.rememberOnce(id, untilMs)
  }

  async forgetOnce (id: string): Promise<void> {
    await this.inner.forgetOnce(id)
  }

  async countHits (windowMs: number, hits: Array<[key: string, count: number]>): Promise<{ totals: number[], ttlMs: number }> {
    return await this.inner.countHits(windowMs, hits)
  }

  async ping (): Promise<void> {
    await this.inner.ping()
  }

  async close (): Promise<void> {
    this.#closed = true
    clearInterval(this.#housekeeping)
    for (const tracker of [...this.#trackers.values()]) tracker.close()
    this.#entries.clear()
    await this.inner.close()
  }
}
