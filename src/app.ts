import { STATUS_CODES } from 'node:http'
import type { Socket } from 'node:net'
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox'
import { Ajv, type Options as AjvOptions } from 'ajv'
import Fastify, { LogController, type FastifyBaseLogger, type FastifyError, type FastifyInstance, type FastifyLoggerOptions, type FastifyReply, type FastifyRequest, type FastifyServerOptions, type RawServerDefault } from 'fastify'
import type { HelmetOptions } from 'helmet'
import type { LoggerOptions } from 'pino'
import attributesPlugin from '../plugins/attributes.ts'
import auditPlugin from '../plugins/audit.ts'
import metricsPlugin from '../plugins/metrics.ts'
import rateLimitPlugin from '../plugins/rate-limit.ts'
import securityHeadersPlugin from '../plugins/security-headers.ts'
import storePlugin from '../plugins/store.ts'
import swaggerPlugin from '../plugins/swagger.ts'
import backchannelLogoutRoutes from '../routes/backchannel-logout.ts'
import healthRoutes from '../routes/health.ts'
import { strictJsonParser } from '../routes/request-input.ts'
import attributeRoutes from '../routes/attributes.ts'
import sessionRoutes from '../routes/session.ts'
import userRoutes from '../routes/user.ts'
import type { Config } from './config.ts'
import { AppError, ERROR_CATALOG, isAppError, type ErrorCode, type ErrorDetail } from './errors.ts'
import { randomHex } from './random-pool.ts'
import { resolveSettings, type Settings } from './settings.ts'
import type { Store } from './store/types.ts'

export interface BuildOptions {
  /** pino options or a ready logger; defaults to JSON logs at config.LOG_LEVEL. */
  logger?: FastifyServerOptions['logger']
  loggerInstance?: FastifyBaseLogger
  /** Use this store instead of creating one from the configuration (tests). */
  store?: Store
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

interface ValidationIssue {
  keyword: string
  instancePath: string
  message?: string
  params: Record<string, unknown>
}

function validationDetails (issues: ValidationIssue[]): { code: ErrorCode, details: ErrorDetail[] } {
  const code: ErrorCode = issues.some((issue) => issue.keyword === 'required') ? 'E008003' : 'E008002'
  // One detail per field: a union reports each branch, which reads better joined with "or".
  const byPath = new Map<string, string[]>()
  for (const issue of issues) {
    let path = issue.instancePath
    let message = issue.message ?? 'is invalid'
    if (issue.keyword === 'required') {
      path = `${path}/${String(issue.params.missingProperty)}`
      message = 'is required'
    } else if (issue.keyword === 'additionalProperties') {
      path = `${path}/${String(issue.params.additionalProperty)}`
      message = 'is not a known field'
    } else if (issue.keyword === 'anyOf' && byPath.has(path)) {
      continue
    }
    const messages = byPath.get(path) ?? []
    if (!messages.includes(message)) messages.push(message)
    byPath.set(path, messages)
  }
  return { code, details: [...byPath].map(([path, messages]) => ({ path, message: messages.join(' or ') })) }
}

// Fastify's own client errors, mapped to our codes. Anything 4xx not listed is E008002.
const FASTIFY_ERRORS: Record<string, ErrorCode> = {
  FST_ERR_CTP_INVALID_MEDIA_TYPE: 'E008001',
  FST_ERR_CTP_BODY_TOO_LARGE: 'E011001',
  FST_ERR_CTP_EMPTY_JSON_BODY: 'E008003'
}

const newCid = () => randomHex(12)

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

/** Requests Node's HTTP parser refuses (oversized headers, malformed HTTP) never reach Fastify; they get an envelope all the same. */
function clientErrorHandler (this: FastifyInstance, error: NodeJS.ErrnoException, socket: Socket): void {
  if (error.code === 'ECONNRESET' || socket.destroyed) return
  const [status, code]: [number, ErrorCode] = error.code === 'HPE_HEADER_OVERFLOW'
    ? [431, 'E011001']
    : error.code === 'ERR_HTTP_REQUEST_TIMEOUT' ? [408, 'E008002'] : [400, 'E008002']
  const cid = newCid()
  const body = JSON.stringify({ cid, status: 'error', sub_status: [code], message: STATUS_CODES[status] })
  this.log.info({ cid, sub_status: code, reason: error.code }, 'request rejected by the HTTP parser')
  if (socket.writable) {
    socket.write(`HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\ncontent-type: application/json; charset=utf-8\r\n` +
      `content-length: ${Buffer.byteLength(body)}\r\nx-cid: ${cid}\r\ncache-control: no-store\r\nconnection: close\r\n\r\n${body}`)
  }
  socket.destroy(error)
}

/** Errors raised before routing (a URL that is not valid percent-encoding): neither the error handler nor onSend sees them. */
function frameworkErrors (error: FastifyError, request: FastifyRequest, reply: FastifyReply): void {
  const badUrl = error.code === 'FST_ERR_BAD_URL' || error.code === 'FST_ERR_MAX_PARAM_LENGTH'
  const code: ErrorCode = badUrl ? 'E008002' : 'E008004'
  request.log.info({ sub_status: code, reason: error.code }, 'request rejected')
  request.errorCode = code
  reply.status(badUrl ? 400 : 500).header('x-cid', request.id).header('cache-control', 'no-store')
    .send({ cid: request.id, status: 'error', sub_status: [code], message: badUrl ? 'The URL is not valid' : ERROR_CATALOG.E008004.message })
}

declare module 'fastify' {
  interface FastifyRequest {
    /** Set with every error envelope: its first sub_status code. */
    errorCode: ErrorCode | null
  }
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
    return503OnClosing: true,
    routerOptions: { ignoreTrailingSlash: true },
    // X-Forwarded-For is believed only from these addresses: request.ip is the client's.
    trustProxy: trustedProxies(config),
    clientErrorHandler,
    frameworkErrors
  }).withTypeProvider<TypeBoxTypeProvider>()

  // The first sub_status code of an error envelope, for metrics (null: not an error envelope).
  app.decorateRequest('errorCode', null)

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

  app.setErrorHandler((error: FastifyError | AppError, request, reply) => {
    let code: ErrorCode
    let message: string
    let details: ErrorDetail[] | undefined
    let status: number
    if (isAppError(error)) {
      code = error.code
      status = error.statusCode
      message = error.message
      details = error.details
    } else if (error.validation !== undefined) {
      ({ code, details } = validationDetails(error.validation as ValidationIssue[]))
      status = 400
      message = code === 'E008003' ? ERROR_CATALOG.E008003.message : ERROR_CATALOG.E008002.message
    } else if (error.code in FASTIFY_ERRORS) {
      code = FASTIFY_ERRORS[error.code]!
      status = error.statusCode ?? ERROR_CATALOG[code].status
      message = error.message
    } else if (error.statusCode !== undefined && error.statusCode >= 400 && error.statusCode < 500) {
      code = 'E008002'
      status = 400
      message = error.message
    } else {
      code = 'E008004'
      status = 500
      message = ERROR_CATALOG.E008004.message
    }
    if (status >= 500) request.log.error({ err: error, sub_status: code }, 'request failed')
    else request.log.info({ sub_status: code, reason: message }, 'request rejected')
    if (code === 'E011003') reply.header('retry-after', '1')
    // Undefined, not null, on routes of plugins registered before the audit plugin (Swagger UI).
    if (request.audit != null) request.audit.sub_status = code
    const subStatus = isAppError(error) ? error.subStatus : [code]
    request.errorCode = subStatus[0]!
    return reply.status(status).send({
      cid: request.id,
      status: 'error',
      sub_status: subStatus,
      message,
      ...(details !== undefined ? { details } : {})
    })
  })

  const knownPaths = new Set([
    '/healthz', '/readyz', '/sso/backchannel-logout', ...SESSION_PREFIXES, USER_PREFIX,
    ...[...ATTR_PREFIXES, ...USER_ATTR_PREFIXES].flatMap((prefix) => [prefix, `${prefix}/exists`, `${prefix}/names`])
  ])
  app.setNotFoundHandler((request, reply) => {
    const path = request.url.split('?')[0]!.replace(/\/+$/, '')
    const knownPath = knownPaths.has(path)
    request.errorCode = 'E008001'
    return reply.status(knownPath ? 405 : 404).send({
      cid: request.id,
      status: 'error',
      sub_status: ['E008001'],
      message: knownPath ? `Method ${request.method} is not allowed here` : 'Unknown route'
    })
  })

  // Headers for a JSON API: nothing may frame, embed or run a response (Swagger UI sets its own CSP).
  await app.register(securityHeadersPlugin, API_SECURITY_HEADERS)
  await app.register(swaggerPlugin)
  await app.register(storePlugin, { settings, store: options.store })
  await app.register(metricsPlugin, { settings })
  await app.register(attributesPlugin, { settings })
  await app.register(auditPlugin)
  await app.register(healthRoutes)
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
  })

  for (const notice of settings.devDefaults) app.log.warn(`DEVELOPMENT DEFAULT: ${notice}`)
  return app
}

export type App = Awaited<ReturnType<typeof buildApp>>
