import websocket from '@fastify/websocket'
import fp from 'fastify-plugin'
import { Counter, Gauge } from 'prom-client'
import { CLOSE, RpcConnection, type RpcLimits, type RpcServices } from '../src/jsonrpc/connection.ts'
import { BatchedRateCounter } from '../src/rate-counter.ts'
import type { Settings } from '../src/settings.ts'

// The JSON-RPC 2.0 WebSocket API's machinery (D61): @fastify/websocket, the open connections of
// this instance (per-user and per-instance limits, the session ends this instance learns of),
// the services a connection calls, and its metrics. The routes are in routes/websocket.ts.

declare module 'fastify' {
  interface FastifyInstance {
    /** Null when SSO_WS_ENABLED is false. */
    rpc: RpcEndpoint | null
  }
}

/** The open connections of this instance. */
export class ConnectionRegistry {
  readonly all = new Set<RpcConnection>()
  readonly #byUser = new Map<string, Set<RpcConnection>>()

  add (connection: RpcConnection): void {
    this.all.add(connection)
  }

  userCount (userId: string): number {
    return this.#byUser.get(userId)?.size ?? 0
  }

  /** Counts an authenticated connection against its user; false when the user is at `max`. */
  admit (connection: RpcConnection, userId: string, max: number): boolean {
    let connections = this.#byUser.get(userId)
    if (connections === undefined) {
      connections = new Set()
      this.#byUser.set(userId, connections)
    }
    if (connections.size >= max) return false
    connections.add(connection)
    return true
  }

  remove (connection: RpcConnection): void {
    this.all.delete(connection)
    const userId = connection.identity?.userId
    if (userId === undefined) return
    const connections = this.#byUser.get(userId)
    connections?.delete(connection)
    if (connections?.size === 0) this.#byUser.delete(userId)
  }
}

export interface RpcEndpoint {
  connections: ConnectionRegistry
  services: RpcServices
  limits: RpcLimits
  maxConnections: number
  maxConnectionsPerUser: number
  /** Origins allowed besides the page's own; `*` any. */
  allowedOrigins: ReadonlySet<string>
}

export default fp<{ settings: Settings }>(async (fastify, { settings }) => {
  const { config } = settings
  if (!config.SSO_WS_ENABLED) {
    fastify.decorate('rpc', null)
    return
  }
  const connections = new ConnectionRegistry()
  // Before @fastify/websocket's own preClose, which closes every client without a word.
  fastify.addHook('preClose', async () => {
    for (const connection of connections.all) connection.close(CLOSE.SHUTDOWN)
  })
  await fastify.register(websocket, {
    options: { maxPayload: config.SSO_WS_MAX_MESSAGE_BYTES },
    // A client that vanishes mid-frame is not an error of the service.
    errorHandler: (error, socket, request) => {
      request.log.debug({ err: error }, 'websocket error')
      socket.terminate()
    }
  })

  const limits: RpcLimits = {
    maxInFlight: config.SSO_WS_MAX_IN_FLIGHT,
    maxBatch: config.SSO_WS_MAX_BATCH,
    maxSubscriptions: config.SSO_WS_MAX_SUBSCRIPTIONS,
    maxUnauthenticatedMessageBytes: config.SSO_WS_MAX_UNAUTHENTICATED_MESSAGE_BYTES,
    sendBufferBytes: config.SSO_WS_SEND_BUFFER_BYTES,
    authTimeoutMs: config.SSO_WS_AUTH_TIMEOUT * 1000,
    idleTimeoutMs: config.SSO_WS_IDLE_TIMEOUT * 1000
  }

  // Calls count against the same per-caller budget as REST requests: the counts meet in the
  // store's shared counters, as those of several instances do (src/rate-counter.ts).
  let overRateLimit: (key: string) => boolean = () => false
  if (config.SSO_RATE_LIMIT_MAX > 0) {
    const counter = new BatchedRateCounter(fastify.store, config.SSO_RATE_LIMIT_WINDOW * 1000, { syncMs: config.SSO_RATE_LIMIT_SYNC_MS })
    overRateLimit = (key) => counter.hit(key).current > config.SSO_RATE_LIMIT_MAX
    fastify.addHook('onClose', async () => {
      counter.close()
      await counter.flush()
    })
  }

  let subscriptions = 0
  const registry = fastify.metrics?.registry
  const eventsSent = registry === undefined ? undefined : new Counter({ name: 'sso_ws_events_sent_total', help: 'collection_update notifications sent on WebSocket connections.', registers: [registry] })
  const slowConsumers = registry === undefined ? undefined : new Counter({ name: 'sso_ws_slow_consumers_dropped_total', help: 'WebSocket connections closed because the client read too slowly (4008).', registers: [registry] })
  if (registry !== undefined) {
    // eslint-disable-next-line no-new -- registered by its constructor, read at scrape time.
    new Gauge({ name: 'sso_ws_connections', help: 'Open WebSocket connections on this instance.', registers: [registry], collect () { this.set(connections.all.size) } })
    // eslint-disable-next-line no-new -- as above.
    new Gauge({ name: 'sso_ws_subscriptions', help: 'Active core.subscribe subscriptions on this instance.', registers: [registry], collect () { this.set(subscriptions) } })
  }

  const services: RpcServices = {
    access: fastify.access,
    attributes: fastify.attributes,
    apps: new Set(settings.apps),
    feed: fastify.eventFeed,
    isSessionEnded: async (sessionId) => await fastify.store.isSessionEnded(sessionId),
    overRateLimit,
    admit: (connection, identity) => connections.admit(connection, identity.userId, config.SSO_WS_MAX_CONNECTIONS_PER_USER),
    recordUse: async (identity) => await fastify.sessions.recordUse(identity),
    released: (connection) => connections.remove(connection),
    audit: (entry) => fastify.log.info({ audit: entry }, 'audit'),
    logError: (error, method) => fastify.log.error({ err: error, method }, 'websocket call failed'),
    metrics: {
      subscriptions: (delta) => { subscriptions += delta },
      eventSent: () => eventsSent?.inc(),
      slowConsumer: () => slowConsumers?.inc()
    }
  }

  // This instance ended a session (logout, back-channel logout, DELETE /sso/session): its
  // connections here close now; other instances learn it from the event feed.
  const stopListening = fastify.sessions.onEnded((ended) => {
    for (const connection of connections.all) if (connection.endedBy(ended)) connection.close(CLOSE.SESSION_ENDED)
  })
  fastify.addHook('onClose', async () => stopListening())

  const allowedOrigins = new Set((config.SSO_WS_ALLOWED_ORIGINS ?? '').split(',').map((origin) => origin.trim()).filter((origin) => origin !== ''))
  fastify.decorate('rpc', {
    connections,
    services,
    limits,
    maxConnections: config.SSO_WS_MAX_CONNECTIONS,
    maxConnectionsPerUser: config.SSO_WS_MAX_CONNECTIONS_PER_USER,
    allowedOrigins
  })
}, { name: 'websocket', dependencies: ['store', 'attributes'] })
