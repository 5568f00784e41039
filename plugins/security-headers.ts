import type { IncomingMessage, ServerResponse } from 'node:http'
import fp from 'fastify-plugin'
import helmet, { type HelmetOptions } from 'helmet'

/**
 * The response headers helmet sets for these options, computed once. None of them depends on
 * the request (no CSP nonces), and @fastify/helmet builds a new helmet instance on every
 * request (it parses the CSP each time): about a tenth of the service's CPU per request.
 */
export function securityHeaders (options: Readonly<HelmetOptions>): Record<string, string> {
  const headers: Record<string, string> = {}
  const response = {
    setHeader (name: string, value: string | number | readonly string[]) {
      headers[name.toLowerCase()] = Array.isArray(value) ? value.join(', ') : String(value)
    },
    removeHeader (name: string) {
      delete headers[name.toLowerCase()]
    }
  }
  helmet(options)({} as IncomingMessage, response as unknown as ServerResponse, (error) => {
    if (error !== undefined) throw error
  })
  return headers
}

/** Sets helmet's headers on every response, where @fastify/helmet would (onRequest: later headers, like Swagger UI's CSP, win). */
export default fp<HelmetOptions>(async (fastify, options) => {
  const headers = securityHeaders(options)
  fastify.addHook('onRequest', (_request, reply, done) => {
    reply.headers(headers)
    done()
  })
}, { name: 'security-headers' })
