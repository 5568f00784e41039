import { readFileSync } from 'node:fs'
import { Redis, type RedisOptions } from 'ioredis'
import { StoreUnavailableError } from '../errors.ts'
import {
  CipherNeededError, PreconditionFailed, StaleReadError, compareNames, type Store, type StoreLimits, type StoredAttribute, type WriteItem, type WriteMode, type WriteOutcome
} from './types.ts'

// Key layout (docs/KEYS.md): every key of a session shares the hash tag {<session id>}, so a
// session's keys live in one cluster slot and each script touches one slot only.
//   <prefix>{<sid>}:a  hash  name -> record
//   <prefix>{<sid>}:x  zset  name -> expiry (epoch ms), only attributes with an expiry
//   <prefix>{<sid>}:m  string session deadline (epoch ms)
// Every key carries the session's TTL, renewed by each call.

function readScript (name: string): string {
  return readFileSync(new URL(`./redis-scripts/${name}.lua`, import.meta.url), 'utf8')
}

/** A script with the shared prelude (keys, Redis time, purge and renew helpers) in front. */
function script (name: string): string {
  return `${readScript('prelude')}\n${readScript(name)}`
}

interface ScriptCommands {
  ssoWrite: (attrs: string, expiry: string, meta: string, ...args: Array<string | number>) => Promise<Array<string | number>>
  ssoRead: (attrs: string, expiry: string, meta: string, ...args: Array<string | number>) => Promise<Array<string | number | null>>
  ssoDelete: (attrs: string, expiry: string, meta: string, ...args: Array<string | number>) => Promise<Array<string | number>>
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
const UNAVAILABLE_REPLY = /^(LOADING|READONLY|CLUSTERDOWN|TRYAGAIN|MASTERDOWN|BUSY|NOREPLICAS|OOM|MOVED|ASK)\b/

export function isUnavailable (error: unknown): boolean {
  if (!(error instanceof Error)) return false
  if (error.name === 'ReplyError') return UNAVAILABLE_REPLY.test(error.message)
  return true
}

export interface RedisStoreOptions extends StoreLimits {
  url: string
  keyPrefix: string
  commandTimeoutMs: number
  connectTimeoutMs: number
  /** Extra ioredis options (tests use them to shorten reconnect delays). */
  redisOptions?: RedisOptions
}

export class RedisStore implements Store {
  readonly kind = 'redis' as const
  readonly redis: Redis
  readonly #commands: ScriptCommands
  readonly #prefix: string
  readonly #limits: StoreLimits
  readonly #timeoutMs: number
  #connected: Promise<void> | undefined

  constructor (options: RedisStoreOptions) {
    this.#prefix = options.keyPrefix
    this.#timeoutMs = options.commandTimeoutMs
    this.#limits = {
      sessionIdleTtlMs: options.sessionIdleTtlMs,
      sessionMaxTtlMs: options.sessionMaxTtlMs,
      maxAttributesPerSession: options.maxAttributesPerSession
    }
    this.redis = new Redis(options.url, {
      commandTimeout: options.commandTimeoutMs,
      connectTimeout: options.connectTimeoutMs,
      // A request must fail fast while Redis is away rather than queue for reconnection.
      maxRetriesPerRequest: 1,
      // ioredis would send queued and in-flight commands on reconnection, even those whose
      // request had already been answered 503: a refused write would be applied later.
      // Commands are sent only while connected; #run waits for that within its deadline.
      enableOfflineQueue: false,
      autoResendUnfulfilledCommands: false,
      retryStrategy: (attempt) => Math.min(50 * attempt, 1000),
      enableAutoPipelining: true,
      lazyConnect: true,
      ...options.redisOptions
    })
    // ioredis re-emits connection errors; the retry strategy handles them, readiness reports them.
    this.redis.on('error', () => {})
    this.redis.defineCommand('ssoWrite', { numberOfKeys: 3, lua: script('write') })
    this.redis.defineCommand('ssoRead', { numberOfKeys: 3, lua: script('read') })
    this.redis.defineCommand('ssoDelete', { numberOfKeys: 3, lua: script('delete') })
    this.#commands = this.redis as unknown as ScriptCommands
    this.redis.connect().catch(() => {})
  }

  keysOf (sessionId: string): [string, string, string] {
    const base = `${this.#prefix}{${sessionId}}:`
    return [`${base}a`, `${base}x`, `${base}m`]
  }

  // ioredis starts commandTimeout when a command is written, and auto-pipelining holds a
  // command back while the previous pipeline waits: against a frozen Redis a request would
  // take up to twice the timeout. The deadline counts from the call instead.
  async #run<T> (call: () => Promise<T>): Promise<T> {
    let timer: NodeJS.Timeout | undefined
    const deadline = new Promise<never>((_resolve, reject) => {
      timer = setTimeout(() => reject(new StoreUnavailableError(new Error(`no answer from Redis within ${this.#timeoutMs} ms`))), this.#timeoutMs)
    })
    try {
      if (this.redis.status !== 'ready') await Promise.race([this.#whenConnected(), deadline])
      return await Promise.race([call(), deadline])
    } catch (error) {
      if (error instanceof StoreUnavailableError || !isUnavailable(error)) throw error
      throw new StoreUnavailableError(error)
    } finally {
      clearTimeout(timer)
    }
  }

  /** One shared wait for the connection, however many requests are waiting. */
  #whenConnected (): Promise<void> {
    this.#connected ??= new Promise((resolve) => {
      this.redis.once('ready', () => {
        this.#connected = undefined
        resolve()
      })
    })
    return this.#connected
  }

  async write (sessionId: string, mode: WriteMode, items: WriteItem[]): Promise<WriteOutcome[]> {
    const args: Array<string | number> = [mode, this.#limits.sessionIdleTtlMs, this.#limits.sessionMaxTtlMs, this.#limits.maxAttributesPerSession]
    for (const item of items) {
      const value = item.value
      args.push(
        item.name,
        value.kind === 'plain' ? 'P' : value.kind === 'cipher' ? 'C' : value.kind === 'inherit' ? 'I' : 'K',
        value.kind === 'plain' || value.kind === 'inherit' ? value.plain : '',
        value.kind === 'cipher' || value.kind === 'inherit' ? value.cipher ?? '' : '',
        item.expiry.kind === 'keep' ? 'K' : item.expiry.kind === 'clear' ? 'C' : 'S',
        item.expiry.kind === 'set' ? item.expiry.ms : 0,
        item.ifVersion ?? '',
        item.expectVersion ?? ''
      )
    }
    const reply = await this.#run(() => this.#commands.ssoWrite(...this.keysOf(sessionId), ...args))
    const [status, ...rest] = reply
    if (status !== 'OK') throw storeFailure(String(status), rest.map(String))
    return items.map((item, index) => {
      const expiresAt = Number(rest[index * 2 + 1])
      return { name: item.name, version: Number(rest[index * 2]), expiresAt: expiresAt < 0 ? null : expiresAt }
    })
  }

  async get (sessionId: string, names: string[]): Promise<Array<StoredAttribute | null>> {
    const reply = await this.#run(() => this.#commands.ssoRead(...this.keysOf(sessionId), 'get', this.#limits.sessionIdleTtlMs, ...names))
    return names.map((name, index) => {
      const record = reply[index]
      return typeof record === 'string' ? parseRecord(name, record) : null
    })
  }

  async exists (sessionId: string, names: string[]): Promise<boolean[]> {
    const reply = await this.#run(() => this.#commands.ssoRead(...this.keysOf(sessionId), 'exists', this.#limits.sessionIdleTtlMs, ...names))
    return names.map((_, index) => reply[index] === 1)
  }

  async delete (sessionId: string, names: string[], ifVersion?: number): Promise<boolean[]> {
    const reply = await this.#run(() => this.#commands.ssoDelete(...this.keysOf(sessionId), this.#limits.sessionIdleTtlMs, ifVersion ?? '', ...names))
    const [status, ...rest] = reply
    if (status !== 'OK') throw storeFailure(String(status), rest.map(String))
    return rest.map((deleted) => deleted === 1)
  }

  async names (sessionId: string): Promise<string[]> {
    const reply = await this.#run(() => this.#commands.ssoRead(...this.keysOf(sessionId), 'names', this.#limits.sessionIdleTtlMs))
    return (reply as string[]).sort(compareNames)
  }

  async ping (): Promise<void> {
    await this.#run(async () => await this.redis.ping())
  }

  async close (): Promise<void> {
    try {
      await this.redis.quit()
    } catch {
      this.redis.disconnect()
    }
  }
}

/** The error a store raises for a failed precondition, naming the attributes concerned. */
export function storeFailure (code: string, names: string[]): Error {
  if (code === 'STALE') return new StaleReadError()
  if (code === 'CIPHER') return new CipherNeededError()
  if (code === 'E009001' || code === 'E009002' || code === 'E011005' || code === 'E011001') return new PreconditionFailed(code, names)
  return new Error(`unexpected store reply ${code}`)
}
