import { readFileSync } from 'node:fs'
import { setTimeout as sleep } from 'node:timers/promises'
import { Cluster, type ChainableCommander, type ClusterOptions, type RedisOptions } from 'ioredis'
import { AppError, StoreFullError, StoreUnavailableError } from '../errors.ts'
import { DeadlineQueue } from './deadlines.ts'
import { EVENTS_TRIM_STEP, resolveEventLogOptions, eventFromFields, type EventLog, type EventReplay } from '../events/event-log.ts'
import { RedisEventFeed } from '../events/redis-feed.ts'
import type { AttributeEvent } from '../events/types.ts'
import { attributeKeys, eventKey, idempotencyKey, userSessionKeys } from './keys.ts'
import { createRedisClient, mastersConnecting, type RedisClient, type RedisConnectionOptions, type RedisTopology } from './redis-topology.ts'
import {
  CipherNeededError, resolveLimits, PreconditionFailed, SessionEndedError, StaleReadError, compareNames,
  sessionOwner, type EventLogOptions, type Idempotency, type Owner, type Store, type StoreLimits, type StoredAttribute, type WriteItem, type WriteMode, type WriteOutcome
} from './types.ts'

// Key layout: src/store/keys.ts and docs/KEYS.md. Every key of an owner (a session, or a
// user's attributes) carries the owner's TTL, renewed by each call.

function readScript (name: string): string {
  return readFileSync(new URL(`./redis-scripts/${name}.lua`, import.meta.url), 'utf8')
}

/** events.lua with its settings in front (issue 16): what every script that changes attributes starts with. */
function eventsHelpers (events: Required<EventLogOptions>): string {
  return `local EVENTS_ON, EVENTS_MAX, EVENTS_SLACK = ${String(events.enabled)}, ${events.retain}, ${EVENTS_TRIM_STEP}\n${readScript('events')}`
}

/** A script with events.lua and the shared prelude (keys, Redis time, purge and renew helpers) in front. */
function script (name: string, events: Required<EventLogOptions>): string {
  return `${eventsHelpers(events)}\n${readScript('prelude')}\n${readScript(name)}`
}

/** A script without the prelude, with events.lua after its flags line (a shebang must come first). */
function scriptWithEvents (name: string, events: Required<EventLogOptions>): string {
  const text = readScript(name)
  const flags = text.startsWith('#!') ? text.slice(0, text.indexOf('\n') + 1) : ''
  return `${flags}${eventsHelpers(events)}\n${text.slice(flags.length)}`
}

/** write.lua or delete.lua inside idempotent.lua: the same script, recorded under an Idempotency-Key. */
function idempotentScript (name: 'write' | 'delete', events: Required<EventLogOptions>): string {
  // Replacer functions: the scripts contain `$'`, which a replacement string would expand.
  return readScript('idempotent')
    .replace('--PRELUDE--', () => `${eventsHelpers(events)}\n${readScript('prelude')}`)
    .replace('--SCRIPT--', () => readScript(name))
}

type AttributeScript = 'ssoWrite' | 'ssoRead' | 'ssoDelete'
type WriteScript = 'ssoWrite' | 'ssoDelete' | 'ssoUserWrite' | 'ssoUserDelete'
// The same three scripts on a user's attributes, with their two keys only (the same Lua, so
// the same SHA1 on the server: one script, two key counts).
const USER_SCRIPTS = { ssoWrite: 'ssoUserWrite', ssoRead: 'ssoUserRead', ssoDelete: 'ssoUserDelete' } as const

interface ScriptCommands {
  ssoWrite: (...keysAndArgs: Array<string | number>) => Promise<Array<string | number>>
  ssoRead: (...keysAndArgs: Array<string | number>) => Promise<Array<string | number | null>>
  ssoDelete: (...keysAndArgs: Array<string | number>) => Promise<Array<string | number>>
  ssoUserWrite: ScriptCommands['ssoWrite']
  ssoUserRead: ScriptCommands['ssoRead']
  ssoUserDelete: ScriptCommands['ssoDelete']
  ssoWriteIdempotent: ScriptCommands['ssoWrite']
  ssoDeleteIdempotent: ScriptCommands['ssoDelete']
  ssoUserWriteIdempotent: ScriptCommands['ssoWrite']
  ssoUserDeleteIdempotent: ScriptCommands['ssoDelete']
  ssoEraseUser: (attrs: string, expiry: string, idleTtlMs: number) => Promise<number>
  ssoReplay: (attrs: string, events: string, since: string, ttlMs: number) => Promise<Array<string | null>>
  ssoPurge: (...keys: string[]) => Promise<[number, number]>
  ssoUserPurge: (...keys: string[]) => Promise<[number, number]>
  ssoEndSession: (attrs: string, expiry: string, meta: string, ended: string, tombstoneTtlMs: number) => Promise<number>
  ssoEndUser: (index: string, userEnded: string, tombstoneTtlMs: number) => Promise<string[]>
  ssoRate: (counter: string, ttlMs: number, ...hits: Array<string | number>) => Promise<number[]>
  ssoIndex: (index: string, userEnded: string, sessionId: string, issuedAtMs: number | string, untilMs: number) => Promise<string>
}

const RECORD_HEADER = /^(\d+):(\d+):(\d+):(\d*):([ep]):/

export function parseRecord (name: string, record: string): StoredAttribute {
  const match = RECORD_HEADER.exec(record)
  if (match === null) throw new Error(`malformed record for attribute ${JSON.stringify(name)}`)
  return {
    name,
    version: Number(match[1]),
    createdAt: Number(match[2]),
    modifiedAt: Number(match[3]),
    expiresAt: match[4] === '' ? null : Number(match[4]),
    encrypted: match[5] === 'e',
    payload: record.slice(match[0].length)
  }
}

// Replies that mean "Redis cannot serve right now" rather than "this request is wrong".
const UNAVAILABLE_REPLY = /^(LOADING|READONLY|CLUSTERDOWN|TRYAGAIN|MASTERDOWN|BUSY|NOREPLICAS|MOVED|ASK)\b/

export function isUnavailable (error: unknown): boolean {
  if (!(error instanceof Error)) return false
  if (error.name === 'ReplyError') return UNAVAILABLE_REPLY.test(error.message)
  return true
}

export interface RedisStoreOptions extends StoreLimits, Pick<RedisConnectionOptions, 'commandTimeoutMs' | 'connectTimeoutMs' | 'username' | 'password' | 'sentinelPassword' | 'tls'> {
  /** One server by URL; the same as `topology: { kind: 'standalone', url }`. */
  url?: string | undefined
  /** Cluster or Sentinel (or a URL); wins over `url`. */
  topology?: RedisTopology | undefined
  keyPrefix: string
  /**
   * Writes and deletes answer ok only once this many replicas have acknowledged them (Redis
   * WAIT, sent with the script in one round trip); fewer is 503 E011003. 0: no wait.
   */
  minReplicasAck?: number | undefined
  /** Extra ioredis options (tests use them to shorten reconnect delays). */
  redisOptions?: RedisOptions
  /** Extra ioredis Cluster options. */
  clusterOptions?: ClusterOptions
  /** Change events (issue 16): on by default, the last EVENTS_RETAINED of each owner kept. */
  events?: EventLogOptions | undefined
}

export class RedisStore implements Store, EventLog {
  readonly kind = 'redis' as const
  readonly redis: RedisClient
  /** How the store reaches Redis: the near cache (near-cache.ts) and the event feed open their own connections with it. */
  readonly connection: RedisConnectionOptions
  readonly events: Required<EventLogOptions>
  /** Where durable writes go: a connection of their own, so that WAIT never holds up reads. */
  readonly #writer: RedisClient
  readonly #minReplicasAck: number
  readonly #waitTimeoutMs: number
  readonly #commands: ScriptCommands
  readonly #prefix: string
  readonly #limits: Required<StoreLimits>
  readonly #timeoutMs: number
  readonly #connected = new Map<RedisClient, Promise<void>>()
  readonly #deadlines: DeadlineQueue

  constructor (options: RedisStoreOptions) {
    this.#prefix = options.keyPrefix
    this.#timeoutMs = options.commandTimeoutMs
    this.#deadlines = new DeadlineQueue(options.commandTimeoutMs)
    this.#limits = resolveLimits(options)
    const topology = options.topology ?? { kind: 'standalone', url: options.url ?? 'redis://127.0.0.1:6379' }
    const connection: RedisConnectionOptions = {
      topology,
      commandTimeoutMs: options.commandTimeoutMs,
      connectTimeoutMs: options.connectTimeoutMs,
      username: options.username,
      password: options.password,
      sentinelPassword: options.sentinelPassword,
      tls: options.tls,
      redisOptions: options.redisOptions,
      clusterOptions: options.clusterOptions
    }
    this.connection = connection
    this.events = resolveEventLogOptions(options.events)
    const events = this.events
    this.redis = createRedisClient(connection)
    this.#minReplicasAck = options.minReplicasAck ?? 0
    // WAIT gives up before the request's deadline, so that the writer connection is free again
    // by the time the request has been answered.
    this.#waitTimeoutMs = Math.max(10, Math.floor(options.commandTimeoutMs / 2))
    // ioredis re-emits connection errors; the retry strategy handles them, readiness reports them.
    this.redis.on('error', () => {})
    this.redis.defineCommand('ssoWrite', { numberOfKeys: 4, lua: script('write', events) })
    this.redis.defineCommand('ssoRead', { numberOfKeys: 4, lua: script('read', events) })
    this.redis.defineCommand('ssoDelete', { numberOfKeys: 4, lua: script('delete', events) })
    for (const name of ['write', 'read', 'delete'] as const) {
      const session = `sso${name[0]!.toUpperCase()}${name.slice(1)}` as AttributeScript
      this.redis.defineCommand(USER_SCRIPTS[session], { numberOfKeys: 2, lua: script(name, events) })
    }
    // The same write and delete under an Idempotency-Key: one key more, the key's record.
    for (const name of ['write', 'delete'] as const) {
      const base = `sso${name[0]!.toUpperCase()}${name.slice(1)}`
      this.redis.defineCommand(`${base}Idempotent`, { numberOfKeys: 5, lua: idempotentScript(name, events) })
      this.redis.defineCommand(`ssoUser${base.slice(3)}Idempotent`, { numberOfKeys: 3, lua: idempotentScript(name, events) })
    }
    this.redis.defineCommand('ssoEraseUser', { numberOfKeys: 2, lua: scriptWithEvents('erase-user', events) })
    this.redis.defineCommand('ssoEndSession', { numberOfKeys: 4, lua: scriptWithEvents('end-session', events) })
    this.redis.defineCommand('ssoReplay', { numberOfKeys: 2, lua: readScript('replay') })
    this.redis.defineCommand('ssoPurge', { numberOfKeys: 4, lua: script('purge', events) })
    this.redis.defineCommand('ssoUserPurge', { numberOfKeys: 2, lua: script('purge', events) })
    this.redis.defineCommand('ssoEndUser', { numberOfKeys: 2, lua: readScript('end-user') })
    this.redis.defineCommand('ssoIndex', { numberOfKeys: 2, lua: readScript('admit') })
    this.redis.defineCommand('ssoRate', { numberOfKeys: 1, lua: readScript('rate') })
    this.#commands = this.redis as unknown as ScriptCommands
    this.redis.connect().catch(() => {})
    this.#writer = this.redis
    if (this.#minReplicasAck > 0) {
      this.#writer = createRedisClient(connection)
      this.#writer.on('error', () => {})
      const scripts = this.redis.scriptsSet as Record<string, { lua: string, numberOfKeys: number | null }>
      for (const [name, { lua, numberOfKeys }] of Object.entries(scripts)) {
        this.#writer.defineCommand(name, { lua, ...(numberOfKeys !== null ? { numberOfKeys } : {}) })
      }
      this.#writer.connect().catch(() => {})
    }
  }

  /** The attribute keys of an owner, as the scripts take them (keys.ts). */
  keysOf (owner: Owner): string[] {
    return attributeKeys(this.#prefix, owner)
  }

  /** The keys of a user: session index and user tombstone (one hash slot, not the sessions'). */
  userKeysOf (userId: string): [string, string] {
    return userSessionKeys(this.#prefix, userId)
  }

  /** The script for an owner's scope, and the owner's idle TTL and attribute limit. */
  #scriptFor (name: AttributeScript, owner: Owner): AttributeScript | typeof USER_SCRIPTS[AttributeScript] {
    return owner.scope === 'session' ? name : USER_SCRIPTS[name]
  }

  #idleTtlMs (owner: Owner): number {
    return owner.scope === 'session' ? this.#limits.sessionIdleTtlMs : this.#limits.userIdleTtlMs
  }

  #onceKey (id: string): string {
    return `${this.#prefix}{o:${id}}`
  }

  // ioredis starts commandTimeout when a command is written, and auto-pipelining holds a
  // command back while the previous pipeline waits: against a frozen Redis a request would
  // take up to twice the timeout. The deadline counts from the call instead.
  //
  // A call that failed without running (MOVED, ASK, TRYAGAIN, CLUSTERDOWN, or refused before it
  // was written) is sent once more within the same deadline, after a slot refresh on a Cluster;
  // so is a read (`resendable`) whose connection closed under it. A write whose connection
  // closed may have run, and is never sent again (D23, D45).
  async #run<T> (call: () => Promise<T>, client: RedisClient = this.redis, resendable = false): Promise<T> {
    if (client.status !== 'ready' || (client instanceof Cluster && mastersConnecting(client) !== undefined)) {
      return await this.#runConnecting(call, client, this.#timeoutMs, resendable)
    }
    // The common case: connected. One shared timer for every call in flight (deadlines.ts).
    return await new Promise<T>((resolve, reject) => {
      const deadline = this.#deadlines.add(() => reject(this.#timedOut()))
      call().then((value) => {
        this.#deadlines.settle(deadline)
        resolve(value)
      }, (error: unknown) => {
        this.#deadlines.settle(deadline)
        const leftMs = deadline.deadline - Date.now()
        if (leftMs > 0 && isResendable(error, resendable)) resolve(this.#resend(call, client, leftMs))
        else reject(storeError(error))
      })
    })
  }

  /** The one second try of a call that did not run (or a read), in what is left of its deadline. */
  async #resend<T> (call: () => Promise<T>, client: RedisClient, leftMs: number): Promise<T> {
    if (client instanceof Cluster) {
      await Promise.race([
        new Promise<void>((resolve) => { client.refreshSlotsCache(() => { resolve() }) }),
        sleep(leftMs, undefined, { ref: false })
      ])
    }
    return await this.#runConnecting(call, client, leftMs, false)
  }

  #timedOut (): StoreUnavailableError {
    return new StoreUnavailableError(new Error(`no answer from Redis within ${this.#timeoutMs} ms`))
  }

  /** A call that first waits for the connection (or a Cluster's masters), within the same deadline. */
  async #runConnecting<T> (call: () => Promise<T>, client: RedisClient, timeoutMs: number, resendable: boolean): Promise<T> {
    const startedAt = Date.now()
    let timer: NodeJS.Timeout | undefined
    const deadline = new Promise<never>((_resolve, reject) => {
      timer = setTimeout(() => reject(this.#timedOut()), timeoutMs)
    })
    try {
      if (client.status !== 'ready') await Promise.race([this.#whenConnected(client), deadline])
      const connecting = mastersConnecting(client)
      if (connecting !== undefined) await Promise.race([connecting, deadline])
      return await Promise.race([call(), deadline])
    } catch (error) {
      const leftMs = startedAt + timeoutMs - Date.now()
      if (resendable && leftMs > 0 && isResendable(error, true)) return await this.#resend(call, client, leftMs)
      throw storeError(error)
    } finally {
      clearTimeout(timer)
    }
  }

  /** One shared wait for the connection, however many requests are waiting. */
  #whenConnected (client: RedisClient): Promise<void> {
    let connected = this.#connected.get(client)
    if (connected === undefined) {
      connected = new Promise((resolve) => {
        client.once('ready', () => {
          this.#connected.delete(client)
          resolve()
        })
      })
      this.#connected.set(client, connected)
    }
    return connected
  }

  /**
   * A script and a WAIT for the replicas, pipelined on the writer connection: one round trip.
   * WAIT inside MULTI or a script would not block, so the two go side by side. A script that
   * refused the write wrote nothing and needs no acknowledgement.
   */
  async #durable (name: WriteScript | `${WriteScript}Idempotent`, keysAndArgs: Array<string | number>): Promise<Array<string | number>> {
    // ioredis types the pipeline's built-in commands only; the scripts are defined on it too.
    const pipeline = this.#writer.pipeline() as unknown as Record<typeof name, (...args: Array<string | number>) => ChainableCommander>
    const results = await pipeline[name](...keysAndArgs).wait(this.#minReplicasAck, this.#waitTimeoutMs).exec()
    const [scriptResult, waitResult] = results ?? []
    if (scriptResult?.[0] != null) {
      // After a failover the writer's slot map is stale until it refreshes: ask for that now.
      if (this.#writer instanceof Cluster && /^(MOVED|ASK) /.test(scriptResult[0].message)) this.#writer.refreshSlotsCache()
      throw scriptResult[0]
    }
    const reply = scriptResult?.[1] as Array<string | number>
    if (reply[0] !== 'OK') return reply
    if (waitResult?.[0] != null) throw waitResult[0]
    const acknowledged = Number(waitResult?.[1])
    if (acknowledged < this.#minReplicasAck) {
      throw new StoreUnavailableError(new Error(`${acknowledged} of ${this.#minReplicasAck} replicas acknowledged the write within ${this.#waitTimeoutMs} ms`))
    }
    return reply
  }

  /** A write or delete script, with the Idempotency-Key's record and arguments when there is one. */
  async #writeScript (script: WriteScript, owner: Owner, args: Array<string | number>, idempotency: Idempotency | undefined): Promise<Array<string | number>> {
    const keysAndArgs = idempotency === undefined
      ? [...this.keysOf(owner), ...args]
      : [...this.keysOf(owner), idempotencyKey(this.#prefix, owner, idempotency.key), ...args, idempotency.fingerprint, idempotency.ttlMs]
    const name = idempotency === undefined ? script : `${script}Idempotent` as const
    return this.#minReplicasAck > 0
      ? await this.#run(async () => await this.#durable(name, keysAndArgs), this.#writer)
      : await this.#run(() => this.#commands[name](...keysAndArgs))
  }

  async write (owner: Owner, mode: WriteMode, items: WriteItem[], idempotency?: Idempotency): Promise<WriteOutcome[]> {
    // The items go as one JSON argument (write.lua decodes it with cjson): ioredis copies every
    // argument through Array#flat and writes each as its own RESP string, which cost a batch of
    // 20 more than encoding it (D25).
    const packed = JSON.stringify(items.map((item) => {
      const value = item.value
      return [
        item.name,
        value.kind === 'plain' ? 'P' : value.kind === 'cipher' ? 'C' : value.kind === 'inherit' ? 'I' : 'K',
        value.kind === 'plain' || value.kind === 'inherit' ? value.plain : '',
        value.kind === 'cipher' || value.kind === 'inherit' ? value.cipher ?? '' : '',
        item.expiry.kind === 'keep' ? 'K' : item.expiry.kind === 'clear' ? 'C' : 'S',
        item.expiry.kind === 'set' ? item.expiry.ms : 0,
        item.ifVersion ?? '',
        item.expectVersion ?? ''
      ]
    }))
    const session = owner.scope === 'session'
    const maxAttributes = session ? this.#limits.maxAttributesPerSession : this.#limits.maxAttributesPerUser
    const args = [mode, this.#idleTtlMs(owner), this.#limits.sessionMaxTtlMs, maxAttributes, packed]
    const reply = await this.#writeScript(session ? 'ssoWrite' : 'ssoUserWrite', owner, args, idempotency)
    const [status, ...rest] = reply
    if (status !== 'OK') throw storeFailure(String(status), rest.map(String))
    return items.map((item, index) => {
      const expiresAt = Number(rest[index * 2 + 1])
      return { name: item.name, version: Number(rest[index * 2]), expiresAt: expiresAt < 0 ? null : expiresAt }
    })
  }

  async get (owner: Owner, names: string[]): Promise<Array<StoredAttribute | null>> {
    const reply = await this.#run(() => this.#commands[this.#scriptFor('ssoRead', owner)](...this.keysOf(owner), 'get', this.#idleTtlMs(owner), ...names), this.redis, true)
    return names.map((name, index) => {
      const record = reply[index]
      return typeof record === 'string' ? parseRecord(name, record) : null
    })
  }

  async exists (owner: Owner, names: string[]): Promise<boolean[]> {
    const reply = await this.#run(() => this.#commands[this.#scriptFor('ssoRead', owner)](...this.keysOf(owner), 'exists', this.#idleTtlMs(owner), ...names), this.redis, true)
    return names.map((_, index) => reply[index] === 1)
  }

  async delete (owner: Owner, names: string[], ifVersion?: number, idempotency?: Idempotency): Promise<boolean[]> {
    const args = [this.#idleTtlMs(owner), ifVersion ?? '', ...names]
    const reply = await this.#writeScript(owner.scope === 'session' ? 'ssoDelete' : 'ssoUserDelete', owner, args, idempotency)
    const [status, ...rest] = reply
    if (status !== 'OK') throw storeFailure(String(status), rest.map(String))
    return rest.map((deleted) => deleted === 1)
  }

  async names (owner: Owner): Promise<string[]> {
    const reply = await this.#run(() => this.#commands[this.#scriptFor('ssoRead', owner)](...this.keysOf(owner), 'names', this.#idleTtlMs(owner)), this.redis, true)
    return (reply as string[]).sort(compareNames)
  }

  async eraseUserAttributes (userId: string): Promise<number> {
    const [attrs, expiry] = this.keysOf({ scope: 'user', id: userId })
    return await this.#run(() => this.#commands.ssoEraseUser(attrs!, expiry!, this.#limits.userIdleTtlMs))
  }

  /** The name of an owner's event list, which is also its sharded channel (keys.ts). */
  eventChannelOf (owner: Owner): string {
    return eventKey(this.#prefix, owner)
  }

  /** The owner's recorded events after `since` (replay.lua), for an event feed. */
  async readEvents (owner: Owner, since: string | undefined): Promise<EventReplay> {
    const [attrs] = this.keysOf(owner)
    const ttlMs = this.#idleTtlMs(owner)
    const reply = await this.#run(() => this.#commands.ssoReplay(attrs!, eventKey(this.#prefix, owner), since ?? '', ttlMs), this.redis, true)
    const events: AttributeEvent[] = []
    for (let index = 2; index < reply.length; index += 7) events.push(eventFromFields(owner, reply.slice(index, index + 7)))
    return { resync: Number(reply[0]) === 1, last: String(reply[1]), events }
  }

  /**
   * Purges the owner's expired attributes now (purge.lua), recording their `expired` events;
   * returns when the next one expires (null: none) and Redis' clock.
   */
  async purgeExpired (owner: Owner): Promise<{ nextExpiry: number | null, now: number }> {
    const keys = this.keysOf(owner)
    const [next, now] = await this.#run(() => this.#commands[owner.scope === 'session' ? 'ssoPurge' : 'ssoUserPurge'](...keys))
    return { nextExpiry: next < 0 ? null : Number(next), now: Number(now) }
  }

  /** A feed of this store's events: subscriber connections of its own, opened on the first subscription. */
  createEventFeed (): RedisEventFeed {
    return new RedisEventFeed(this)
  }

  async endSession (sessionId: string, tombstoneTtlMs: number): Promise<void> {
    const [attrs, expiry, meta, ended] = this.keysOf(sessionOwner(sessionId))
    await this.#run(() => this.#commands.ssoEndSession(attrs!, expiry!, meta!, ended!, tombstoneTtlMs))
  }

  async endUserSessions (userId: string, tombstoneTtlMs: number): Promise<number> {
    const sessions = await this.#run(() => this.#commands.ssoEndUser(...this.userKeysOf(userId), tombstoneTtlMs))
    // Each session lives in a slot of its own: one script each, sent together.
    await Promise.all(sessions.map(async (sessionId) => await this.endSession(sessionId, tombstoneTtlMs)))
    return sessions.length
  }

  async admitSession (userId: string, issuedAtMs: number | null): Promise<void> {
    const endedAt = await this.#run(async () => await this.redis.get(this.userKeysOf(userId)[1]), this.redis, true)
    if (endedAt !== null && (issuedAtMs === null || issuedAtMs <= Number(endedAt))) throw new SessionEndedError()
  }

  async indexSession (userId: string, sessionId: string, issuedAtMs: number | null, untilMs: number): Promise<void> {
    const reply = await this.#run(() => this.#commands.ssoIndex(...this.userKeysOf(userId), sessionId, issuedAtMs ?? '', untilMs))
    if (reply === 'ENDED') throw new SessionEndedError()
  }

  async isSessionEnded (sessionId: string): Promise<boolean> {
    return await this.#run(async () => await this.redis.exists(this.keysOf(sessionOwner(sessionId))[3]!), this.redis, true) === 1
  }

  async rememberOnce (id: string, untilMs: number): Promise<boolean> {
    return await this.#run(async () => await this.redis.set(this.#onceKey(id), '1', 'PXAT', Math.ceil(untilMs), 'NX')) === 'OK'
  }

  async forgetOnce (id: string): Promise<void> {
    await this.#run(async () => await this.redis.del(this.#onceKey(id)))
  }

  async countHits (windowMs: number, hits: Array<[key: string, count: number]>): Promise<{ totals: number[], ttlMs: number }> {
    // One hash per window for every counter: one slot, one call, however many callers. The
    // window comes from this instance's clock: instances agree on it to within their skew.
    const now = Date.now()
    const window = Math.floor(now / windowMs)
    const ttlMs = (window + 1) * windowMs - now
    const counter = `${this.#prefix}{rate}:${windowMs}:${window}`
    const totals = await this.#run(() => this.#commands.ssoRate(counter, ttlMs + 1000, ...hits.flat()))
    return { totals, ttlMs }
  }

  /** Redis answers; on a Cluster, one that also says all slots are served (cluster_state:ok). */
  async ping (): Promise<void> {
    const redis = this.redis
    if (redis instanceof Cluster) {
      const info = await this.#run(async () => await redis.cluster('INFO'))
      if (!/^cluster_state:ok\b/m.test(info)) throw new StoreUnavailableError(new Error('cluster_state is not ok'))
      return
    }
    await this.#run(async () => await redis.ping())
  }

  async close (): Promise<void> {
    await Promise.all([...new Set([this.redis, this.#writer])].map(async (client) => {
      try {
        await client.quit()
      } catch {
        client.disconnect()
      }
    }))
  }
}

/** What a failed call raises: an ended session, a store outage (503), or the error itself. */
function storeError (error: unknown): unknown {
  if (isEndedReply(error)) return new SessionEndedError()
  // A script that may write is refused as a whole when Redis is over maxmemory (its OOM state is
  // decided once, before the script runs), so nothing of the call was written.
  if (error instanceof Error && error.name === 'ReplyError' && error.message.startsWith('OOM')) return new StoreFullError(error)
  if (error instanceof StoreUnavailableError || !isUnavailable(error)) return error
  return new StoreUnavailableError(error)
}

// Replies and client errors that say the command did not run, so it may be sent again.
const NOT_RUN_REPLY = /^(MOVED|ASK|TRYAGAIN|CLUSTERDOWN)\b/
const NOT_WRITTEN = 'Stream isn\'t writeable and enableOfflineQueue options is false'
const CONNECTION_CLOSED = 'Connection is closed.'

function isResendable (error: unknown, read: boolean): boolean {
  if (!(error instanceof Error)) return false
  if (error.name === 'ReplyError') return NOT_RUN_REPLY.test(error.message)
  return error.message === NOT_WRITTEN || (read && error.message === CONNECTION_CLOSED)
}

function isEndedReply (error: unknown): boolean {
  return error instanceof Error && error.name === 'ReplyError' && error.message.startsWith('ENDED')
}

/** The error a store raises for a failed precondition, naming the attributes concerned. */
export function storeFailure (code: string, names: string[]): Error {
  if (code === 'STALE') return new StaleReadError()
  if (code === 'CIPHER') return new CipherNeededError()
  if (code === 'E011008') return new AppError('E011008')
  if (code === 'E009001' || code === 'E009002' || code === 'E011005' || code === 'E011001') return new PreconditionFailed(code, names)
  return new Error(`unexpected store reply ${code}`)
}
