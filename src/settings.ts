import { appList, checkConfig, listOf, ConfigError, isProduction, parseEncryptionKeys, storeKind, type Config, type EncryptionKey } from './config.ts'
import { DEV_AUDIENCE, DEV_ISSUER, loadOrCreateDevKeys, type DevKeys } from './dev-issuer.ts'
import type { KeySource } from './key-source.ts'
import { UST_TYPES, type UstType } from './ust.ts'

/** The configuration with every development default applied: what the app runs on. */
export interface Settings {
  config: Config
  store: 'redis' | 'memory'
  keySource: KeySource
  issuer: string | undefined
  /** The client ids an ID token's `aud` must name one of (SSO_AUDIENCE); undefined: any. */
  audience: string[] | undefined
  /** The resources an access token's `aud` must name one of (SSO_RESOURCE, default the client ids). */
  resource: string[] | undefined
  /** Which tokens are USTs (SSO_TOKEN_TYPES). */
  tokenTypes: UstType[]
  apps: string[]
  encryptionKeys: EncryptionKey[]
  devKeys: DevKeys | undefined
  /** What fell back to a development default, to be logged loudly at start. */
  devDefaults: string[]
}

export async function resolveSettings (config: Config): Promise<Settings> {
  const problems = checkConfig(config)
  if (problems.length > 0) throw new ConfigError(problems)
  const devDefaults: string[] = []
  const needsDevKeys = config.SSO_JWKS_URL === undefined && config.SSO_JWKS_FILE === undefined && config.SSO_JWT_SECRET === undefined
  const devKeys = !isProduction(config) && (needsDevKeys || config.SSO_ENCRYPTION_KEYS === undefined)
    ? await loadOrCreateDevKeys(config.SSO_DEV_DIR)
    : undefined

  let keySource: KeySource
  if (config.SSO_JWKS_URL !== undefined) keySource = { kind: 'jwks-url', url: config.SSO_JWKS_URL }
  else if (config.SSO_JWKS_FILE !== undefined) keySource = { kind: 'jwks-file', path: config.SSO_JWKS_FILE }
  else if (config.SSO_JWT_SECRET !== undefined) keySource = { kind: 'secret', secret: config.SSO_JWT_SECRET }
  else {
    keySource = { kind: 'jwks', jwks: devKeys!.jwks }
    devDefaults.push(`UST keys: development issuer "${DEV_ISSUER}" (keys in ${config.SSO_DEV_DIR}/; mint a token with: npm run -s token -- --sub alice)`)
  }

  const devIssuer = keySource.kind === 'jwks' && devKeys !== undefined
  const issuer = config.SSO_ISSUER ?? (devIssuer ? DEV_ISSUER : undefined)
  const audience = config.SSO_AUDIENCE !== undefined ? listOf(config.SSO_AUDIENCE) : (devIssuer ? [DEV_AUDIENCE] : undefined)
  const resource = config.SSO_RESOURCE !== undefined ? listOf(config.SSO_RESOURCE) : audience
  const tokenTypes = UST_TYPES.filter((type) => listOf(config.SSO_TOKEN_TYPES).includes(type))
  if (issuer === undefined) devDefaults.push('SSO_ISSUER unset: tokens of any issuer are accepted')

  let apps = appList(config)
  if (apps.length === 0) {
    apps = ['CRM']
    devDefaults.push('SSO_APPS: the single app "CRM"')
  }

  let encryptionKeys: EncryptionKey[]
  if (config.SSO_ENCRYPTION_KEYS !== undefined) encryptionKeys = parseEncryptionKeys(config.SSO_ENCRYPTION_KEYS)
  else {
    encryptionKeys = parseEncryptionKeys(devKeys!.encryptionKeys)
    devDefaults.push(`SSO_ENCRYPTION_KEYS: a development key (in ${config.SSO_DEV_DIR}/)`)
  }

  const store = storeKind(config)
  if (store === 'memory') devDefaults.push('store: embedded in-process memory (data is lost on restart; set REDIS_URL for Redis)')

  return { config, store, keySource, issuer, audience, resource, tokenTypes, apps, encryptionKeys, devKeys, devDefaults }
}
