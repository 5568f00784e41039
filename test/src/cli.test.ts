import assert from 'node:assert/strict'
import { execFile, spawn } from 'node:child_process'
import { randomBytes, randomUUID } from 'node:crypto'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, test } from 'node:test'
import { setTimeout as sleep } from 'node:timers/promises'
import { fileURLToPath } from 'node:url'
import { buildApp } from '../../src/app.ts'
import { defaultConfig, parseEncryptionKeys } from '../../src/config.ts'
import { freePort } from '../fixtures/redis.ts'
import { RUN_TYPESCRIPT } from '../helper.ts'

// The sso-attrs command line, run as a child process the way a person runs it.

const ROOT = fileURLToPath(new URL('../..', import.meta.url))
const CLI = [...RUN_TYPESCRIPT, 'src/cli.ts']

interface Run { code: number | null, stdout: string, stderr: string }

let devDir: string
before(() => { devDir = mkdtempSync(join(tmpdir(), 'sso-attrs-cli-')) })
after(() => { rmSync(devDir, { recursive: true, force: true }) })

/** This machine's environment without any sso-attrs setting, plus the given ones. */
function envWith (settings: Record<string, string>): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {}
  for (const [name, value] of Object.entries(process.env)) {
    if (/^(SSO_|REDIS_)/.test(name) || ['NODE_ENV', 'HOST', 'PORT', 'LOG_LEVEL', 'NODE_OPTIONS', 'NODE_TEST_CONTEXT'].includes(name)) continue
    env[name] = value
  }
  return { ...env, SSO_DEV_DIR: devDir, ...settings }
}

async function cli (args: string[], settings: Record<string, string> = {}): Promise<Run> {
  return await new Promise((resolve) => {
    execFile(process.execPath, [...CLI, ...args], { cwd: ROOT, env: envWith(settings), timeout: 30_000 }, (error, stdout, stderr) => {
      resolve({ code: error === null ? 0 : typeof error.code === 'number' ? error.code : null, stdout, stderr })
    })
  })
}

const COMMANDS = ['serve', 'token', 'keygen', 'check-config', 'rekey', 'ws']
const key = (fill: number) => Buffer.alloc(32, fill).toString('base64url')

describe('sso-attrs (command line)', () => {
  test('package.json names the compiled entry as the bin, and the entry has a shebang', () => {
    const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { bin: Record<string, string> }
    assert.deepEqual(pkg.bin, { 'sso-attrs': 'dist/src/cli.js' })
    assert.ok(readFileSync(join(ROOT, 'src/cli.ts'), 'utf8').startsWith('#!/usr/bin/env node\n'))
  })

  test('--help lists every command; no command is a usage error', async () => {
    const help = await cli(['--help'])
    assert.equal(help.code, 0)
    for (const name of COMMANDS) assert.match(help.stdout, new RegExp(`^  ${name} `, 'm'), name)
    const none = await cli([])
    assert.equal(none.code, 64)
    assert.match(none.stderr, /usage: sso-attrs <command>/)
    const unknown = await cli(['frobnicate'])
    assert.equal(unknown.code, 64)
    assert.match(unknown.stderr, /unknown command "frobnicate"/)
  })

  for (const name of COMMANDS) {
    test(`${name} --help`, async () => {
      const help = await cli([name, '--help'])
      assert.equal(help.code, 0, help.stderr)
      assert.match(help.stdout, new RegExp(`^usage: sso-attrs ${name}\\b`))
      assert.equal((await cli(['help', name])).stdout, help.stdout)
    })
  }

  test('an unknown option is a usage error that shows the command\'s help', async () => {
    const run = await cli(['keygen', '--bogus'])
    assert.equal(run.code, 64)
    assert.match(run.stderr, /Unknown option '--bogus'/)
    assert.match(run.stderr, /usage: sso-attrs keygen/)
  })

  describe('keygen', () => {
    test('prints a new kid:key that SSO_ENCRYPTION_KEYS accepts', async () => {
      const [first, second] = await Promise.all([cli(['keygen']), cli(['keygen'])])
      assert.equal(first.code, 0)
      assert.match(first.stdout, /^[A-Za-z0-9_-]+:[A-Za-z0-9_-]{43}\n$/)
      const [parsed] = parseEncryptionKeys(first.stdout.trim())
      assert.equal(parsed!.key.length, 32)
      assert.notEqual(first.stdout, second.stdout, 'a fresh key each time')
      assert.doesNotThrow(() => parseEncryptionKeys(`${first.stdout.trim()},${second.stdout.trim()}`), 'two default kids do not collide')
    })

    test('--kid names the key, and a kid the format forbids is refused', async () => {
      const named = await cli(['keygen', '--kid', 'k2027'])
      assert.equal(named.code, 0)
      assert.equal(parseEncryptionKeys(named.stdout.trim())[0]!.kid, 'k2027')
      const bad = await cli(['keygen', '--kid', 'no spaces'])
      assert.equal(bad.code, 64)
      assert.equal(bad.stdout, '')
      assert.match(bad.stderr, /kid/)
    })
  })

  describe('check-config', () => {
    const SECRET = 'a-jwt-secret-of-more-than-32-bytes-xyz'
    const KEY = key(9)
    const REDIS_PASSWORD = 'hunter2-redis-password'
    const secrets = {
      SSO_JWT_SECRET: SECRET,
      SSO_ENCRYPTION_KEYS: `new:${KEY},old:${key(8)}`,
      REDIS_URL: `redis://app:${REDIS_PASSWORD}@redis.internal:6380/2`,
      SSO_ISSUER: 'https://idp.example.com',
      SSO_APPS: 'CRM,Portal',
      PORT: '18080'
    }

    test('prints the effective configuration with every secret masked', async () => {
      const run = await cli(['check-config'], secrets)
      assert.equal(run.code, 0, run.stderr)
      for (const secret of [SECRET, KEY, key(8), REDIS_PASSWORD]) assert.ok(!run.stdout.includes(secret) && !run.stderr.includes(secret), 'a secret leaked')
      assert.match(run.stdout, /^SSO_JWT_SECRET=\*\*\*\* \(38 bytes\)$/m)
      assert.match(run.stdout, /^SSO_ENCRYPTION_KEYS=new:\*\*\*\*,old:\*\*\*\*$/m)
      assert.match(run.stdout, /^REDIS_URL=redis:\/\/app:\*\*\*\*@redis\.internal:6380\/2$/m)
      assert.match(run.stdout, /^PORT=18080$/m, 'a given setting')
      assert.match(run.stdout, /^SSO_SESSION_IDLE_TTL=3600 +# default$/m, 'a default')
      assert.match(run.stdout, /^SSO_AUDIENCE= +# not set$/m)
      assert.match(run.stdout, /new encrypts/)
    })

    test('--json gives the same, as JSON', async () => {
      const run = await cli(['check-config', '--json'], secrets)
      assert.equal(run.code, 0, run.stderr)
      const report = JSON.parse(run.stdout) as { valid: boolean, settings: Record<string, string | null>, defaults: string[] }
      assert.equal(report.valid, true)
      assert.equal(report.settings.PORT, '18080')
      assert.equal(report.settings.SSO_AUDIENCE, null)
      assert.equal(report.settings.SSO_ENCRYPTION_KEYS, 'new:****,old:****')
      assert.ok(!run.stdout.includes(SECRET) && !run.stdout.includes(REDIS_PASSWORD))
    })

    test('in development, names the development defaults that would apply', async () => {
      const run = await cli(['check-config'])
      assert.equal(run.code, 0, run.stderr)
      assert.match(run.stdout, /DEVELOPMENT DEFAULT: UST keys: the development issuer/)
      assert.match(run.stdout, /DEVELOPMENT DEFAULT: SSO_APPS/)
    })

    test('fails with exit 78 and every problem listed on an invalid configuration', async () => {
      const run = await cli(['check-config'], { SSO_JWT_SECRET: 'short', SSO_ENCRYPTION_KEYS: 'k1:tooshort' })
      assert.equal(run.code, 78)
      assert.equal(run.stdout, '')
      assert.match(run.stderr, /SSO_JWT_SECRET must be at least 32 bytes/)
      assert.match(run.stderr, /key "k1" must be 32 bytes/)
      assert.ok(!run.stderr.includes('tooshort') && !run.stderr.includes('short\n'), 'the bad values are not echoed')
      const typed = await cli(['check-config'], { PORT: 'eighty' })
      assert.equal(typed.code, 78)
      assert.match(typed.stderr, /PORT/)
    })

    test('lists every problem on a line of its own, settings the schema refuses and cross-setting checks alike', async () => {
      const env = { PORT: 'eighty', SSO_MAX_BATCH: '0', SSO_JWT_SECRET: 'short', SSO_SESSION_IDLE_TTL: '10', SSO_SESSION_MAX_TTL: '5' }
      const run = await cli(['check-config'], env)
      assert.equal(run.code, 78)
      assert.deepEqual(run.stderr.trim().split('\n'), [
        'sso-attrs: invalid configuration, the service would not start:',
        '  - PORT must be integer',
        '  - SSO_MAX_BATCH must be >= 1',
        '  - SSO_JWT_SECRET must be at least 32 bytes',
        '  - SSO_SESSION_IDLE_TTL must not exceed SSO_SESSION_MAX_TTL'
      ])
      const json = await cli(['check-config', '--json'], env)
      assert.equal(json.code, 78)
      assert.equal((JSON.parse(json.stdout) as { problems: string[] }).problems.length, 4)
    })

    test('fails in production without the required settings, naming each', async () => {
      const run = await cli(['check-config'], { NODE_ENV: 'production' })
      assert.equal(run.code, 78)
      for (const missing of ['REDIS_URL', 'UST key source', 'SSO_ISSUER', 'SSO_APPS', 'SSO_ENCRYPTION_KEYS']) assert.match(run.stderr, new RegExp(missing))
      const complete = await cli(['check-config'], { NODE_ENV: 'production', ...secrets })
      assert.equal(complete.code, 0, complete.stderr)
      assert.match(complete.stdout, /production mode/)
      assert.doesNotMatch(complete.stdout, /DEVELOPMENT DEFAULT/)
    })

    // Not --env-file: Node 20 itself acts on --env-file anywhere on its command line.
    test('--dotenv reads a compose-style .env over the environment; unknown names are warned about', async () => {
      const file = join(devDir, 'prod.env')
      writeFileSync(file, `NODE_ENV=production\nREDIS_URL=redis://redis:6379\nSSO_JWKS_URL=https://idp.example.com/certs\nSSO_ISSUER=https://idp.example.com\nSSO_APPS=CRM\nSSO_ENCRYPTION_KEYS=k1:${key(3)}\nSSO_ISUER=typo\n`)
      const run = await cli(['check-config', '--dotenv', file])
      assert.equal(run.code, 0, run.stderr)
      assert.match(run.stdout, /^SSO_JWKS_URL=https:\/\/idp\.example\.com\/certs$/m)
      assert.match(run.stderr, /warning: SSO_ISUER is not a setting/)
      const missing = await cli(['check-config', '--dotenv', join(devDir, 'nope.env')])
      assert.equal(missing.code, 64)
    })
  })

  describe('token', () => {
    test('prints only a JWT, which the service on the development issuer accepts', async (t) => {
      const run = await cli(['token', '--sub', 'carol'])
      assert.equal(run.code, 0, run.stderr)
      assert.match(run.stdout, /^[\w-]+\.[\w-]+\.[\w-]+\n$/)
      const ust = run.stdout.trim()
      const claims = JSON.parse(Buffer.from(ust.split('.')[1]!, 'base64url').toString()) as Record<string, unknown>
      assert.equal(claims.sub, 'carol')

      const app = await buildApp(defaultConfig({ LOG_LEVEL: 'silent', SSO_STORE: 'memory', SSO_DEV_DIR: devDir }))
      t.after(() => app.close())
      const put = await app.inject({
        method: 'PUT',
        url: '/sso/session/attr',
        headers: { authorization: `Bearer ${ust}` },
        payload: { current_app: 'CRM', name: 'theme', value: 'dark' }
      })
      assert.equal(put.statusCode, 200, put.body)

      // --sid reuses the session; --super may read another user's session.
      const sid = claims.sid as string
      const sameSession = (await cli(['token', '--sub', 'carol', '--sid', sid])).stdout.trim()
      const admin = (await cli(['token', '--sub', 'root', '--super'])).stdout.trim()
      const read = await app.inject({
        method: 'GET',
        url: `/sso/session/attr?current_app=CRM&name=theme&target_ust=${sameSession}`,
        headers: { authorization: `Bearer ${admin}` }
      })
      assert.equal(read.statusCode, 200, read.body)
      assert.equal(read.json<{ value: string }>().value, 'dark')
    })

    test('npm run -s token is the same command', async () => {
      const run = await new Promise<Run>((resolve) => {
        execFile('npm', ['run', '-s', 'token', '--', '--sub', 'dave', '--ttl', '60'], { cwd: ROOT, env: envWith({}) }, (error, stdout, stderr) => {
          resolve({ code: error === null ? 0 : 1, stdout, stderr })
        })
      })
      assert.equal(run.code, 0, run.stderr)
      const claims = JSON.parse(Buffer.from(run.stdout.trim().split('.')[1]!, 'base64url').toString()) as { sub: string, exp: number, iat: number }
      assert.equal(claims.sub, 'dave')
      assert.equal(claims.exp - claims.iat, 60)
    })

    test('refuses in production, and a bad --ttl', async () => {
      assert.equal((await cli(['token'], { NODE_ENV: 'production' })).code, 78)
      assert.equal((await cli(['token', '--ttl', 'soon'])).code, 64)
    })
  })

  test('rekey refuses the embedded store (its own suite is test/src/rekey.test.ts)', async () => {
    const run = await cli(['rekey'])
    assert.equal(run.code, 78)
    assert.match(run.stderr, /rekey works on Redis/)
  })

  test('serve runs the service until SIGTERM', { timeout: 30_000 }, async () => {
    const port = await freePort()
    const child = spawn(process.execPath, [...CLI, 'serve', '--port', String(port)], {
      cwd: ROOT,
      env: envWith({ LOG_LEVEL: 'warn', SSO_KEY_PREFIX: `cli-${randomBytes(3).toString('hex')}:` }),
      stdio: ['ignore', 'pipe', 'pipe']
    })
    let log = ''
    child.stdout.on('data', (chunk: Buffer) => { log += chunk.toString() })
    child.stderr.on('data', (chunk: Buffer) => { log += chunk.toString() })
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)))
    try {
      let healthy = false
      for (let attempt = 0; attempt < 150 && !healthy && child.exitCode === null; attempt++) {
        healthy = await fetch(`http://127.0.0.1:${port}/healthz`).then((response) => response.ok, () => false)
        if (!healthy) await sleep(100)
      }
      assert.ok(healthy, `serve answered /healthz:\n${log}`)
      assert.match(log, /DEVELOPMENT DEFAULT/)
    } finally {
      child.kill('SIGTERM')
    }
    assert.equal(await exited, 0, log)
  })

  test('serve exits 78 on an invalid configuration', async () => {
    const run = await cli(['serve'], { NODE_ENV: 'production', SSO_ISSUER: randomUUID() })
    assert.equal(run.code, 78)
    assert.match(run.stderr, /production needs REDIS_URL/)
  })
})
