import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox'
import { Ajv, type Options as AjvOptions } from 'ajv'
import Fastify, { LogController, type FastifyBaseLogger, type FastifyLoggerOptions, type FastifyServerOptions, type RawServerDefault } from 'fastify'
import type { HelmetOptions } from 'helmet'
import type { LoggerOptions } from 'pino'
import attributesPlugin from '../plugins/attributes.ts'
import auditPlugin from '../plugins/audit.ts'
import errorEnvelopePlugin, { clientErrorHandler, frameworkErrors, newCid } from '../plugins/error-envelope.ts'
import metricsPlugin from '../plugins/metrics.ts'
import rateLimitPlugin from '../plugins/rate-limit.ts'
import securityHeadersPlugin from '../plugins/security-headers.ts'
import storePlugin from '../plugins/store.ts'
import swaggerPlugin from '../plugins/swagger.ts'
import websocketPlugin from '../plugins/websocket.ts'
import backchannelLogoutRoutes from '../routes/backchannel-logout.ts'
import demoRoutes from '../routes/demo.ts'
import healthRoutes from '../routes/health.ts'
import { strictJsonParser } from '../routes/request-input.ts'
import attributeRoutes from '../routes/attributes.ts'
import sessionRoutes from '../routes/session.ts'
import userRoutes from '../routes/user.ts'
import websocketRoutes from '../routes/websocket.ts'
import { isProduction, type Config } from './config.ts'
import type { EventFeed } from './events/types.ts'
import { resolveSettings, type Settings } from './settings.ts'
import type { Store } from './store/types.ts'

export interface BuildOptions {
  /** pino options or a ready logger; defaults to JSON logs at config.LOG_LEVEL. */
  logger?: FastifyServerOptions['logger']
  loggerInstance?: FastifyBaseLogger
  /** Use this store instead of creating one from the configuration (tests). */
  store?: Store
  /** Change events for core.subscribe (issue 16) instead of the store's own feed (tests). */
  eventFeed?: EventFeed
}

export const ATTR_PREFIXES = ['/sso/session/attr', '/zato/sso/session/attr'] as const
export const USER_ATTR_PREFIXES = ['/sso/user/attr', '/zato/sso/user/attr'] as const
export const SESSION_PREFIXES = ['/sso/session', '/zato/sso/session'] as const
export const USER_PREFIX = '/sso/user'

function trustedProxies (config: Config): string[] | false {
  const proxies = (config.SSO_TRUSTED_PROXIES ?? '').split(',').map((entry) => entry.trim()).filter((entry) => entry !== '')
  return proxies.length > 0 ? proxies : false
}

/** Request URLs in logs lose their query string: it may carry a target UST. */
export function redactUrl (url: string): string {
  const query = url.indexOf('?')
  return query === -1 ? url : `${url.slice(0, query)}?[redacted]`
}

export function loggerOptions (config: Config): FastifyLoggerOptions<RawServerDefault> & LoggerOptions {
  return {
    level: config.LOG_LEVEL,
    redact: { paths: ['req.headers.authorization', 'req.headers.cookie'], censor: '[redacted]' },
    serializers: {
      req: (request: { method: string, url: string, ip?: string }) => ({
        method: request.method,
        url: redactUrl(request.url),
        remoteAddress: request.ip
      })
    }
  }
}

// Bodies are validated strictly (no type coercion: "60" is not a number); query strings
// arrive as text, so they are coerced, and a repeated parameter becomes an array.
const AJV_COMMON: AjvOptions = { useDefaults: true, removeAdditional: false, allErrors: false, strict: true }
const bodyAjv = new Ajv({ ...AJV_COMMON, coerceTypes: false })
const queryAjv = new Ajv({ ...AJV_COMMON, coerceTypes: 'array' })

/**
 * The security headers of OWASP's REST Security Cheat Sheet, and no more: those helmet adds for
 * HTML documents (COOP, Origin-Agent-Cluster, X-DNS-Prefetch-Control, X-Download-Options,
 * X-Permitted-Cross-Domain-Policies, X-XSS-Protection) mean nothing on a JSON answer and cost
 * every response about 250 bytes (D24).
 */
export const API_SECURITY_HEADERS: HelmetOptions = {
  contentSecurityPolicy: { useDefaults: false, directives: { defaultSrc: ['\'none\''], frameAncestors: ['\'none\''] } },
  crossOriginResourcePolicy: { policy: 'same-origin' },
  referrerPolicy: { policy: 'no-referrer' },
  xFrameOptions: { action: 'deny' },
  crossOriginOpenerPolicy: false,
  originAgentCluster: false,
  xDnsPrefetchControl: false,
  xDownloadOptions: false,
  xPermittedCrossDomainPolicies: false,
  xXssProtection: false
}

export async function buildApp (config: Config, options: BuildOptions = {}) {
  const settings: Settings = await resolveSettings(config)
  const app = Fastify({
    ...(options.loggerInstance !== undefined ? { loggerInstance: options.loggerInstance } : { logger: options.logger ?? loggerOptions(config) }),
    genReqId: newCid,
    requestIdHeader: false,
    logController: new LogController({ requestIdLogLabel: 'cid' }),
    exposeHeadRoutes: false,
    bodyLimit: config.SSO_BODY_LIMIT,
    onProtoPoisoning: 'error',
    onConstructorPoisoning: 'error',
    // Our 503 envelope instead (plugins/error-envelope.ts).
    return503OnClosing: false,
    routerOptions: { ignoreTrailingSlash: true },
    // X-Forwarded-For is believed only from these addresses: request.ip is the client's.
    trustProxy: trustedProxies(config),
    clientErrorHandler,
    frameworkErrors
  }).withTypeProvider<TypeBoxTypeProvider>()

  // Zato clients send their inputs as a JSON body even with GET.
  app.addHttpMethod('GET', { hasBody: true, overrideExisting: true })
  app.removeContentTypeParser('text/plain')
  app.addContentTypeParser('application/json', { parseAs: 'buffer' }, strictJsonParser(app))
  app.setValidatorCompiler(({ schema, httpPart }) => (httpPart === 'body' ? bodyAjv : queryAjv).compile(schema))

  // A callback hook, not an async one: no promise per response.
  app.addHook('onSend', (request, reply, payload, done) => {
    reply.header('x-cid', request.id)
    reply.header('cache-control', 'no-store')
    done(null, payload)
  })

  // Headers for a JSON API: nothing may frame, embed or run a response (Swagger UI sets its own CSP).
  await app.register(securityHeadersPlugin, API_SECURITY_HEADERS)
  // Before any route, so that its onRoute hook sees them all (405 answers name the methods a path serves).
  await app.register(errorEnvelopePlugin)
  await app.register(swaggerPlugin)
  await app.register(storePlugin, { settings, store: options.store, eventFeed: options.eventFeed })
  await app.register(metricsPlugin, { settings })
  await app.register(attributesPlugin, { settings })
  await app.register(auditPlugin)
  await app.register(websocketPlugin, { settings })
  await app.register(healthRoutes)
  // A page that shows the WebSocket API at work; never in production.
  if (!isProduction(config) && config.SSO_WS_ENABLED) await app.register(demoRoutes)
  // The API itself, in a scope of its own so that rate limiting covers it and nothing else.
  await app.register(async (api) => {
    await api.register(rateLimitPlugin, { config })
    await api.register(attributeRoutes, { prefix: ATTR_PREFIXES[0], scope: 'session', zatoCompat: false })
    await api.register(attributeRoutes, { prefix: ATTR_PREFIXES[1], scope: 'session', zatoCompat: true })
    await api.register(attributeRoutes, { prefix: USER_ATTR_PREFIXES[0], scope: 'user', zatoCompat: false })
    await api.register(attributeRoutes, { prefix: USER_ATTR_PREFIXES[1], scope: 'user', zatoCompat: true })
    await api.register(sessionRoutes, { prefix: SESSION_PREFIXES[0], zatoCompat: false })
    await api.register(sessionRoutes, { prefix: SESSION_PREFIXES[1], zatoCompat: true })
    await api.register(userRoutes, { prefix: USER_PREFIX })
    await api.register(backchannelLogoutRoutes)
    await api.register(websocketRoutes)
  })

  for (const notice of settings.devDefaults) app.log.warn(`DEVELOPMENT DEFAULT: ${notice}`)
  return app
}

export type App = Awaited<ReturnType<typeof buildApp>>
