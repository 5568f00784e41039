import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { FastifyRequest } from 'fastify'
import fp from 'fastify-plugin'
import { ServiceMetrics } from '../src/metrics.ts'
import type { Settings } from '../src/settings.ts'
import { NearCacheStore } from '../src/store/near-cache.ts'

declare module 'fastify' {
  interface FastifyInstance {
    /** Null when METRICS_ENABLED is false. */
    metrics: ServiceMetrics | null
  }
}

export const METRICS_PATH = '/metrics'

/** The operation id of the matched route; routes without one (docs, metrics) are `other`, unrouted requests `unmatched`. */
function operationOf (request: FastifyRequest): string {
  if (request.routeOptions.url === undefined) return 'unmatched'
  return request.routeOptions.schema?.operationId ?? 'other'
}

function currentApp (request: FastifyRequest): unknown {
  for (const input of [request.body, request.query]) {
    if (typeof input === 'object' && input !== null && 'current_app' in input) return input.current_app
  }
  return undefined
}

async function scrape (metrics: ServiceMetrics, response: ServerResponse): Promise<void> {
  const text = await metrics.render()
  response.writeHead(200, { 'content-type': metrics.contentType, 'cache-control': 'no-store' }).end(text)
}

/** A bare HTTP server for METRICS_PORT: only GET /metrics, nothing of the API. */
function metricsServer (metrics: ServiceMetrics, onError: (error: unknown) => void): Server {
  return createServer((request: IncomingMessage, response: ServerResponse) => {
    if (request.method === 'GET' && request.url?.split('?')[0] === METRICS_PATH) {
      scrape(metrics, response).catch((error: unknown) => {
        onError(error)
        response.writeHead(500).end()
      })
    } else {
      response.writeHead(404, { 'content-type': 'text/plain; charset=utf-8' }).end('Not found: metrics are at GET /metrics\n')
    }
  })
}

export default fp<{ settings: Settings }>(async (fastify, { settings }) => {
  const { config } = settings
  if (!config.METRICS_ENABLED) {
    fastify.decorate('metrics', null)
    return
  }
  const metrics = new ServiceMetrics(settings.apps)
  fastify.decorate('metrics', metrics)
  metrics.instrumentStore(fastify.store)
  if (fastify.store instanceof NearCacheStore) metrics.observeNearCache(fastify.store.stats)

  fastify.addHook('onResponse', (request, reply, done) => {
    metrics.observeRequest({
      operation: operationOf(request),
      status: reply.statusCode,
      errorCode: request.errorCode ?? undefined,
      app: currentApp(request),
      seconds: reply.elapsedTime / 1000
    })
    done()
  })

  if (config.METRICS_PORT === 0) {
    // Scrapes every few seconds would drown the access log: only warnings and errors of this route are logged.
    fastify.get(METRICS_PATH, { schema: { hide: true }, logLevel: 'warn' }, async (request, reply) =>
      await reply.type(metrics.contentType).send(await metrics.render()))
    return
  }
  const server = metricsServer(metrics, (error) => fastify.log.error({ err: error }, 'metrics scrape failed'))
  // On ready rather than on listen: a metrics port that is taken fails the start instead of a log line.
  fastify.addHook('onReady', async () => {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject)
      server.listen(config.METRICS_PORT, config.HOST, () => {
        server.off('error', reject)
        resolve()
      })
    })
    fastify.log.info({ port: config.METRICS_PORT, host: config.HOST }, `metrics at http://${config.HOST}:${config.METRICS_PORT}${METRICS_PATH}`)
  })
  fastify.addHook('onClose', async () => {
    if (!server.listening) return
    await new Promise<void>((resolve) => server.close(() => resolve()))
  })
}, { name: 'metrics', dependencies: ['store'] })
