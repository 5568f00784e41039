import type { FastifyPluginAsync, FastifyRequest } from 'fastify'
import { bearerToken } from '../src/bearer-token.ts'
import { AppError } from '../src/errors.ts'
import { CLOSE, RpcConnection, type RpcSocket } from '../src/jsonrpc/connection.ts'
import type { Identity } from '../src/ust.ts'

// GET /api/current and /api/v1: the JSON-RPC 2.0 WebSocket API (D61). What can be refused
// before the upgrade is refused with an HTTP error envelope: a browser origin not allowed, the
// instance full, a Bearer UST that does not verify, its user at the connection limit.

export const WEBSOCKET_PATHS = ['/api/current', '/api/v1'] as const

interface Upgrade {
  ust?: string
  identity?: Identity
  app?: string
}

const upgrades = new WeakMap<FastifyRequest, Upgrade>()

function sameOrigin (origin: string, host: string | undefined): boolean {
  try {
    return new URL(origin).host === host
  } catch {
    return false
  }
}

const websocketRoutes: FastifyPluginAsync = async (fastify) => {
  const rpc = fastify.rpc
  if (rpc === null) return

  async function checkUpgrade (request: FastifyRequest): Promise<void> {
    const origin = request.headers.origin
    if (origin !== undefined && !rpc!.allowedOrigins.has('*') && !rpc!.allowedOrigins.has(origin) && !sameOrigin(origin, request.headers.host)) {
      throw new AppError('E005001', 'This origin may not open the WebSocket (SSO_WS_ALLOWED_ORIGINS)')
    }
    if (rpc!.connections.all.size >= rpc!.maxConnections) throw new AppError('E011002', 'Too many WebSocket connections on this instance', undefined, 503)
    const query = request.query as Record<string, unknown>
    const upgrade: Upgrade = {}
    if (query.app !== undefined) {
      if (typeof query.app !== 'string' || !rpc!.services.apps.has(query.app)) throw new AppError('E004001')
      upgrade.app = query.app
    }
    const authorization = request.headers.authorization
    if (authorization !== undefined) {
      const ust = bearerToken(authorization)
      if (ust === null) throw new AppError('E007001', 'Authorization must be "Bearer <ust>"')
      const identity = await (request.verifiedCaller ?? fastify.access.identify(ust))
      if (identity.sessionId !== undefined && await rpc!.services.isSessionEnded(identity.sessionId)) throw new AppError('E007001', 'Session has ended')
      if (rpc!.connections.userCount(identity.userId) >= rpc!.maxConnectionsPerUser) {
        throw new AppError('E011002', 'Too many WebSocket connections for this user (SSO_WS_MAX_CONNECTIONS_PER_USER)')
      }
      upgrade.ust = ust
      upgrade.identity = identity
    }
    upgrades.set(request, upgrade)
  }

  for (const url of WEBSOCKET_PATHS) {
    fastify.route({
      method: 'GET',
      url,
      schema: { hide: true },
      preValidation: checkUpgrade,
      // A plain GET: our envelope, not an empty 404.
      handler: async (_request, reply) => {
        reply.header('upgrade', 'websocket')
        throw new AppError('E008001', 'This path speaks JSON-RPC over WebSocket: send Connection: Upgrade, Upgrade: websocket', undefined, 426)
      },
      wsHandler: (socket, request) => {
        const upgrade = upgrades.get(request) ?? {}
        const adapter: RpcSocket = {
          send: (text) => socket.send(text),
          close: (code, reason) => socket.close(code, reason),
          terminate: () => socket.terminate(),
          ping: () => socket.ping(),
          get bufferedAmount () { return socket.bufferedAmount }
        }
        const connection = new RpcConnection(adapter, rpc.services, rpc.limits, { ip: request.ip, app: upgrade.app })
        rpc.connections.add(connection)
        socket.on('close', () => connection.release())
        socket.on('pong', () => connection.seen())
        socket.on('message', (data, isBinary) => {
          if (isBinary) {
            connection.close(CLOSE.BINARY)
            return
          }
          const bytes = Array.isArray(data) ? data.reduce((sum, part) => sum + part.length, 0) : data.byteLength
          const text = Array.isArray(data) ? Buffer.concat(data).toString('utf8') : Buffer.from(data as ArrayBuffer).toString('utf8')
          connection.handleMessage(text, bytes).catch((error: unknown) => request.log.error({ err: error }, 'websocket message failed'))
        })
        if (upgrade.identity !== undefined) {
          if (!rpc.services.admit(connection, upgrade.identity)) {
          // Another upgrade of the same user got in between the check and here.
            connection.close(CLOSE.TOO_MANY_CONNECTIONS)
            return
          }
          connection.authenticate(upgrade.ust!, upgrade.identity).catch((error: unknown) => {
            request.log.warn({ err: error }, 'could not index the session or watch it for its end')
          })
        }
      }
    })
  }
}

export default websocketRoutes
