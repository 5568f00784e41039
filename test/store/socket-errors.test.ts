import assert from 'node:assert/strict'
import { after, before, test } from 'node:test'
import type { Redis } from 'ioredis'
import { RedisServer } from '../fixtures/redis.ts'
import { createRedisClient } from '../../src/store/redis-topology.ts'

// A socket may emit more than one 'error' (seen under load with TLS: a handshake cut short by
// the connect timeout). ioredis listens with once(), so the second one used to surface as an
// unhandled 'error' event and crash the service (D46).

let redis: RedisServer
before(async () => { redis = await RedisServer.start() })
after(async () => { await redis.close() })

test('a second error on a Redis socket neither throws nor stops the client from reconnecting', async () => {
  const client = createRedisClient({ topology: { kind: 'standalone', url: redis.url }, commandTimeoutMs: 1000, connectTimeoutMs: 1000 }) as Redis
  client.on('error', () => {})
  try {
    await client.connect()
    assert.equal(await client.ping(), 'PONG')
    const stream = (client as unknown as { stream: NodeJS.EventEmitter }).stream
    assert.doesNotThrow(() => {
      stream.emit('error', new Error('first'))
      stream.emit('error', new Error('second'))
    })
    for (let attempt = 0; client.status !== 'ready' && attempt < 100; attempt++) await new Promise((resolve) => setTimeout(resolve, 20))
    assert.equal(await client.ping(), 'PONG', 'reconnected and serving')
  } finally {
    client.disconnect()
  }
})
