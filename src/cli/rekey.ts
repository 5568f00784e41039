import { ConfigError, loadConfig, redisTopology, storeKind, type Config } from '../config.ts'
import { formatReport, rekey, type RekeyOptions, type RekeyReport } from '../rekey.ts'
import { resolveSettings } from '../settings.ts'
import { createRedisClient, type RedisClient } from '../store/redis-topology.ts'
import { ValueCipher } from '../value-cipher.ts'
import { EX_CONFIG, parseOptions, print, printError, type Command } from './common.ts'

const HELP = `usage: sso-attrs rekey [--dry-run] [--json]

Re-encrypts every encrypted attribute value in Redis under the active key (the first of
SSO_ENCRYPTION_KEYS), while the service keeps running, so that older keys can be removed.
Reads the same settings as the service (REDIS_URL, REDIS_CLUSTER_NODES or REDIS_SENTINELS,
SSO_KEY_PREFIX, SSO_ENCRYPTION_KEYS) and scans every master of a Cluster. Each value is written back only if no client changed it since it was
read, keeping its version and times; a changed value is read again and retried.
Progress goes to stderr when it is a terminal; the final counts go to stdout.

Exit code 0 when every value is under the active key, 1 when some failed (listed on
stderr: a key that is not configured, or a value that does not authenticate), 69 when Redis
cannot be reached, 78 on a bad configuration, 130 when interrupted (Ctrl-C stops after the
sessions in progress; running it again is safe).

options:
  --dry-run   count what would be re-encrypted, write nothing; exit 0 only when nothing
              is left under an older key (so the older keys can be removed)
  --json      print the final report as JSON
  -h, --help  this text`

const EX_UNAVAILABLE = 69
const EX_INTERRUPTED = 130
const PROGRESS_INTERVAL_MS = 200
const FAILURES_PRINTED = 20

/** The service's Redis (one server, a Cluster or a Sentinel-managed primary), with an admin tool's patience. */
function redisClient (config: Config): RedisClient {
  const retry = (attempt: number): number | null => (attempt > 5 ? null : 200 * attempt)
  return createRedisClient({
    topology: redisTopology(config),
    // A busy server may take longer than a request may; a dead one still fails the run.
    commandTimeoutMs: Math.max(10 * config.REDIS_COMMAND_TIMEOUT_MS, 10_000),
    connectTimeoutMs: config.REDIS_CONNECT_TIMEOUT_MS,
    username: config.REDIS_USERNAME,
    password: config.REDIS_PASSWORD,
    sentinelPassword: config.REDIS_SENTINEL_PASSWORD,
    tls: config.REDIS_TLS,
    // Unlike a request, every rekey command is safe to send twice (rekey.lua compares before
    // it writes), so commands may queue while a connection comes up and be retried.
    redisOptions: { enableOfflineQueue: true, maxRetriesPerRequest: 2, retryStrategy: retry },
    clusterOptions: { enableOfflineQueue: true, clusterRetryStrategy: retry }
  })
}

function exitCode (report: RekeyReport): number {
  if (report.aborted) return EX_INTERRUPTED
  if (report.failed > 0) return 1
  return report.dryRun && report.rekeyed > 0 ? 1 : 0
}

export const rekeyCommand: Command = {
  name: 'rekey',
  summary: 're-encrypt stored values under the active (first) encryption key',
  help: HELP,
  async run (args) {
    const { values } = parseOptions(args, { 'dry-run': { type: 'boolean', default: false }, json: { type: 'boolean', default: false } })
    if (values.help === true) {
      print(HELP)
      return 0
    }
    let config: Config
    let cipher: ValueCipher
    try {
      config = loadConfig(process.env)
      cipher = new ValueCipher((await resolveSettings(config)).encryptionKeys)
    } catch (error) {
      if (!(error instanceof ConfigError)) throw error
      printError(`invalid configuration:\n${error.problems.map((problem) => `  - ${problem}`).join('\n')}`)
      return EX_CONFIG
    }
    if (storeKind(config) !== 'redis') {
      printError('rekey works on Redis: the embedded memory store lives inside the service process and is gone when it restarts with new keys. Set REDIS_URL or REDIS_CLUSTER_NODES.')
      return EX_CONFIG
    }

    const client = redisClient(config)
    client.on('error', () => {})
    const controller = new AbortController()
    const interrupt = (): void => {
      printError('interrupted: finishing the sessions in progress')
      controller.abort()
    }
    process.once('SIGINT', interrupt)
    const tty = process.stderr.isTTY
    let lastProgress = 0
    const progress = (report: RekeyReport): void => {
      const now = Date.now()
      if (now - lastProgress < PROGRESS_INTERVAL_MS) return
      lastProgress = now
      process.stderr.write(`\r\x1b[2Krekey: ${formatReport(report)}`)
    }
    const options: RekeyOptions = { client, keyPrefix: config.SSO_KEY_PREFIX, cipher, dryRun: values['dry-run'] === true, signal: controller.signal }
    if (tty) options.onProgress = progress
    let report: RekeyReport
    try {
      await client.connect()
      report = await rekey(options)
    } catch (error) {
      if (tty) process.stderr.write('\n')
      printError(`rekey stopped: Redis failed: ${(error as Error).message}. Running it again is safe.`)
      return EX_UNAVAILABLE
    } finally {
      process.removeListener('SIGINT', interrupt)
      client.disconnect()
    }
    if (tty) process.stderr.write('\r\x1b[2K')
    const listed = report.failures.slice(0, FAILURES_PRINTED)
    for (const failure of listed) printError(`session ${failure.session}, attribute ${JSON.stringify(failure.name)}: ${failure.reason}`)
    if (report.failed > listed.length) printError(`... and ${report.failed - listed.length} more failures${values.json === true ? '' : ' (--json lists up to 100)'}`)
    if (values.json === true) {
      print(JSON.stringify(report, null, 2))
    } else {
      const older = Object.entries(report.byKid).map(([kid, count]) => `${kid}: ${count}`).join(', ')
      print(`rekey${report.dryRun ? ' (dry run)' : ''}${report.aborted ? ' (interrupted)' : ''}: ${formatReport(report)}`)
      print(older === '' ? 'no values were under older keys' : `values read under older keys: ${older}`)
    }
    return exitCode(report)
  }
}
