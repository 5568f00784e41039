import fp from 'fastify-plugin'
import type { Settings } from '../src/settings.ts'
import { MemoryStore } from '../src/store/memory-store.ts'
import { RedisStore } from '../src/store/redis-store.ts'
import type { Store } from '../src/store/types.ts'

declare module 'fastify' {
  interface FastifyInstance {
    store: Store
  }
}

export function createStore (settings: Settings): Store {
  const { config } = settings
  const limits = {
    sessionIdleTtlMs: config.SSO_SESSION_IDLE_TTL * 1000,
    sessionMaxTtlMs: config.SSO_SESSION_MAX_TTL * 1000,
    maxAttributesPerSession: config.SSO_MAX_ATTRS_PER_SESSION
  }
  if (settings.store === 'memory') return new MemoryStore(limits)
  return new RedisStore({
    ...limits,
    url: config.REDIS_URL!,
    keyPrefix: config.SSO_KEY_PREFIX,
    commandTimeoutMs: config.REDIS_COMMAND_TIMEOUT_MS,
    connectTimeoutMs: config.REDIS_CONNECT_TIMEOUT_MS
  })
}

export default fp<{ settings: Settings, store?: Store | undefined }>(async (fastify, options) => {
  const store = options.store ?? createStore(options.settings)
  fastify.decorate('store', store)
  fastify.addHook('onClose', async () => await store.close())
}, { name: 'store' })
