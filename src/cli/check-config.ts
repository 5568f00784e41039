import { readFileSync } from 'node:fs'
import { parseEnv } from 'node:util'
import { appList, ConfigError, ConfigSchema, isProduction, listOf, loadConfig, parseEncryptionKeys, storeKind, type Config } from '../config.ts'
import { EX_CONFIG, UsageError, parseOptions, print, printError, type Command } from './common.ts'

const HELP = `usage: sso-attrs check-config [--dotenv <path>] [--json]

Validates the configuration in the environment exactly as the service does at start-up, and
prints the effective settings (defaults filled in) with secrets masked: SSO_JWT_SECRET, the
key material of SSO_ENCRYPTION_KEYS (key ids stay visible), passwords in URLs and
the *_PASSWORD settings.
Exit code 0 when the service would start, 78 with every problem listed when it would not.
Variables that look like settings but are not (SSO_ISUER) are reported as warnings.

options:
  --dotenv <path>     read variables from this file too (KEY=value lines, as docker compose's
                      .env); they override the environment
  --json              print {valid, settings, defaults, notes, warnings} as JSON
  -h, --help          this text`

const MASK = '****'
const SETTINGS = Object.keys(ConfigSchema.properties) as Array<keyof Config & string>

/** A URL with its password (if any) masked; text that is not a URL is returned unchanged. */
function maskUrlPassword (value: string): string {
  try {
    const url = new URL(value)
    if (url.password === '') return value
    url.password = MASK
    return url.toString()
  } catch {
    return value.replace(/\/\/([^:/@]*):[^@/]*@/, `//$1:${MASK}@`)
  }
}

/** How a setting may be shown: never a secret, a key or a password. */
export function maskSetting (name: string, value: string): string {
  if (name === 'SSO_JWT_SECRET') return `${MASK} (${Buffer.byteLength(value)} bytes)`
  if (name === 'SSO_ENCRYPTION_KEYS') {
    return value.split(',').map((entry) => entry.trim()).filter((entry) => entry !== '')
      .map((entry) => `${entry.includes(':') ? entry.slice(0, entry.indexOf(':')) : '?'}:${MASK}`).join(',')
  }
  if (/PASSWORD$/.test(name)) return MASK
  if (/_URL$/.test(name)) return maskUrlPassword(value)
  return value
}

/** What the service derives from the settings, and which development defaults it would apply. */
function notesOf (config: Config): { notes: string[], defaults: string[] } {
  const notes: string[] = []
  const defaults: string[] = []
  const dev = !isProduction(config)
  const store = storeKind(config)
  if (store === 'redis') {
    if (config.REDIS_CLUSTER_NODES !== undefined) notes.push(`store: Redis Cluster, seed nodes ${config.REDIS_CLUSTER_NODES}`)
    else if (config.REDIS_SENTINELS !== undefined) notes.push(`store: Redis primary "${config.REDIS_SENTINEL_NAME ?? ''}" from the Sentinels ${config.REDIS_SENTINELS}`)
    else notes.push(`store: redis at ${maskUrlPassword(config.REDIS_URL ?? '')}`)
    if (config.SSO_REDIS_MIN_REPLICAS_ACK > 0) notes.push(`writes wait for ${config.SSO_REDIS_MIN_REPLICAS_ACK} replica acknowledgement(s)`)
  }
  if (config.SSO_JWKS_URL !== undefined) notes.push(`UST keys: JWKS from ${maskUrlPassword(config.SSO_JWKS_URL)}`)
  else if (config.SSO_JWKS_FILE !== undefined) notes.push(`UST keys: JWKS file ${config.SSO_JWKS_FILE}`)
  else if (config.SSO_JWT_SECRET !== undefined) notes.push('UST keys: HS256 secret (SSO_JWT_SECRET)')
  else if (dev) defaults.push(`UST keys: the development issuer (keys in ${config.SSO_DEV_DIR}/)`)
  if (config.SSO_JWKS_URL !== undefined) {
    notes.push(`JWKS: one cache for USTs and logout tokens, refetched for an unknown kid (after a fetch that brought no new keys, at most every ${config.SSO_JWKS_REFETCH_INTERVAL_MS} ms), never used past ${config.SSO_JWKS_MAX_AGE} s`)
  }
  const clientIds = listOf(config.SSO_AUDIENCE)
  const resources = config.SSO_RESOURCE !== undefined ? listOf(config.SSO_RESOURCE) : clientIds
  const kinds = listOf(config.SSO_TOKEN_TYPES).map((type) => type === 'id_token'
    ? `ID tokens (aud: ${clientIds.length > 0 ? clientIds.join(', ') : 'any'})`
    : `access tokens, typ at+jwt (aud: ${resources.length > 0 ? resources.join(', ') : 'any'})`)
  notes.push(`USTs: ${kinds.join(' and ')}; session attributes need the claim "${config.SSO_SESSION_CLAIM}", user attributes only sub`)
  if (config.SSO_ENCRYPTION_KEYS !== undefined) {
    const kids = parseEncryptionKeys(config.SSO_ENCRYPTION_KEYS).map((key) => key.kid)
    notes.push(`encryption keys: ${kids.join(', ')} (${kids[0]} encrypts${kids.length > 1 ? ', all decrypt' : ''})`)
  } else if (dev) defaults.push(`SSO_ENCRYPTION_KEYS: a development key (in ${config.SSO_DEV_DIR}/)`)
  const apps = appList(config)
  if (apps.length > 0) notes.push(`apps: ${apps.join(', ')}`)
  else if (dev) defaults.push('SSO_APPS: the single app "CRM"')
  if (config.SSO_ISSUER === undefined && dev && (config.SSO_JWKS_URL !== undefined || config.SSO_JWKS_FILE !== undefined || config.SSO_JWT_SECRET !== undefined)) {
    defaults.push('SSO_ISSUER unset: tokens of any issuer are accepted')
  }
  if (store === 'memory') defaults.push('store: embedded in-process memory (data is lost on restart; set REDIS_URL for Redis)')
  return { notes, defaults }
}

export const checkConfigCommand: Command = {
  name: 'check-config',
  summary: 'validate the environment and print the effective configuration, secrets masked',
  help: HELP,
  async run (args) {
    const { values } = parseOptions(args, { dotenv: { type: 'string' }, json: { type: 'boolean', default: false } })
    if (values.help === true) {
      print(HELP)
      return 0
    }
    let env: Record<string, string | undefined> = { ...process.env }
    const envFile = values.dotenv as string | undefined
    if (envFile !== undefined) {
      let text: string
      try {
        text = readFileSync(envFile, 'utf8')
      } catch (error) {
        throw new UsageError(`--dotenv: cannot read ${envFile}: ${(error as Error).message}`)
      }
      env = { ...env, ...parseEnv(text) }
    }
    const known = new Set<string>(SETTINGS)
    const warnings = Object.keys(env).filter((name) => /^(SSO|REDIS)_/.test(name) && !known.has(name)).sort()
      .map((name) => `${name} is not a setting of sso-attrs: it is ignored`)

    let config: Config
    try {
      config = loadConfig(env)
    } catch (error) {
      if (!(error instanceof ConfigError)) throw error
      if (values.json === true) print(JSON.stringify({ valid: false, problems: error.problems, warnings }, null, 2))
      else {
        for (const warning of warnings) printError(`warning: ${warning}`)
        printError(`invalid configuration, the service would not start:\n${error.problems.map((problem) => `  - ${problem}`).join('\n')}`)
      }
      return EX_CONFIG
    }

    const given = (name: string) => env[name] !== undefined && env[name] !== ''
    const settings: Record<string, string | null> = {}
    for (const name of SETTINGS) {
      const value = config[name]
      settings[name] = value === undefined ? null : maskSetting(name, String(value))
    }
    const { notes, defaults } = notesOf(config)
    if (values.json === true) {
      print(JSON.stringify({ valid: true, settings, defaults, notes, warnings }, null, 2))
      return 0
    }
    for (const warning of warnings) printError(`warning: ${warning}`)
    const width = Math.max(...SETTINGS.map((name) => name.length + 1 + (settings[name] ?? '').length))
    print(`# sso-attrs configuration: valid (${isProduction(config) ? 'production' : 'development'} mode)`)
    for (const name of SETTINGS) {
      const line = `${name}=${settings[name] ?? ''}`
      const origin = settings[name] === null ? 'not set' : given(name) ? '' : 'default'
      print(origin === '' ? line : `${line.padEnd(width)}  # ${origin}`)
    }
    for (const note of notes) print(`# ${note}`)
    for (const fallback of defaults) print(`# DEVELOPMENT DEFAULT: ${fallback}`)
    return 0
  }
}
