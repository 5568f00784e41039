// The limit sso-attrs is measured against in `npm run bench` (scripts/bench.ts): a bare
// Fastify 5 app with one route per method on the service's path, the same JSON envelope
// ({cid, status, ...}) and the same response body size as the service, and no Redis.
//
// Environment: PORT, HOST (default 127.0.0.1), LOG_LEVEL (default warn, as the benchmarked
// service), BENCH_GET_TEMPLATE / BENCH_PUT_TEMPLATE: JSON objects, the service's own responses
// without their cid (scripts/bench.ts captures them), so the bodies are byte for byte the same
// size. Nothing else: no schemas, no hooks, no validation, no Redis (but for the floor route,
// with BENCH_REDIS_URL: the same GET or PUT plus one EVALSHA).
import { randomFillSync } from 'node:crypto'
import Fastify from 'fastify'

const template = (name) => {
  const text = process.env[name]
  return text === undefined || text === '' ? { status: 'ok' } : JSON.parse(text)
}
const getTemplate = template('BENCH_GET_TEMPLATE')
const putTemplate = template('BENCH_PUT_TEMPLATE')

// The service's cid, made the way the service makes it (src/random-pool.ts): 12 random
// bytes in hex, cut from a pool of random hex refilled 4 KiB at a time.
let hexPool = ''
let hexOffset = 0
const newCid = () => {
  if (hexOffset + 24 > hexPool.length) {
    hexPool = randomFillSync(Buffer.allocUnsafe(4096)).toString('hex')
    hexOffset = 0
  }
  hexOffset += 24
  return hexPool.slice(hexOffset - 24, hexOffset)
}

const app = Fastify({
  logger: { level: process.env.LOG_LEVEL ?? 'warn' },
  genReqId: newCid
})

// The floors: the same GET plus one Redis round trip through ioredis (auto-pipelining, one
// EVALSHA of a one-line script reading a 100-byte field, over 2000 keys), which every request
// of the service needs, and the same PUT plus one EVALSHA writing the body's value into a
// field. Only with BENCH_REDIS_URL.
if (process.env.BENCH_REDIS_URL !== undefined && process.env.BENCH_REDIS_URL !== '') {
  const { Redis } = await import('ioredis')
  const redis = new Redis(process.env.BENCH_REDIS_URL, { enableAutoPipelining: true })
  redis.defineCommand('floorGet', { numberOfKeys: 1, lua: "return redis.call('HGET', KEYS[1], ARGV[1])" })
  const KEYS = 2000
  const pipeline = redis.pipeline()
  for (let i = 0; i < KEYS; i++) pipeline.hset(`bench-floor:{${i}}:a`, 'plain', 'x'.repeat(100))
  await pipeline.exec()
  let next = 0
  app.get('/floor/sso/session/attr', async (request) => {
    await redis.floorGet(`bench-floor:{${next++ % KEYS}}:a`, 'plain')
    return { cid: request.id, ...getTemplate }
  })
  // The PUT floor: the same JSON body parsed (Fastify's own parser) and its value written into
  // a hash field by one EVALSHA.
  redis.defineCommand('floorPut', { numberOfKeys: 1, lua: "return redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])" })
  app.put('/floor/sso/session/attr', async (request) => {
    const body = request.body
    await redis.floorPut(`bench-floor:{${next++ % KEYS}}:a`, body.name, JSON.stringify(body.value))
    return { cid: request.id, ...putTemplate }
  })
  app.addHook('onClose', async () => { await redis.quit() })
}

app.get('/healthz', async (request) => ({ cid: request.id, status: 'ok' }))
app.get('/sso/session/attr', async (request) => ({ cid: request.id, ...getTemplate }))
app.put('/sso/session/attr', async (request) => ({ cid: request.id, ...putTemplate }))

for (const signal of ['SIGTERM', 'SIGINT']) {
  process.once(signal, () => {
    app.close().then(() => process.exit(0), () => process.exit(1))
  })
}

await app.listen({ host: process.env.HOST ?? '127.0.0.1', port: Number(process.env.PORT ?? 0) })
