import rateLimit from '@fastify/rate-limit'
import type { FastifyRequest } from 'fastify'
import fp from 'fastify-plugin'
import type { Config } from '../src/config.ts'
import { bearerToken } from '../src/bearer-token.ts'
import { AppError } from '../src/errors.ts'
import { BatchedRateCounter } from '../src/rate-counter.ts'
import type { Identity } from '../src/ust.ts'

declare module 'fastify' {
  interface FastifyRequest {
    /** The caller's UST as verified while choosing the rate-limit key; reused by authorization. */
    verifiedCaller: Identity | Promise<Identity> | null
  }
}

/** The caller's UST wherever it was given, without judging the rest of the request. */
function callerUst (request: FastifyRequest): string | undefined {
  const authorization = request.headers.authorization
  if (typeof authorization === 'string') return bearerToken(authorization) ?? undefined
  for (const part of [request.body, request.query]) {
    const fields = part as Record<string, unknown> | null | undefined
    // `ust`: the caller's UST as Zato 3.2 clients send it to /zato/sso/user/attr.
    const ust = fields?.current_ust ?? fields?.ust
    if (typeof ust === 'string') return ust
  }
  return undefined
}

/** @fastify/rate-limit's store interface over a counter that shares its counts through our Store. */
function counterOn (counter: BatchedRateCounter) {
  // One window for every route (no route sets its own timeWindow), so one counter serves all.
  return class StoreCounter {
    incr (key: string, callback: (error: Error | null, result?: { current: number, ttl: number }) => void): void {
      const { current, ttlMs } = counter.hit(key)
      callback(null, { current, ttl: ttlMs })
    }

    child (): StoreCounter {
      return new StoreCounter()
    }
  }
}

/**
 * Rate limits the routes registered after it in the same scope: per caller (issuer + subject
 * of a UST that verifies) and per client IP for everything else, so failed authentication
 * cannot be used to spend another user's budget. Counts are shared through the store in
 * batches (src/rate-counter.ts): no store round trip on a request's path.
 */
export default fp<{ config: Config }>(async (fastify, { config }) => {
  fastify.decorateRequest('verifiedCaller', null)
  if (config.SSO_RATE_LIMIT_MAX === 0) return
  const counter = new BatchedRateCounter(fastify.store, config.SSO_RATE_LIMIT_WINDOW * 1000, { syncMs: config.SSO_RATE_LIMIT_SYNC_MS })
  fastify.addHook('onClose', async () => {
    counter.close()
    await counter.flush()
  })
  await fastify.register(rateLimit, {
    global: true,
    hook: 'preValidation',
    max: config.SSO_RATE_LIMIT_MAX,
    timeWindow: config.SSO_RATE_LIMIT_WINDOW * 1000,
    // The plugin's type wants its own store constructor; ours has the same shape.
    store: counterOn(counter) as unknown as NonNullable<Parameters<typeof rateLimit>[1]>['store'],
    addHeadersOnExceeding: { 'x-ratelimit-limit': true, 'x-ratelimit-remaining': true, 'x-ratelimit-reset': true },
    // Synchronous for a token in the cache (nearly every request): no promise to wait for.
    keyGenerator: (request) => {
      const ust = callerUst(request)
      if (ust === undefined) return `ip:${request.ip}`
      const cached = fastify.access.identifyCached(ust)
      if (cached !== undefined) {
        request.verifiedCaller = cached
        return `u:${cached.userId}`
      }
      const verification = fastify.access.identify(ust)
      request.verifiedCaller = verification
      // A token that does not verify is counted against the client address, and answered by authorization.
      return verification.then((identity) => `u:${identity.userId}`, () => `ip:${request.ip}`)
    },
    errorResponseBuilder: (_request, context) => new AppError('E011002', `Rate limit exceeded, retry in ${context.after}`)
  })
}, { name: 'rate-limit', dependencies: ['store', 'attributes'] })
