import closeWithGrace from 'close-with-grace'
import { buildApp, loggerOptions } from './app.ts'
import { ConfigError, isProduction, loadConfig } from './config.ts'

let config
try {
  config = loadConfig()
} catch (error) {
  if (!(error instanceof ConfigError)) throw error
  process.stderr.write(`sso-attrs: ${error.message}\n`)
  process.exit(78) // EX_CONFIG
}

// Pretty logs for a person at a terminal in development; JSON everywhere else, so that log
// shippers parse every line.
const pretty = process.stdout.isTTY && !isProduction(config)
const app = await buildApp(config, {
  logger: {
    ...loggerOptions(config),
    ...(pretty ? { transport: { target: 'pino-pretty', options: { translateTime: 'HH:MM:ss.l', ignore: 'pid,hostname' } } } : {})
  }
})

// Bounded server timeouts: a slow client cannot hold a connection forever.
app.server.requestTimeout = 30_000
app.server.headersTimeout = 10_000
app.server.keepAliveTimeout = 5_000

closeWithGrace({ delay: config.SHUTDOWN_GRACE_MS }, async ({ signal, err }) => {
  if (err !== undefined) app.log.error({ err }, 'closing after an error')
  else app.log.info({ signal }, 'closing: draining in-flight requests')
  await app.close()
})

await app.listen({ host: config.HOST, port: config.PORT })
