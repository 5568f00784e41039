import closeWithGrace from 'close-with-grace'
import { buildApp, loggerOptions } from './app.ts'
import { ConfigError, loadConfig } from './config.ts'
import { prettyTransport } from './pretty-logs.ts'

let config
try {
  config = loadConfig()
} catch (error) {
  if (!(error instanceof ConfigError)) throw error
  process.stderr.write(`sso-attrs: ${error.message}\n`)
  process.exit(78) // EX_CONFIG
}

const transport = prettyTransport(config, process.stdout.isTTY === true)
const app = await buildApp(config, {
  logger: { ...loggerOptions(config), ...(transport !== undefined ? { transport } : {}) }
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
