import { randomBytes, randomUUID } from 'node:crypto'
import type { TestContext } from 'node:test'
import { SignJWT } from 'jose'
import { buildApp, type BuildOptions } from '../src/app.ts'
import { defaultConfig, type Config } from '../src/config.ts'

export const TEST_SECRET = 'test-secret-that-is-at-least-32-bytes-long!'
export const TEST_ISSUER = 'https://idp.test'
export const TEST_AUDIENCE = 'sso-attrs'
export const TEST_KEYS = `k1:${Buffer.alloc(32, 1).toString('base64url')},k0:${Buffer.alloc(32, 2).toString('base64url')}`

export function testConfig (overrides: Partial<Config> = {}): Config {
  return defaultConfig({
    LOG_LEVEL: 'silent',
    SSO_STORE: 'memory',
    SSO_JWT_SECRET: TEST_SECRET,
    SSO_ISSUER: TEST_ISSUER,
    SSO_AUDIENCE: TEST_AUDIENCE,
    SSO_APPS: 'CRM,Portal',
    SSO_ENCRYPTION_KEYS: TEST_KEYS,
    SSO_KEY_PREFIX: `test-${randomBytes(4).toString('hex')}:`,
    // Suites that send thousands of requests from one address; rate limiting has its own tests.
    SSO_RATE_LIMIT_MAX: 0,
    ...overrides
  })
}

/**
 * The environment for the real entry point (src/server.ts) run as a child process: the test
 * settings on a loopback port, nothing else inherited but PATH, HOME and TMPDIR.
 */
export function serverProcessEnv (port: number, overrides: Record<string, string> = {}): NodeJS.ProcessEnv {
  return {
    PATH: process.env.PATH,
    HOME: process.env.HOME,
    TMPDIR: process.env.TMPDIR,
    HOST: '127.0.0.1',
    PORT: String(port),
    SSO_JWT_SECRET: TEST_SECRET,
    SSO_ISSUER: TEST_ISSUER,
    SSO_AUDIENCE: TEST_AUDIENCE,
    SSO_APPS: 'CRM,Portal',
    SSO_ENCRYPTION_KEYS: TEST_KEYS,
    ...overrides
  }
}

/** Builds the app on a literal configuration and closes it when the test ends. */
export async function build (t: TestContext | undefined, overrides: Partial<Config> = {}, options: BuildOptions = {}) {
  const app = await buildApp(testConfig(overrides), options)
  if (t !== undefined) t.after(() => app.close())
  await app.ready()
  return app
}

export interface UstOptions {
  sub?: string
  sid?: string
  roles?: string[]
  issuer?: string
  audience?: string
  expiresIn?: string | number
  secret?: string
  claims?: Record<string, unknown>
}

/** A UST signed with the test secret; each call is a new session unless `sid` is given. */
export async function mintUst (options: UstOptions = {}): Promise<string> {
  const jwt = new SignJWT({ sid: options.sid ?? randomUUID(), ...(options.roles !== undefined ? { roles: options.roles } : {}), ...options.claims })
    .setProtectedHeader({ alg: 'HS256' })
    .setIssuer(options.issuer ?? TEST_ISSUER)
    .setAudience(options.audience ?? TEST_AUDIENCE)
    .setSubject(options.sub ?? 'alice')
    .setIssuedAt()
    .setExpirationTime(options.expiresIn ?? '1h')
  return await jwt.sign(new TextEncoder().encode(options.secret ?? TEST_SECRET))
}

const [nodeMajor = 0, nodeMinor = 0] = process.versions.node.split('.').map(Number)
/**
 * Node's arguments to run a TypeScript entry point (src/cli.ts, src/server.ts) as a child
 * process: Node strips the types itself from 23.6 and 22.18 on (tsconfig's erasableSyntaxOnly
 * keeps that possible) and starts several times faster than through tsx; older Nodes use tsx.
 */
export const RUN_TYPESCRIPT: readonly string[] =
  nodeMajor > 23 || (nodeMajor === 23 && nodeMinor >= 6) || (nodeMajor === 22 && nodeMinor >= 18)
    ? ['--no-warnings=ExperimentalWarning']
    : ['--import', 'tsx']
