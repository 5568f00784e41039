// The limit sso-attrs is measured against in `npm run bench` (scripts/bench.ts): a bare
// Fastify 5 app with one route per method on the service's path, the same JSON envelope
// ({cid, status, ...}) and the same response body size as the service, and no Redis.
//
// Environment: PORT, HOST (default 127.0.0.1), LOG_LEVEL (default warn, as the benchmarked
// service), BENCH_GET_TEMPLATE / BENCH_PUT_TEMPLATE: JSON objects, the service's own responses
// without their cid (scripts/bench.ts captures them), so the bodies are byte for byte the same
// size. Nothing else: no schemas, no hooks, no validation, no Redis.
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

app.get('/healthz', async (request) => ({ cid: request.id, status: 'ok' }))
app.get('/sso/session/attr', async (request) => ({ cid: request.id, ...getTemplate }))
app.put('/sso/session/attr', async (request) => ({ cid: request.id, ...putTemplate }))

for (const signal of ['SIGTERM', 'SIGINT']) {
  process.once(signal, () => {
    app.close().then(() => process.exit(0), () => process.exit(1))
  })
}

await app.listen({ host: process.env.HOST ?? '127.0.0.1', port: Number(process.env.PORT ?? 0) })
