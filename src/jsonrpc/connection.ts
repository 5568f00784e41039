import { randomUUID } from 'node:crypto'
import type { AccessPolicy } from '../access.ts'
import { sessionOwnerOf } from '../access.ts'
import { isoTime, type AttributeService } from '../attribute-service.ts'
import { isAudited, type AuditEntry } from '../audit.ts'
import { AppError, isAppError } from '../errors.ts'
import { NoEventFeedError } from '../events/feed.ts'
import type { AttributeEvent, EventFeed, EventSubscription } from '../events/types.ts'
import { duplicateKeyPointer } from '../json-duplicate-keys.ts'
import { authorizeCall } from '../operations/authorize.ts'
import type { Identity } from '../ust.ts'
import { methodOf, positional, SUBSCRIBE_EVENTS, SubscribeOptionsSchema, userInfo, validate, type CallContext } from './methods.ts'
import {
  busy, envelopeProblem, errorObject, invalidParams, invalidRequest, isRequestId, notAuthenticated, parseError, RPC_CODES, RpcCallError,
  type RequestId, type RpcErrorObject
} from './protocol.ts'

// One WebSocket connection speaking JSON-RPC 2.0 (D61): authentication, calls with their
// limits, subscriptions, and the reasons it closes. Knows nothing of Fastify or of `ws`: the
// plugin hands it a socket (plugins/websocket.ts).

/** Close codes and reasons the server sends (README, "WebSocket API"). */
export const CLOSE = {
  AUTH_TIMEOUT: { code: 4001, reason: 'authentication timeout' },
  TOKEN_EXPIRED: { code: 4002, reason: 'token expired' },
  SESSION_ENDED: { code: 4003, reason: 'session ended' },
  IDLE: { code: 4004, reason: 'idle timeout' },
  SLOW_CONSUMER: { code: 4008, reason: 'slow consumer: send buffer full' },
  TOO_BIG: { code: 1009, reason: 'message too big' },
  BINARY: { code: 1003, reason: 'binary messages are not supported' },
  TOO_MANY_CONNECTIONS: { code: 4029, reason: 'too many connections for this user' },
  SHUTDOWN: { code: 1001, reason: 'server shutting down' }
} as const

export type CloseReason = typeof CLOSE[keyof typeof CLOSE]

export interface RpcSocket {
  send: (text: string) => void
  close: (code: number, reason: string) => void
  terminate: () => void
  ping: () => void
  readonly bufferedAmount: number
}

export interface RpcLimits {
  maxInFlight: number
  maxBatch: number
  maxSubscriptions: number
  maxUnauthenticatedMessageBytes: number
  sendBufferBytes: number
  authTimeoutMs: number
  idleTimeoutMs: number
}

export interface RpcServices {
  access: AccessPolicy
  attributes: AttributeService
  apps: ReadonlySet<string>
  feed: EventFeed
  isSessionEnded: (sessionId: string) => Promise<boolean>
  /** Counts a call of `key` (`u:<user id>` or `ip:<address>`, as REST does) and says whether it is over the limit. */
  overRateLimit: (key: string) => boolean
  /** Admits a connection about to authenticate as `identity` (per-user limit); false refuses it. */
  admit: (connection: RpcConnection, identity: Identity) => boolean
  /** Records the session in its user's index (as a successful REST request does), so a logout by `sub` finds it. */
  recordUse: (identity: Identity) => Promise<void>
  /** The connection is gone (registry, metrics). */
  released: (connection: RpcConnection) => void
  audit: (entry: AuditEntry & { transport: 'websocket', method: string, outcome: 'ok' | 'error' }) => void
  logError: (error: unknown, method: string) => void
  metrics: {
    subscriptions: (delta: number) => void
    eventSent: () => void
    slowConsumer: () => void
  }
}

interface Subscription {
  id: string
  collection: typeof SUBSCRIBE_EVENTS[number]
  namesOnly: boolean
  /** The connection's own session: its `ended` closes the connection. */
  ownSession: boolean
  feed: EventSubscription | null
}

type Response = { jsonrpc: '2.0', id: RequestId, result: unknown } | { jsonrpc: '2.0', id: RequestId, error: RpcErrorObject }

export class RpcConnection {
  readonly #socket: RpcSocket
  readonly #services: RpcServices
  readonly #limits: RpcLimits
  readonly #ip: string
  #app: string | undefined
  #ust: string | undefined
  #identity: Identity | undefined
  #inFlight = 0
  #closed = false
  #released = false
  #lastSeen = Date.now()
  readonly #timers: NodeJS.Timeout[] = []
  readonly #subscriptions = new Map<string, Subscription>()
  #sessionWatch: EventSubscription | null = null
  /** A login under way: calls that need authentication wait for it. */
  #login: Promise<unknown> | null = null

  constructor (socket: RpcSocket, services: RpcServices, limits: RpcLimits, options: { ip: string, app?: string | undefined }) {
    this.#socket = socket
    this.#services = services
    this.#limits = limits
    this.#ip = options.ip
    this.#app = options.app
    this.#timers.push(setTimeout(() => { if (this.#identity === undefined) this.close(CLOSE.AUTH_TIMEOUT) }, limits.authTimeoutMs).unref())
    const idle = setInterval(() => {
      if (Date.now() - this.#lastSeen > limits.idleTimeoutMs) this.close(CLOSE.IDLE)
      else socket.ping()
    }, Math.max(50, Math.floor(limits.idleTimeoutMs / 2)))
    this.#timers.push(idle.unref())
  }

  get identity (): Identity | undefined {
    return this.#identity
  }

  get subscriptionCount (): number {
    return this.#subscriptions.size
  }

  /** A pong or any message: the peer is alive. */
  seen (): void {
    this.#lastSeen = Date.now()
  }

  /** Authenticated by a Bearer UST on the upgrade (already verified and admitted by the plugin). */
  async authenticate (ust: string, identity: Identity): Promise<void> {
    this.#ust = ust
    this.#identity = identity
    // setTimeout holds at most 2^31-1 ms (24.8 days), and may fire a little before Date.now()
    // reaches the time: either way it is armed again for the rest.
    const armExpiry = (): void => {
      const wait = Math.min(Math.max(0, identity.expiresAt - Date.now()), 2_147_483_647)
      this.#timers.push(setTimeout(() => {
        if (Date.now() >= identity.expiresAt) this.close(CLOSE.TOKEN_EXPIRED)
        else if (!this.#closed) armExpiry()
      }, wait).unref())
    }
    armExpiry()
    // Neither failing ends the connection: the next call of the token tries the index again,
    // and calls stay refused after a session end whether or not the feed tells this connection.
    await this.#services.recordUse(identity).catch((error: unknown) => this.#services.logError(error, 'index the session'))
    const feed = this.#services.feed
    // A token without the session claim (an access token, D53) has no session to end.
    if (identity.sessionId === undefined) return
    try {
      // Another instance that ends this session tells this one through the feed's `ended` event.
      this.#sessionWatch = await feed.subscribe(sessionOwnerOf({ ...identity, sessionId: identity.sessionId }), {
        onEvent: (event) => { if (event.kind === 'ended') this.close(CLOSE.SESSION_ENDED) }
      })
      if (this.#closed) this.#sessionWatch.close()
    } catch (error) {
      // A store without events: this instance's own session ends still close the connection.
      if (!(error instanceof NoEventFeedError)) this.#services.logError(error, 'watch the session for its end')
    }
  }

  /** Whether the session or user this instance just ended is this connection's. */
  endedBy (ended: { kind: 'session', sessionId: string } | { kind: 'user', userId: string }): boolean {
    const identity = this.#identity
    if (identity === undefined) return false
    return ended.kind === 'session' ? ended.sessionId === identity.sessionId : ended.userId === identity.userId
  }

  async handleMessage (text: string, bytes: number): Promise<void> {
    this.seen()
    if (this.#closed) return
    if (this.#identity === undefined && bytes > this.#limits.maxUnauthenticatedMessageBytes) {
      this.close(CLOSE.TOO_BIG)
      return
    }
    let message: unknown
    try {
      message = JSON.parse(text)
    } catch {
      this.#send({ jsonrpc: '2.0', id: null, error: parseError() })
      return
    }
    const duplicate = typeof message === 'object' && message !== null ? duplicateKeyPointer(text) : null
    if (duplicate !== null) {
      this.#send({ jsonrpc: '2.0', id: null, error: { ...parseError(), data: { ...parseError().data!, reason: `[EINVAL] Duplicate key at ${duplicate}: give each key once` } } })
      return
    }
    if (!Array.isArray(message)) {
      const response = await this.#handleRequest(message)
      if (response !== null) this.#send(response)
      return
    }
    if (message.length === 0) {
      this.#send({ jsonrpc: '2.0', id: null, error: invalidRequest('An empty batch') })
      return
    }
    if (message.length > this.#limits.maxBatch) {
      this.#send({ jsonrpc: '2.0', id: null, error: invalidRequest(`A batch of ${message.length} requests: at most ${this.#limits.maxBatch}`) })
      return
    }
    const responses = (await Promise.all(message.map(async (request) => await this.#handleRequest(request)))).filter((response) => response !== null)
    if (responses.length > 0) this.#send(responses)
  }

  async #handleRequest (message: unknown): Promise<Response | null> {
    const problem = envelopeProblem(message)
    if (problem !== null) {
      const id = typeof message === 'object' && message !== null && isRequestId((message as { id?: unknown }).id) ? (message as { id: RequestId }).id : null
      return { jsonrpc: '2.0', id, error: invalidRequest(problem) }
    }
    const request = message as { method: string, params?: unknown, id?: RequestId }
    const answer = Object.hasOwn(request, 'id')
    const id = request.id ?? null
    if (this.#inFlight >= this.#limits.maxInFlight) {
      return answer ? { jsonrpc: '2.0', id, error: errorObject(busy(`Maximum number of concurrent calls (${this.#limits.maxInFlight}) has been exceeded`)) } : null
    }
    this.#inFlight++
    try {
      const result = await this.#call(request.method, request.params)
      return answer ? { jsonrpc: '2.0', id, result: result ?? null } : null
    } catch (error) {
      if (!isAppError(error) && !(error instanceof RpcCallError)) this.#services.logError(error, request.method)
      return answer ? { jsonrpc: '2.0', id, error: errorObject(error) } : null
    } finally {
      this.#inFlight--
    }
  }

  async #call (name: string, params: unknown): Promise<unknown> {
    const method = methodOf(name)
    // A client may send its first calls right behind auth.login_with_token: they wait for it.
    if (!method.public && this.#identity === undefined && this.#login !== null) await this.#login.catch(() => {})
    if (!method.public && this.#identity === undefined) throw notAuthenticated()
    const key = this.#identity === undefined ? `ip:${this.#ip}` : `u:${this.#identity.userId}`
    if (this.#services.overRateLimit(key)) throw new AppError('E011002', 'Rate limit exceeded')
    switch (name) {
      case 'auth.login_with_token': {
        const login = this.#loginWith(params)
        this.#login = login
        try {
          return await login
        } finally {
          if (this.#login === login) this.#login = null
        }
      }
      case 'core.subscribe': return await this.#subscribe(params)
      case 'core.unsubscribe': return this.#unsubscribe(params)
      default: return await method.run!(this.#context(), params)
    }
  }

  #context (app = this.#app): CallContext {
    return {
      ust: this.#ust,
      identity: this.#identity,
      app,
      access: this.#services.access,
      attributes: this.#services.attributes,
      audited: (entry, error) => this.#audited(entry, error)
    }
  }

  #audited (entry: AuditEntry, error?: unknown, method = 'call'): void {
    if (!isAudited(entry)) return
    const refused = error === undefined ? {} : { sub_status: isAppError(error) ? error.code : 'E008004' as const }
    this.#services.audit({ ...entry, ...refused, transport: 'websocket', method, outcome: error === undefined ? 'ok' : 'error' })
  }

  async #loginWith (params: unknown): Promise<unknown> {
    const fields = positional(['token', 'current_app'], params)
    for (const key of Object.keys(fields)) if (key !== 'token' && key !== 'current_app') throw invalidParams(`/${key}`, 'is not a known field')
    if (typeof fields.token !== 'string' || fields.token === '') throw new AppError('E008003', 'token is required: auth.login_with_token(ust)', [{ path: '/token', message: 'is required' }])
    if (fields.current_app !== undefined) validate(methodOf('auth.login_with_token').params[1]!.schema, fields.current_app)
    if (this.#identity !== undefined) throw busy('Already authenticated: open another connection for another token')
    const app = (fields.current_app as string | undefined) ?? this.#app
    if (app !== undefined && !this.#services.apps.has(app)) throw new AppError('E004001')
    let identity: Identity
    try {
      identity = await this.#services.access.identify(fields.token)
      if (identity.sessionId !== undefined && await this.#services.isSessionEnded(identity.sessionId)) return { response_type: 'AUTH_ERR' }
    } catch (error) {
      // TrueNAS' AUTH_ERR: one answer for an unknown, expired, ended or forged token.
      if (isAppError(error) && error.code === 'E007001') return { response_type: 'AUTH_ERR' }
      throw error
    }
    if (this.#identity !== undefined) throw busy('Already authenticated')
    if (!this.#services.admit(this, identity)) throw busy('Too many connections for this user (SSO_WS_MAX_CONNECTIONS_PER_USER)')
    this.#app = app
    await this.authenticate(fields.token, identity)
    return { response_type: 'SUCCESS', user_info: await userInfo(this.#context()) }
  }

  async #subscribe (params: unknown): Promise<unknown> {
    const feed = this.#services.feed
    const fields = positional(['event', 'options'], params)
    for (const key of Object.keys(fields)) if (key !== 'event' && key !== 'options') throw invalidParams(`/${key}`, 'is not a known field')
    const collection = fields.event as typeof SUBSCRIBE_EVENTS[number]
    if (!SUBSCRIBE_EVENTS.includes(collection)) throw invalidParams('/event', `event must be one of ${SUBSCRIBE_EVENTS.join(', ')}`)
    const options = (fields.options ?? {}) as Record<string, unknown>
    validate(SubscribeOptionsSchema, options)
    const scope = collection === 'session.attr' ? 'session' : 'user'
    if (scope === 'session' && options.target_user !== undefined) throw invalidParams('/options/target_user', 'session.attr takes target_ust')
    if (scope === 'user' && options.target_ust !== undefined) throw invalidParams('/options/target_ust', 'user.attr takes target_user')
    if (this.#subscriptions.size >= this.#limits.maxSubscriptions) throw busy(`At most ${this.#limits.maxSubscriptions} subscriptions a connection (SSO_WS_MAX_SUBSCRIPTIONS)`)
    const call = await authorizeCall(this.#services.access, scope, 'subscribe', {
      current_ust: this.#ust,
      current_app: options.current_app ?? this.#app,
      ...(options.target_ust !== undefined ? { target_ust: options.target_ust } : {}),
      ...(options.target_user !== undefined ? { target_user: options.target_user } : {})
    })
    const subscription: Subscription = {
      id: randomUUID(),
      collection,
      namesOnly: options.names_only === true,
      ownSession: scope === 'session' && call.access.target.sessionId === this.#identity!.sessionId,
      feed: null
    }
    this.#subscriptions.set(subscription.id, subscription)
    this.#services.metrics.subscriptions(1)
    try {
      subscription.feed = await feed.subscribe(call.owner, {
        since: options.since as string | undefined,
        onEvent: (event) => {
          // The feed's callback must not throw into the feed: a bad event is logged and skipped.
          try {
            this.#deliver(subscription, event)
          } catch (error) {
            this.#services.logError(error, 'deliver an event')
          }
        },
        onResync: () => this.#notify('subscription_resync', { subscription: subscription.id, collection })
      })
    } catch (error) {
      this.#dropSubscription(subscription)
      this.#audited(call.audit, error, 'core.subscribe')
      if (error instanceof NoEventFeedError) {
        throw new RpcCallError(RPC_CODES.CALL_ERROR, 'Method call error', 'EOPNOTSUPP', 'Change events are not available: this instance\'s store records none', ['E011003'])
      }
      throw error
    }
    if (!this.#subscriptions.has(subscription.id)) subscription.feed.close()
    this.#audited(call.audit, undefined, 'core.subscribe')
    return { id: subscription.id, replayed: subscription.feed.replayed, resync: subscription.feed.resync }
  }

  #unsubscribe (params: unknown): null {
    const fields = positional(['id'], params)
    if (typeof fields.id !== 'string') throw new AppError('E008003', 'id is required', [{ path: '/id', message: 'is required' }])
    const subscription = this.#subscriptions.get(fields.id)
    if (subscription === undefined) throw new AppError('E009002', 'No such subscription on this connection')
    this.#dropSubscription(subscription)
    return null
  }

  #dropSubscription (subscription: Subscription): void {
    if (!this.#subscriptions.delete(subscription.id)) return
    subscription.feed?.close()
    this.#services.metrics.subscriptions(-1)
  }

  #deliver (subscription: Subscription, event: AttributeEvent): void {
    if (!this.#subscriptions.has(subscription.id)) return
    const fields: Record<string, unknown> = {}
    if (event.name !== undefined) fields.name = event.name
    if (event.kind === 'added' || event.kind === 'changed') {
      fields.version = event.version
      fields.expiration_time = event.expiresAt === undefined || event.expiresAt === null ? null : isoTime(event.expiresAt)
      fields.is_encrypted = event.encrypted === true
      if (!subscription.namesOnly && event.encrypted !== true && event.payload !== undefined) fields.value = JSON.parse(event.payload)
    }
    this.#notify('collection_update', { msg: event.kind, collection: subscription.collection, id: event.id, subscription: subscription.id, fields })
    this.#services.metrics.eventSent()
    if (event.kind === 'ended') {
      this.#notify('notify_unsubscribed', { collection: subscription.collection, subscription: subscription.id, error: 'session ended' })
      this.#dropSubscription(subscription)
      if (subscription.ownSession) this.close(CLOSE.SESSION_ENDED)
    }
  }

  #notify (method: string, params: unknown): void {
    this.#send({ jsonrpc: '2.0', method, params })
  }

  #send (message: unknown): void {
    if (this.#closed) return
    if (this.#socket.bufferedAmount > this.#limits.sendBufferBytes) {
      this.#services.metrics.slowConsumer()
      this.close(CLOSE.SLOW_CONSUMER, true)
      return
    }
    this.#socket.send(JSON.stringify(message))
  }

  /**
   * Ends the connection: a `connection_closing` notice `{code, reason}` first (unless the
   * client cannot take more), then the WebSocket close with the same code and reason.
   */
  close (why: CloseReason, withoutNotice = false): void {
    if (this.#closed) return
    if (!withoutNotice && this.#socket.bufferedAmount <= this.#limits.sendBufferBytes) {
      this.#socket.send(JSON.stringify({ jsonrpc: '2.0', method: 'connection_closing', params: { code: why.code, reason: why.reason } }))
    }
    this.#closed = true
    this.release()
    this.#socket.close(why.code, why.reason)
    // A peer that does not answer the close (dead, or not reading) is cut off.
    setTimeout(() => this.#socket.terminate(), 2000).unref()
  }

  /** The socket closed (either side): timers, subscriptions and registry entries go. */
  release (): void {
    this.#closed = true
    if (this.#released) return
    this.#released = true
    for (const timer of this.#timers) clearTimeout(timer)
    this.#timers.length = 0
    for (const subscription of [...this.#subscriptions.values()]) this.#dropSubscription(subscription)
    this.#sessionWatch?.close()
    this.#sessionWatch = null
    this.#services.released(this)
  }
}
