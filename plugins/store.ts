import fp from 'fastify-plugin'
import { redisTopology } from '../src/config.ts'
import { createEventFeed } from '../src/events/feed.ts'
import type { EventFeed } from '../src/events/types.ts'
import type { Settings } from '../src/settings.ts'
import { MemoryStore } from '../src/store/memory-store.ts'
import { NearCacheStore } from '../src/store/near-cache.ts'
import { RedisStore } from '../src/store/redis-store.ts'
import { onEvictingPolicy } from '../src/store/redis-topology.ts'
import type { Store } from '../src/store/types.ts'

declare module 'fastify' {
  interface FastifyInstance {
    store: Store
    /**
     * Change events of attributes (issue 16) for the transports' subscriptions. Cheap until
     * used: subscriber connections are opened by the first subscription.
     */
    eventFeed: EventFeed
  }
}

export function createStore (settings: Settings): Store {
  const { config } = settings
  const limits = {
    sessionIdleTtlMs: config.SSO_SESSION_IDLE_TTL * 1000,
    sessionMaxTtlMs: config.SSO_SESSION_MAX_TTL * 1000,
    maxAttributesPerSession: config.SSO_MAX_ATTRS_PER_SESSION,
    userIdleTtlMs: config.SSO_USER_ATTR_IDLE_TTL * 1000,
    maxAttributesPerUser: config.SSO_MAX_ATTRS_PER_USER
  }
  if (settings.store === 'memory') return new MemoryStore(limits)
  const redis = new RedisStore({
    ...limits,
    topology: redisTopology(config),
    keyPrefix: config.SSO_KEY_PREFIX,
    commandTimeoutMs: config.REDIS_COMMAND_TIMEOUT_MS,
    connectTimeoutMs: config.REDIS_CONNECT_TIMEOUT_MS,
    username: config.REDIS_USERNAME,
    password: config.REDIS_PASSWORD,
    sentinelPassword: config.REDIS_SENTINEL_PASSWORD,
    tls: config.REDIS_TLS,
    minReplicasAck: config.SSO_REDIS_MIN_REPLICAS_ACK,
    clusterOptions: { slotsRefreshInterval: config.REDIS_CLUSTER_SLOTS_REFRESH_MS }
  })
  if (config.SSO_NEAR_CACHE !== 'on') return redis
  return new NearCacheStore(redis, {
    maxOwners: config.SSO_NEAR_CACHE_MAX_OWNERS,
    maxBytes: config.SSO_NEAR_CACHE_MAX_BYTES,
    renewIntervalMs: config.SSO_NEAR_CACHE_RENEW_MS,
    maxStalenessMs: config.SSO_NEAR_CACHE_MAX_STALENESS_MS
  }, limits)
}

export default fp<{ settings: Settings, store?: Store | undefined, eventFeed?: EventFeed | undefined }>(async (fastify, options) => {
  const store = options.store ?? createStore(options.settings)
  if (store instanceof RedisStore || store instanceof NearCacheStore) {
    onEvictingPolicy(store.redis, (node, policy) => {
      fastify.log.warn({ node, policy }, `Redis at ${node} has maxmemory-policy ${policy}: when it is full it evicts keys, and attributes vanish without an error. Set maxmemory-policy noeviction (docs/SCALING.md)`)
    })
  }
  const eventFeed = options.eventFeed ?? createEventFeed(store)
  fastify.decorate('store', store)
  fastify.decorate('eventFeed', eventFeed)
  fastify.addHook('onClose', async () => {
    await eventFeed.close()
    await store.close()
  })
}, { name: 'store' })
