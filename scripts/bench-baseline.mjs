// The limit sso-attrs is measured against in `npm run bench` (scripts/bench.ts): a bare
// Fastify 5 app with one route per method on the service's path, the same JSON envelope
// ({cid, status, ...}) and the same response body size as the service, and no Redis.
//
// Environment: PORT, HOST (default 127.0.0.1), LOG_LEVEL (default warn, as the benchmarked
// service), BENCH_GET_TEMPLATE / BENCH_PUT_TEMPLATE: JSON objects, the service's own responses
// without their cid (scripts/bench.ts captures them), so the bodies are byte for byte the same
// size. Nothing else: no schemas, no hooks, no validation, no Redis.
import { randomBytes } from 'node:crypto'
import Fastify from 'fastify'

const template = (name) => {
  const text = process.env[name]
  return text === undefined || text === '' ? { status: 'ok' } : JSON.parse(text)
}
const getTemplate = template('BENCH_GET_TEMPLATE')
const putTemplate = template('BENCH_PUT_TEMPLATE')

const app = Fastify({
  logger: { level: process.env.LOG_LEVEL ?? 'warn' },
  // The service's cid: 12 random bytes in hex.
  genReqId: () => randomBytes(12).toString('hex')
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
