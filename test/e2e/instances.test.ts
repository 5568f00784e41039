import { randomBytes } from 'node:crypto'
import { after, before, test } from 'node:test'
import { RedisServer } from '../fixtures/redis.ts'
import { listen } from './http.ts'
import { checkTwoInstances } from './load.ts'

// Two service instances on one redis-server, each on its own socket: what one writes the other
// reads at once, and if_version holds across them (the Cluster suite does the same there).

let redis: RedisServer
before(async () => { redis = await RedisServer.start() })
after(async () => { await redis.close() })

test('two instances on one Redis: a write through one is read through the other at once; if_version holds across them', { timeout: 30_000 }, async (t) => {
  const config = { SSO_STORE: 'redis' as const, REDIS_URL: redis.url, SSO_KEY_PREFIX: `e2e-i-${randomBytes(4).toString('hex')}:` }
  const one = await listen(t, config)
  const two = await listen(t, config)
  await checkTwoInstances(one.base, two.base)
})
