import { randomBytes, randomUUID } from 'node:crypto'
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { SignJWT, exportJWK, generateKeyPair, importJWK, type JSONWebKeySet, type JWK } from 'jose'

// Development only: a token issuer and an encryption key so that `npm start` works with no
// configuration. Kept in a git-ignored file so tokens and encrypted values survive restarts.
export const DEV_ISSUER = 'sso-attrs-dev'
export const DEV_AUDIENCE = 'sso-attrs'
const FILE_NAME = 'dev-keys.json'

interface DevKeysFile {
  privateJwk: JWK
  publicJwk: JWK
  encryptionKey: string
}

export interface DevKeys {
  jwks: JSONWebKeySet
  privateJwk: JWK
  /** `kid:base64url` in the SSO_ENCRYPTION_KEYS format. */
  encryptionKeys: string
}

export async function loadOrCreateDevKeys (dir: string): Promise<DevKeys> {
  const path = join(dir, FILE_NAME)
  let stored: DevKeysFile
  try {
    stored = JSON.parse(readFileSync(path, 'utf8')) as DevKeysFile
  } catch {
    const { privateKey, publicKey } = await generateKeyPair('ES256', { extractable: true })
    const kid = `dev-${randomBytes(4).toString('hex')}`
    stored = {
      privateJwk: { ...await exportJWK(privateKey), kid, alg: 'ES256', use: 'sig' },
      publicJwk: { ...await exportJWK(publicKey), kid, alg: 'ES256', use: 'sig' },
      encryptionKey: `dev:${randomBytes(32).toString('base64url')}`
    }
    mkdirSync(dir, { recursive: true, mode: 0o700 })
    writeFileSync(path, JSON.stringify(stored, null, 2), { mode: 0o600 })
  }
  return { jwks: { keys: [stored.publicJwk] }, privateJwk: stored.privateJwk, encryptionKeys: stored.encryptionKey }
}

export interface DevTokenOptions {
  sub: string
  sid?: string | undefined
  superUser?: boolean | undefined
  ttlSeconds?: number | undefined
  sessionClaim?: string | undefined
  rolesClaim?: string | undefined
  superUserRole?: string | undefined
}

export async function issueDevToken (keys: DevKeys, options: DevTokenOptions): Promise<string> {
  const claims: Record<string, unknown> = { [options.sessionClaim ?? 'sid']: options.sid ?? randomUUID() }
  if (options.superUser === true) setClaimAtPath(claims, options.rolesClaim ?? 'roles', [options.superUserRole ?? 'sso:super-user'])
  const key = await importJWK(keys.privateJwk, 'ES256')
  return await new SignJWT(claims)
    .setProtectedHeader({ alg: 'ES256', kid: keys.privateJwk.kid ?? 'dev', typ: 'JWT' })
    .setIssuer(DEV_ISSUER)
    .setAudience(DEV_AUDIENCE)
    .setSubject(options.sub)
    .setIssuedAt()
    .setExpirationTime(`${options.ttlSeconds ?? 3600}s`)
    .sign(key)
}

/** Sets a claim at a dotted path (`realm_access.roles`), creating the objects on the way. */
function setClaimAtPath (claims: Record<string, unknown>, path: string, value: unknown): void {
  const parts = path.split('.')
  let node = claims
  for (const part of parts.slice(0, -1)) {
    const next = node[part]
    node = (next !== null && typeof next === 'object' ? next : (node[part] = {})) as Record<string, unknown>
  }
  node[parts[parts.length - 1]!] = value
}
