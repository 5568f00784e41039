import { STATUS_CODES } from 'node:http'
import type { Socket } from 'node:net'
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import fp from 'fastify-plugin'
import { AppError, ERROR_CATALOG, isAppError, type ErrorCode, type ErrorDetail } from '../src/errors.ts'
import { randomHex } from '../src/random-pool.ts'
import { validationDetails, type ValidationIssue } from '../src/validation-details.ts'

declare module 'fastify' {
  interface FastifyRequest {
    /** Set with every error envelope: its first sub_status code. */
    errorCode: ErrorCode | null
  }
}

export interface ErrorEnvelope {
  cid: string
  status: 'error'
  sub_status: ErrorCode[]
  message: string
  details?: ErrorDetail[]
}

/** The body of every error answer, whichever path answers it. */
export function envelope (cid: string, subStatus: ErrorCode[], message: string, details?: ErrorDetail[]): ErrorEnvelope {
  return { cid, status: 'error', sub_status: subStatus, message, ...(details !== undefined ? { details } : {}) }
}

/** A request's correlation id: the `cid` of its envelope and its `x-cid` header. */
export const newCid = (): string => randomHex(12)

/** Sends an error envelope through Fastify (so onSend adds x-cid and the metrics see the code). */
function sendEnvelope (request: FastifyRequest, reply: FastifyReply, status: number, subStatus: ErrorCode[], message: string, details?: ErrorDetail[]): FastifyReply {
  request.errorCode = subStatus[0]!
  return reply.status(status).send(envelope(request.id, subStatus, message, details))
}

const LENGTH_KEYWORDS: ReadonlySet<string> = new Set(['minLength', 'maxLength'])

// Fastify's own client errors, mapped to our codes. Anything 4xx not listed is E008002.
const FASTIFY_ERRORS: Record<string, ErrorCode> = {
  FST_ERR_CTP_INVALID_MEDIA_TYPE: 'E008001',
  FST_ERR_CTP_BODY_TOO_LARGE: 'E011001',
  FST_ERR_CTP_EMPTY_JSON_BODY: 'E008003'
}

const CLIENT_ERROR_LINGER_MS = 2000

/** Requests Node's HTTP parser refuses (oversized headers, malformed HTTP) never reach Fastify; they get an envelope all the same. */
export function clientErrorHandler (this: FastifyInstance, error: NodeJS.ErrnoException, socket: Socket): void {
  if (error.code === 'ECONNRESET' || socket.destroyed) return
  const [status, code]: [number, ErrorCode] = error.code === 'HPE_HEADER_OVERFLOW'
    ? [431, 'E011001']
    : error.code === 'ERR_HTTP_REQUEST_TIMEOUT' ? [408, 'E008002'] : [400, 'E008002']
  const cid = newCid()
  const body = JSON.stringify(envelope(cid, [code], STATUS_CODES[status]!))
  this.log.info({ cid, sub_status: code, reason: error.code }, 'request rejected by the HTTP parser')
  if (!socket.writable) {
    socket.destroy(error)
    return
  }
  socket.end(`HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\ncontent-type: application/json; charset=utf-8\r\n` +
    `content-length: ${Buffer.byteLength(body)}\r\nx-cid: ${cid}\r\ncache-control: no-store\r\nconnection: close\r\n\r\n${body}`)
  // A lingering close: the client may still be sending (the rest of an oversized header), and
  // closing with unread bytes makes the kernel reset the connection, which can destroy the
  // answer before the client reads it. Read and drop the rest for a moment, then close.
  socket.on('data', () => {})
  socket.resume()
  setTimeout(() => socket.destroy(), CLIENT_ERROR_LINGER_MS).unref()
}

/** Errors raised before routing (a URL that is not valid percent-encoding): neither the error handler nor onSend sees them. */
export function frameworkErrors (error: FastifyError, request: FastifyRequest, reply: FastifyReply): void {
  const badUrl = error.code === 'FST_ERR_BAD_URL' || error.code === 'FST_ERR_MAX_PARAM_LENGTH'
  const code: ErrorCode = badUrl ? 'E008002' : 'E008004'
  request.log.info({ sub_status: code, reason: error.code }, 'request rejected')
  reply.header('x-cid', request.id).header('cache-control', 'no-store')
  sendEnvelope(request, reply, badUrl ? 400 : 500, [code], badUrl ? 'The URL is not valid' : ERROR_CATALOG.E008004.message)
}

// RFC 6750 §3: a 401 names the scheme and realm; the error attributes only when a token was
// given and refused (§3.1: none when the request carried no credentials of this scheme).
const REALM = 'Bearer realm="sso-attrs"'
// error_description allows printable ASCII but `"` and `\` (RFC 6750 §3).
const NOT_IN_QUOTED_DESCRIPTION = /[^\x20\x21\x23-\x5b\x5d-\x7e]/g

function hasUst (input: unknown): boolean {
  return typeof input === 'object' && input !== null && Object.hasOwn(input, 'current_ust')
}

/** Whether the request presented a UST: a Bearer Authorization header, well formed or not, or a current_ust field. */
function presentsToken (request: FastifyRequest): boolean {
  const authorization = request.headers.authorization
  if (typeof authorization === 'string' && /^bearer(?: |$)/i.test(authorization)) return true
  return hasUst(request.body) || hasUst(request.query)
}

function bearerChallenge (tokenRejected: boolean, description: string): string {
  if (!tokenRejected) return REALM
  return `${REALM}, error="invalid_token", error_description="${description.replaceAll('"', '\'').replace(NOT_IN_QUOTED_DESCRIPTION, '')}"`
}

/** The status, codes and message of any error a request can end with. */
function classify (error: FastifyError | AppError): { status: number, subStatus: ErrorCode[], message: string, details?: ErrorDetail[] } {
  if (isAppError(error)) {
    return { status: error.statusCode, subStatus: error.subStatus, message: error.message, ...(error.details !== undefined ? { details: error.details } : {}) }
  }
  if (error.validation !== undefined) {
    const issues = error.validation as ValidationIssue[]
    // An empty or overlong current_ust is a token that cannot verify: 401, as a malformed bearer is.
    if (issues.length > 0 && issues.every((issue) => issue.instancePath === '/current_ust' && LENGTH_KEYWORDS.has(issue.keyword))) {
      return { status: 401, subStatus: ['E007001'], message: 'current_ust is not a UST' }
    }
    const { code, details } = validationDetails(issues)
    return { status: 400, subStatus: [code], message: ERROR_CATALOG[code].message, details }
  }
  const known = Object.hasOwn(FASTIFY_ERRORS, error.code) ? FASTIFY_ERRORS[error.code] : undefined
  if (known !== undefined) return { status: error.statusCode ?? ERROR_CATALOG[known].status, subStatus: [known], message: error.message }
  if (error.statusCode !== undefined && error.statusCode >= 400 && error.statusCode < 500) {
    return { status: 400, subStatus: ['E008002'], message: error.message }
  }
  return { status: 500, subStatus: ['E008004'], message: ERROR_CATALOG.E008004.message }
}

/**
 * Every error answer of the service is the `{cid, status: "error", sub_status, message}`
 * envelope: errors thrown by handlers and hooks, validation, unknown routes and methods,
 * and (through `clientErrorHandler` and `frameworkErrors`, Fastify options) what fails
 * before routing.
 */
export default fp(async (fastify) => {
  fastify.decorateRequest('errorCode', null)

  fastify.setErrorHandler((error: FastifyError | AppError, request, reply) => {
    const { status, subStatus, message, details } = classify(error)
    const code = subStatus[0]!
    if (status >= 500) request.log.error({ err: error, sub_status: code }, 'request failed')
    else request.log.info({ sub_status: code, reason: message }, 'request rejected')
    if (code === 'E011003') reply.header('retry-after', '1')
    else if (status === 401) reply.header('www-authenticate', bearerChallenge(presentsToken(request), message))
    // Undefined, not null, on routes of plugins registered before the audit plugin (Swagger UI).
    if (request.audit != null) request.audit.sub_status = code
    return sendEnvelope(request, reply, status, subStatus, message, details)
  })

  // Once close() starts the server accepts no new connection, but a request on a kept-alive
  // connection (or pipelined) still arrives. It gets our 503 and the connection closes after it.
  let draining = false
  fastify.addHook('preClose', (done) => {
    draining = true
    done()
  })
  fastify.addHook('onRequest', (_request, reply, done) => {
    if (!draining) {
      done()
      return
    }
    reply.header('connection', 'close')
    done(new AppError('E011003', 'The service is shutting down; retry on another instance'))
  })

  // The methods each path serves, for the Allow header of a 405 (RFC 9110 §15.5.6).
  const methodsByPath = new Map<string, Set<string>>()
  fastify.addHook('onRoute', (route) => {
    const path = route.url.replace(/\/+$/, '')
    const methods = methodsByPath.get(path) ?? new Set<string>()
    for (const method of [route.method].flat()) methods.add(method)
    methodsByPath.set(path, methods)
  })
  fastify.setNotFoundHandler((request, reply) => {
    const methods = methodsByPath.get(request.url.split('?')[0]!.replace(/\/+$/, ''))
    if (methods === undefined) return sendEnvelope(request, reply, 404, ['E008001'], 'Unknown route')
    reply.header('allow', [...methods].sort().join(', '))
    return sendEnvelope(request, reply, 405, ['E008001'], `Method ${request.method} is not allowed here`)
  })
}, { name: 'error-envelope' })
