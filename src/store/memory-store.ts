import { AppError } from '../errors.ts'
import { EVENTS_TRIM_STEP, resolveEventLogOptions, compareEventIds, isEventId, type EventLog, type EventReplay } from '../events/event-log.ts'
import { MemoryEventFeed } from '../events/memory-feed.ts'
import type { AttributeEvent } from '../events/types.ts'
import {
  CipherNeededError, resolveLimits, PreconditionFailed, SessionEndedError, StaleReadError, compareNames, sessionOwner, userOwner,
  type EventLogOptions, type Idempotency, type Owner, type Store, type StoreLimits, type StoredAttribute, type WriteItem, type WriteMode, type WriteOutcome
} from './types.ts'

// The embedded store for development: the same semantics as the Redis scripts, step for
// step (purge expired, check every item, then write all), in one process's memory.

/** The attributes of one owner: a session, or a user (whose deadline is Infinity). */
interface Session {
  deadline: number
  idleUntil: number
  attributes: Map<string, StoredAttribute>
}

export interface MemoryStoreOptions extends StoreLimits {
  now?: () => number
  sweepIntervalMs?: number
  events?: EventLogOptions | undefined
}

/** An event before the log gives it its id. */
type NewEvent = Omit<AttributeEvent, 'id' | 'owner' | 'at'>

/** An owner's event log, as the Redis list of events.lua: every event after `base` is in `events`. */
interface OwnerEvents {
  base: string
  events: AttributeEvent[]
  until: number
}

export class MemoryStore implements Store, EventLog {
  readonly kind = 'memory' as const
  readonly #owners = { session: new Map<string, Session>(), user: new Map<string, Session>() }
  /** Tombstones: session id -> epoch ms until which the session stays ended. */
  readonly #endedSessions = new Map<string, number>()
  /** User tombstones: user id -> when the user's sessions were ended, and until when that holds. */
  readonly #endedUsers = new Map<string, { at: number, until: number }>()
  /** User index: user id -> session id -> epoch ms until which the session may be used. */
  readonly #userSessions = new Map<string, Map<string, number>>()
  readonly #onceIds = new Map<string, number>()
  readonly #hits = new Map<string, { current: number, until: number }>()
  /** Idempotency-Key records: the first final outcome of a write or delete, by owner and key. */
  readonly #idempotencyRecords = new Map<string, { fingerprint: string, until: number, outcome: { value: unknown } | { error: PreconditionFailed } }>()
  /** Change events (issue 16) by owner (`scope:id`), and the feed's listeners. */
  readonly #eventLogs = new Map<string, OwnerEvents>()
  readonly #listeners = new Map<string, Set<(events: AttributeEvent[]) => void>>()
  readonly #events: Required<EventLogOptions>
  readonly #limits: Required<StoreLimits>
  readonly #now: () => number
  readonly #sweeper: NodeJS.Timeout

  constructor (options: MemoryStoreOptions) {
    this.#limits = resolveLimits(options)
    this.#now = options.now ?? Date.now
    this.#events = resolveEventLogOptions(options.events)
    this.#sweeper = setInterval(() => this.#sweep(), options.sweepIntervalMs ?? 60_000)
    this.#sweeper.unref()
  }

  #sweep (): void {
    const now = this.#now()
    for (const owners of [this.#owners.session, this.#owners.user]) {
      for (const [id, owner] of owners) if (owner.idleUntil <= now) owners.delete(id)
    }
    for (const map of [this.#endedSessions, this.#onceIds]) {
      for (const [id, until] of map) if (until <= now) map.delete(id)
    }
    for (const [key, hits] of this.#hits) if (hits.until <= now) this.#hits.delete(key)
    for (const [key, record] of this.#idempotencyRecords) if (record.until <= now) this.#idempotencyRecords.delete(key)
    for (const [id, ended] of this.#endedUsers) if (ended.until <= now) this.#endedUsers.delete(id)
    for (const [key, log] of this.#eventLogs) if (log.until <= now) this.#eventLogs.delete(key)
    for (const [id, sessions] of this.#userSessions) {
      for (const [sessionId, until] of sessions) if (until <= now) sessions.delete(sessionId)
      if (sessions.size === 0) this.#userSessions.delete(id)
    }
  }

  #isEnded (sessionId: string, now: number): boolean {
    const until = this.#endedSessions.get(sessionId)
    return until !== undefined && until > now
  }

  /** The owner's live attributes with expired ones purged, or undefined. */
  #live (owner: Owner, now: number): Session | undefined {
    if (owner.scope === 'session' && this.#isEnded(owner.id, now)) throw new SessionEndedError()
    const owners = this.#owners[owner.scope]
    const session = owners.get(owner.id)
    if (session === undefined) return undefined
    if (session.idleUntil <= now) {
      owners.delete(owner.id)
      return undefined
    }
    const expired: NewEvent[] = []
    for (const [name, attribute] of session.attributes) {
      if (attribute.expiresAt !== null && attribute.expiresAt <= now) {
        session.attributes.delete(name)
        expired.push({ kind: 'expired', name })
      }
    }
    this.#record(owner, now, session.idleUntil - now, expired)
    return session
  }

  #renew (owner: Owner, session: Session, now: number): void {
    const idleMs = owner.scope === 'session' ? this.#limits.sessionIdleTtlMs : this.#limits.userIdleTtlMs
    session.idleUntil = now + Math.max(1, Math.min(idleMs, session.deadline - now))
  }

  /**
   * Runs a write or delete under an Idempotency-Key as the Redis store's idempotent.lua does:
   * a repeat gets the recorded outcome, another request under the key E011008, and the first
   * final outcome (a result, or a precondition refusal) is recorded. Nothing awaits between
   * the look-up and the record, so concurrent repeats cannot both run.
   */
  #idempotent<T> (owner: Owner, idempotency: Idempotency | undefined, run: () => T): T {
    if (idempotency === undefined) return run()
    const now = this.#now()
    if (owner.scope === 'session' && this.#isEnded(owner.id, now)) throw new SessionEndedError()
    const key = `${owner.scope}:${owner.id}:${idempotency.key}`
    const record = this.#idempotencyRecords.get(key)
    if (record !== undefined && record.until > now) {
      if (record.fingerprint !== idempotency.fingerprint) throw new AppError('E011008')
      if ('error' in record.outcome) throw record.outcome.error
      return structuredClone(record.outcome.value) as T
    }
    const until = now + idempotency.ttlMs
    try {
      const value = run()
      this.#idempotencyRecords.set(key, { fingerprint: idempotency.fingerprint, until, outcome: { value: structuredClone(value) } })
      return value
    } catch (error) {
      if (error instanceof PreconditionFailed) this.#idempotencyRecords.set(key, { fingerprint: idempotency.fingerprint, until, outcome: { error } })
      throw error
    }
  }

  async write (owner: Owner, mode: WriteMode, items: WriteItem[], idempotency?: Idempotency): Promise<WriteOutcome[]> {
    return this.#idempotent(owner, idempotency, () => this.#write(owner, mode, items))
  }

  #write (owner: Owner, mode: WriteMode, items: WriteItem[]): WriteOutcome[] {
    const now = this.#now()
    const session = this.#live(owner, now)
    const current = items.map((item) => session?.attributes.get(item.name))
    const failures = { E009001: [] as string[], E009002: [] as string[], E011005: [] as string[], STALE: [] as string[], CIPHER: [] as string[] }
    let fresh = 0
    items.forEach((item, index) => {
      const cur = current[index]
      if (cur !== undefined) {
        if (mode === 'create') failures.E009001.push(item.name)
      } else {
        if (mode === 'update' || item.value.kind === 'keep') failures.E009002.push(item.name)
        fresh++
      }
      if (item.ifVersion !== undefined && cur?.version !== item.ifVersion) failures.E011005.push(item.name)
      if (item.expectVersion !== undefined && cur?.version !== item.expectVersion) failures.STALE.push(item.name)
      if (item.value.kind === 'inherit' && item.value.cipher === undefined && cur?.encrypted === true) failures.CIPHER.push(item.name)
    })
    if (failures.E009001.length > 0) throw new PreconditionFailed('E009001', failures.E009001)
    if (failures.E009002.length > 0) throw new PreconditionFailed('E009002', failures.E009002)
    if (failures.E011005.length > 0) throw new PreconditionFailed('E011005', failures.E011005)
    if (failures.STALE.length > 0) throw new StaleReadError()
    if (failures.CIPHER.length > 0) throw new CipherNeededError()
    const maxAttributes = owner.scope === 'session' ? this.#limits.maxAttributesPerSession : this.#limits.maxAttributesPerUser
    if (fresh > 0 && (session?.attributes.size ?? 0) + fresh > maxAttributes) {
      throw new PreconditionFailed('E011001', [])
    }

    let target = session
    if (target === undefined) {
      target = { deadline: owner.scope === 'session' ? now + this.#limits.sessionMaxTtlMs : Infinity, idleUntil: now, attributes: new Map() }
      this.#owners[owner.scope].set(owner.id, target)
    }
    const events: NewEvent[] = []
    const outcomes = items.map((item, index): WriteOutcome => {
      const cur = current[index]
      const value = item.value
      let payload: string
      let encrypted: boolean
      if (value.kind === 'keep') {
        payload = cur!.payload
        encrypted = cur!.encrypted
      } else if (value.kind === 'plain' || (value.kind === 'inherit' && cur?.encrypted !== true)) {
        payload = value.plain
        encrypted = false
      } else {
        payload = value.cipher! // an inherit without it on an encrypted attribute was refused above
        encrypted = true
      }
      let expiresAt: number | null = null
      if (item.expiry.kind === 'set') expiresAt = Math.min(now + item.expiry.ms, target.deadline)
      else if (item.expiry.kind === 'keep' && cur !== undefined) expiresAt = cur.expiresAt
      const version = (cur?.version ?? 0) + 1
      target.attributes.set(item.name, {
        name: item.name, payload, encrypted, version, createdAt: cur?.createdAt ?? now, modifiedAt: now, expiresAt
      })
      events.push({ kind: cur === undefined ? 'added' : 'changed', name: item.name, version, expiresAt, encrypted, ...(encrypted ? {} : { payload }) })
      return { name: item.name, version, expiresAt }
    })
    this.#renew(owner, target, now)
    this.#record(owner, now, target.idleUntil - now, events)
    return outcomes
  }

  async get (owner: Owner, names: string[]): Promise<Array<StoredAttribute | null>> {
    const session = this.#touch(owner)
    return names.map((name) => {
      const attribute = session?.attributes.get(name)
      return attribute === undefined ? null : { ...attribute }
    })
  }

  async exists (owner: Owner, names: string[]): Promise<boolean[]> {
    const session = this.#touch(owner)
    return names.map((name) => session?.attributes.has(name) ?? false)
  }

  async delete (owner: Owner, names: string[], ifVersion?: number, idempotency?: Idempotency): Promise<boolean[]> {
    return this.#idempotent(owner, idempotency, () => this.#delete(owner, names, ifVersion))
  }

  #delete (owner: Owner, names: string[], ifVersion?: number): boolean[] {
    const now = this.#now()
    const session = this.#live(owner, now)
    if (ifVersion !== undefined && session?.attributes.get(names[0]!)?.version !== ifVersion) {
      throw new PreconditionFailed('E011005', [names[0]!])
    }
    const deleted = names.map((name) => session?.attributes.delete(name) ?? false)
    if (session !== undefined) this.#renew(owner, session, now)
    const idleMs = owner.scope === 'session' ? this.#limits.sessionIdleTtlMs : this.#limits.userIdleTtlMs
    this.#record(owner, now, session !== undefined ? session.idleUntil - now : idleMs, names.filter((_, index) => deleted[index]).map((name) => ({ kind: 'removed', name })))
    return deleted
  }

  async names (owner: Owner): Promise<string[]> {
    const session = this.#touch(owner)
    return [...(session?.attributes.keys() ?? [])].sort(compareNames)
  }

  #touch (owner: Owner): Session | undefined {
    const now = this.#now()
    const session = this.#live(owner, now)
    if (session !== undefined) this.#renew(owner, session, now)
    return session
  }

  async eraseUserAttributes (userId: string): Promise<number> {
    const now = this.#now()
    const owner = userOwner(userId)
    const live = this.#live(owner, now)
    this.#owners.user.delete(userId)
    this.#record(owner, now, this.#limits.userIdleTtlMs, [...(live?.attributes.keys() ?? [])].map((name) => ({ kind: 'removed', name })))
    return live?.attributes.size ?? 0
  }

  async endSession (sessionId: string, tombstoneTtlMs: number): Promise<void> {
    const now = this.#now()
    if (!this.#isEnded(sessionId, now)) this.#recordEnd(sessionOwner(sessionId), now, tombstoneTtlMs)
    this.#owners.session.delete(sessionId)
    this.#endedSessions.set(sessionId, Math.max(this.#endedSessions.get(sessionId) ?? 0, now + tombstoneTtlMs))
  }

  async endUserSessions (userId: string, tombstoneTtlMs: number): Promise<number> {
    const now = this.#now()
    this.#endedUsers.set(userId, { at: now, until: now + tombstoneTtlMs })
    const sessions = this.#userSessions.get(userId) ?? new Map<string, number>()
    this.#userSessions.delete(userId)
    let ended = 0
    for (const [sessionId, until] of sessions) {
      if (until <= now) continue
      await this.endSession(sessionId, tombstoneTtlMs)
      ended++
    }
    return ended
  }

  async admitSession (userId: string, issuedAtMs: number | null): Promise<void> {
    const endedUser = this.#endedUsers.get(userId)
    if (endedUser !== undefined && endedUser.until > this.#now() && (issuedAtMs === null || issuedAtMs <= endedUser.at)) throw new SessionEndedError()
  }

  async indexSession (userId: string, sessionId: string, issuedAtMs: number | null, untilMs: number): Promise<void> {
    await this.admitSession(userId, issuedAtMs)
    if (untilMs <= this.#now()) return
    let sessions = this.#userSessions.get(userId)
    if (sessions === undefined) {
      sessions = new Map()
      this.#userSessions.set(userId, sessions)
    }
    sessions.set(sessionId, Math.max(sessions.get(sessionId) ?? 0, untilMs))
  }

  async isSessionEnded (sessionId: string): Promise<boolean> {
    return this.#isEnded(sessionId, this.#now())
  }

  async rememberOnce (id: string, untilMs: number): Promise<boolean> {
    const now = this.#now()
    const until = this.#onceIds.get(id)
    if (until !== undefined && until > now) return false
    this.#onceIds.set(id, untilMs)
    return true
  }

  async forgetOnce (id: string): Promise<void> {
    this.#onceIds.delete(id)
  }

  async countHits (windowMs: number, hits: Array<[key: string, count: number]>): Promise<{ totals: number[], ttlMs: number }> {
    const now = this.#now()
    const window = Math.floor(now / windowMs)
    const until = (window + 1) * windowMs
    const totals = hits.map(([key, count]) => {
      const id = `${windowMs}:${window}:${key}`
      const entry = this.#hits.get(id) ?? { current: 0, until }
      entry.current += count
      this.#hits.set(id, entry)
      return entry.current
    })
    return { totals, ttlMs: until - now }
  }

  /**
   * Appends events to the owner's log and hands them to the feed's listeners, as events.lua
   * does: only for a watched owner (a log kept since a subscription, or a listener now).
   */
  #record (owner: Owner, now: number, ttlMs: number, events: NewEvent[]): void {
    if (!this.#events.enabled || events.length === 0) return
    const key = `${owner.scope}:${owner.id}`
    let log = this.#liveLog(key, now)
    if (log === undefined) {
      if (!this.#listeners.has(key)) return
      log = { base: `${now}-0`, events: [], until: 0 }
      this.#eventLogs.set(key, log)
    }
    const [lastMs, lastSeq] = (log.events.at(-1)?.id ?? log.base).split('-').map(Number) as [number, number]
    const ms = Math.max(now, lastMs)
    let seq = ms === lastMs ? lastSeq : 0
    const recorded = events.map((event): AttributeEvent => ({ ...event, id: `${ms}-${++seq}`, owner, at: ms }))
    log.events.push(...recorded)
    // Trimmed as the Redis list, whose first element is the marker (events.lua).
    if (log.events.length + 1 > this.#events.retain + EVENTS_TRIM_STEP) {
      const dropped = log.events.splice(0, log.events.length - this.#events.retain)
      log.base = dropped.at(-1)!.id
    }
    log.until = now + Math.max(1, ttlMs)
    this.#publish(key, recorded)
  }

  /** A session's first end: `ended`, its log (if any) cut to it, as end-session.lua. */
  #recordEnd (owner: Owner, now: number, tombstoneTtlMs: number): void {
    const log = this.#liveLog(`${owner.scope}:${owner.id}`, now)
    if (log !== undefined) {
      log.base = log.events.at(-1)?.id ?? log.base
      log.events = []
    }
    this.#record(owner, now, tombstoneTtlMs, [{ kind: 'ended' }])
  }

  /** An owner's event log unless it has expired (the Redis list's TTL). */
  #liveLog (key: string, now: number): OwnerEvents | undefined {
    const log = this.#eventLogs.get(key)
    if (log === undefined || log.until > now) return log
    this.#eventLogs.delete(key)
    return undefined
  }

  #publish (key: string, events: AttributeEvent[]): void {
    for (const listener of this.#listeners.get(key) ?? []) listener(events.map((event) => ({ ...event })))
  }

  /** Live events of an owner (the memory feed's channel); returns how to stop. */
  listen (owner: Owner, listener: (events: AttributeEvent[]) => void): () => void {
    const key = `${owner.scope}:${owner.id}`
    let listeners = this.#listeners.get(key)
    if (listeners === undefined) {
      listeners = new Set()
      this.#listeners.set(key, listeners)
    }
    listeners.add(listener)
    return () => {
      listeners.delete(listener)
      if (listeners.size === 0 && this.#listeners.get(key) === listeners) this.#listeners.delete(key)
    }
  }

  /** The owner's recorded events after `since`, with the rules of replay.lua. */
  async readEvents (owner: Owner, since: string | undefined): Promise<EventReplay> {
    const now = this.#now()
    const key = `${owner.scope}:${owner.id}`
    const log = this.#liveLog(key, now)
    if (log === undefined) {
      const idleMs = owner.scope === 'session' ? this.#limits.sessionIdleTtlMs : this.#limits.userIdleTtlMs
      const base = `${now}-0`
      this.#eventLogs.set(key, { base, events: [], until: now + idleMs })
      return { resync: since !== undefined, last: base, events: [] }
    }
    const last = log.events.at(-1)?.id ?? log.base
    if (since === undefined) return { resync: false, last, events: [] }
    if (!isEventId(since) || compareEventIds(since, log.base) < 0 || compareEventIds(since, last) > 0) return { resync: true, last, events: [] }
    const current = owner.scope === 'session' && this.#isEnded(owner.id, now) ? undefined : this.#owners[owner.scope].get(owner.id)
    const events = log.events.filter((event) => compareEventIds(event.id, since) > 0).map((event) => {
      const copy = { ...event }
      const attribute = event.name === undefined ? undefined : current?.attributes.get(event.name)
      const still = attribute !== undefined && attribute.version === event.version && (attribute.expiresAt === null || attribute.expiresAt > now)
      if (!still) delete copy.payload
      return copy
    })
    return { resync: false, last, events }
  }

  /** Purges the owner's expired attributes now, recording `expired`; when the next one expires. */
  async purgeExpired (owner: Owner): Promise<{ nextExpiry: number | null, now: number }> {
    const now = this.#now()
    let nextExpiry: number | null = null
    for (const attribute of this.#live(owner, now)?.attributes.values() ?? []) {
      if (attribute.expiresAt !== null && (nextExpiry === null || attribute.expiresAt < nextExpiry)) nextExpiry = attribute.expiresAt
    }
    return { nextExpiry, now }
  }

  /** An in-process feed of this store's events. */
  createEventFeed (): MemoryEventFeed {
    return new MemoryEventFeed(this)
  }

  async ping (): Promise<void> {}

  async close (): Promise<void> {
    clearInterval(this.#sweeper)
    this.#owners.session.clear()
    this.#owners.user.clear()
    this.#endedSessions.clear()
    this.#endedUsers.clear()
    this.#userSessions.clear()
    this.#onceIds.clear()
    this.#hits.clear()
    this.#eventLogs.clear()
    this.#listeners.clear()
  }
}
