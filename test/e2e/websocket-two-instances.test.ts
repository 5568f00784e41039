import { after, before, test } from 'node:test'
import { RedisServer } from '../fixtures/redis.ts'
import { twoInstances } from './websocket-instances.ts'

// Two service instances on one redis-server, a WebSocket subscriber on B (websocket-instances.ts).

let redis: RedisServer
before(async () => { redis = await RedisServer.start() })
after(async () => { await redis.close() })

test('two instances on one Redis: REST writes through A reach a WebSocket subscriber on B; killed twice and back with since, it loses and repeats nothing; a logout through A ends B\'s connection', { timeout: 30_000 }, async (t) => {
  await twoInstances(t, { SSO_STORE: 'redis', REDIS_URL: redis.url })
})
