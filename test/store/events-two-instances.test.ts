import { after, before, test } from 'node:test'
import { RedisStore } from '../../src/store/redis-store.ts'
import { LIMITS } from './contract.ts'
import { RedisServer } from '../fixtures/redis.ts'
import { twoInstances } from './events-instances.ts'

let redis: RedisServer
before(async () => { redis = await RedisServer.start() })
after(async () => { await redis.close() })

test('two instances on one Redis: A\'s writes reach B\'s subscribers; killed subscriber connections lose and repeat nothing', async (t) => {
  const inspector = redis.client()
  t.after(() => { inspector.disconnect() })
  await twoInstances(t, (keyPrefix) => new RedisStore({ url: redis.url, keyPrefix, commandTimeoutMs: 2_000, connectTimeoutMs: 2_000, ...LIMITS }), () => [inspector])
})
