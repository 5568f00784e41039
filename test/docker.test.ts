import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Writable } from 'node:stream'
import { describe, test } from 'node:test'
import { fileURLToPath } from 'node:url'
import { parseEnv } from 'node:util'
import { Redis } from 'ioredis'
import { parse } from 'yaml'
import { loggerOptions } from '../src/app.ts'
import { ConfigSchema, loadConfig } from '../src/config.ts'
import { freePort, killProcess, RedisServer, spawnRedis } from './fixtures/redis.ts'
import { build as buildService, mintUst, testConfig } from './helper.ts'

// Docker cannot run on the development machines, so the Dockerfile and docker-compose.yml are
// checked by reading them: the essentials an operator relies on, and every name they share
// with the code (paths, settings, the health route). What they run is run here as far as it
// can be: the health check commands against the service, Redis's command line on redis-server.

const ROOT = fileURLToPath(new URL('..', import.meta.url))
const read = (path: string) => readFileSync(`${ROOT}${path}`, 'utf8')

interface Instruction { keyword: string, args: string }
interface Stage { from: string, name: string | undefined, instructions: Instruction[] }

/** Dockerfile instructions grouped by stage, continuation lines joined, comments dropped. */
function parseDockerfile (text: string): Stage[] {
  const logical = text.replace(/\\\n/g, ' ').split('\n').map((line) => line.trim()).filter((line) => line !== '' && !line.startsWith('#'))
  const stages: Stage[] = []
  for (const line of logical) {
    const [, keyword = '', args = ''] = /^(\S+)\s*(.*)$/.exec(line) ?? []
    if (keyword.toUpperCase() === 'FROM') {
      const [, from = '', name] = /^(\S+)(?:\s+AS\s+(\S+))?$/i.exec(args) ?? []
      stages.push({ from, name, instructions: [] })
    } else {
      assert.ok(stages.length > 0, `${keyword} before the first FROM`)
      stages.at(-1)!.instructions.push({ keyword: keyword.toUpperCase(), args })
    }
  }
  return stages
}

/** ENV in either form: `ENV A=1 B=2` or `ENV A 1`. */
function envOf (stage: Stage): Map<string, string> {
  const env = new Map<string, string>()
  for (const { args } of stage.instructions.filter((i) => i.keyword === 'ENV')) {
    if (!args.includes('=')) {
      const [name, ...value] = args.split(/\s+/)
      env.set(name!, value.join(' '))
      continue
    }
    for (const match of args.matchAll(/([A-Za-z_][A-Za-z0-9_]*)=("[^"]*"|\S*)/g)) env.set(match[1]!, match[2]!.replace(/^"|"$/g, ''))
  }
  return env
}

const jsonArgs = (args: string) => JSON.parse(args) as string[]

/** Runs a `node -e` health check the way Docker would, with PORT set; resolves to its exit code. */
async function runCheck (command: string[], port: number): Promise<number> {
  assert.equal(command[0], 'node')
  return await new Promise((resolve) => {
    execFile(process.execPath, command.slice(1), { env: { PATH: process.env.PATH, PORT: String(port) }, timeout: 20_000 }, (error) => {
      resolve(error === null ? 0 : typeof error.code === 'number' ? error.code : -1)
    })
  })
}

/** The health check commands agree with a real service: 0 while it answers /healthz, 1 once nothing listens. */
async function checkAgainstService (command: (port: number) => string[]): Promise<void> {
  const app = await buildService(undefined)
  await app.listen({ host: '127.0.0.1', port: 0 })
  const port = (app.server.address() as AddressInfo).port
  try {
    assert.equal(await runCheck(command(port), port), 0, 'healthy service')
  } finally {
    await app.close()
  }
  assert.equal(await runCheck(command(port), port), 1, 'nothing listening')
  const idle = await freePort()
  assert.equal(await runCheck(command(idle), idle), 1, 'nothing listening on another port')
}

const stages = parseDockerfile(read('Dockerfile'))
const runtime = stages.at(-1)!
const build = stages.find((stage) => stage.name !== undefined && stage !== runtime)

const KNOWN_SETTINGS = new Set(Object.keys(ConfigSchema.properties))

interface ComposeService {
  build?: unknown
  image?: string
  command?: string[] | string
  env_file?: string | Array<string | { path: string, required?: boolean }>
  environment?: Record<string, string | number | boolean | null> | string[]
  ports?: Array<string | { target: number, published?: number | string }>
  volumes?: string[]
  healthcheck?: { test?: string[] | string, interval?: string }
  depends_on?: Record<string, { condition?: string }> | string[]
}

const composeText = read('docker-compose.yml')
const compose = parse(composeText) as { services: Record<string, ComposeService> }

/** `.env.example` as compose and `check-config --dotenv` read it. */
const envExample = parseEnv(read('.env.example'))

/** Every `${NAME...}` compose interpolates, with its `:-default` or `:?message` form. */
const interpolated = [...composeText.matchAll(/\$\{(\w+)(?::([-?])([^}]*))?\}/g)]
  .map(([, name, kind, rest]) => ({ name: name!, required: kind === '?', fallback: kind === '-' ? rest! : undefined }))

/** Compose's interpolation of `${NAME}`, `${NAME:-default}` and `${NAME:?message}` from `vars`. */
function interpolate (text: string, vars: Record<string, string | undefined>): string {
  return text.replace(/\$\{(\w+)(?::([-?])([^}]*))?\}/g, (_match, name: string, kind: string | undefined, rest: string) => {
    const value = vars[name] ?? ''
    if (value !== '') return value
    if (kind === '?') throw new Error(`compose refuses to start: ${rest}`)
    return kind === '-' ? rest : ''
  })
}

function composeEnv (service: ComposeService): Record<string, string> {
  const env = service.environment ?? {}
  if (Array.isArray(env)) return Object.fromEntries(env.map((entry) => { const [name, ...value] = entry.split('='); return [name!, value.join('=')] }))
  return Object.fromEntries(Object.entries(env).map(([name, value]) => [name, value === null ? '' : String(value)]))
}

describe('Dockerfile', () => {
  test('is multi-stage: a named build stage, and the runtime copies only its output', () => {
    assert.ok(stages.length >= 2, `${stages.length} stages`)
    assert.ok(build !== undefined, 'a named build stage')
    assert.ok(build.instructions.some((i) => i.keyword === 'RUN' && /npm run build/.test(i.args)), 'the build stage runs npm run build')
    const copiesFromBuild = runtime.instructions.filter((i) => i.keyword === 'COPY' && i.args.includes(`--from=${build.name}`))
    assert.ok(copiesFromBuild.some((i) => /\/app\/dist\b/.test(i.args)), 'the runtime copies dist/ from the build stage')
    assert.ok(runtime.instructions.some((i) => i.keyword === 'RUN' && /npm ci\b.*--omit=dev/.test(i.args)), 'the runtime installs production dependencies only')
  })

  test('every base image is the Node major of .nvmrc, pinned to it, and engines admits it', () => {
    const major = read('.nvmrc').trim()
    assert.match(major, /^\d+$/)
    const engines = (JSON.parse(read('package.json')) as { engines: { node: string } }).engines.node
    const lowest = /^>=(\d+)\.\d+$/.exec(engines)
    assert.ok(lowest !== null, `engines.node ${engines} is ">=major.minor"`)
    assert.ok(Number(lowest[1]) <= Number(major), `${engines} admits Node ${major}`)
    for (const stage of stages) assert.match(stage.from, new RegExp(`^node:${major}-`), stage.from)
  })

  test('the build stage copies every folder the build compiles', () => {
    const tsconfigBuild = JSON.parse(read('tsconfig.build.json')) as { include: string[] }
    const folders = new Set(tsconfigBuild.include.map((pattern) => pattern.split('/')[0]!))
    const copied = build!.instructions.filter((i) => i.keyword === 'COPY' && !i.args.includes('--from')).flatMap((i) => i.args.split(/\s+/).slice(0, -1))
    for (const folder of folders) assert.ok(copied.includes(folder), `COPY ${folder} (in tsconfig.build.json)`)
    for (const source of copied) assert.ok(existsSync(`${ROOT}${source}`), `COPY source ${source} exists`)
  })

  test('runs in production mode as a non-root user', () => {
    assert.equal(envOf(runtime).get('NODE_ENV'), 'production')
    const users = runtime.instructions.filter((i) => i.keyword === 'USER')
    assert.ok(users.length > 0, 'USER in the runtime stage')
    const user = users.at(-1)!.args
    assert.ok(!['root', '0', '0:0'].includes(user), `USER ${user}`)
    for (const name of envOf(runtime).keys()) assert.ok(KNOWN_SETTINGS.has(name), `ENV ${name} is a setting of ConfigSchema`)
  })

  test('HEALTHCHECK asks /healthz on the configured port', () => {
    const healthchecks = runtime.instructions.filter((i) => i.keyword === 'HEALTHCHECK')
    assert.equal(healthchecks.length, 1)
    const args = healthchecks[0]!.args
    assert.match(args, /--interval=\d+s/)
    assert.match(args, /--timeout=\d+s/)
    const command = jsonArgs(args.slice(args.indexOf('CMD') + 3).trim())
    assert.equal(command[0], 'node', 'no curl or wget in the slim image: node does the check')
    assert.match(command.join(' '), /\/healthz/)
    assert.match(command.join(' '), /process\.env\.PORT/)
  })

  test('the HEALTHCHECK command succeeds against a running service and fails when it is down', { timeout: 60_000 }, async () => {
    const args = runtime.instructions.find((i) => i.keyword === 'HEALTHCHECK')!.args
    const command = jsonArgs(args.slice(args.indexOf('CMD') + 3).trim())
    await checkAgainstService(() => command)
  })

  test('EXPOSE and CMD: the port of the ENV, and node dist/src/server.js', () => {
    const env = envOf(runtime)
    const expose = runtime.instructions.find((i) => i.keyword === 'EXPOSE')
    assert.equal(expose?.args, env.get('PORT'))
    assert.equal(env.get('HOST'), '0.0.0.0', 'listens beyond the container\'s loopback')
    const cmd = runtime.instructions.filter((i) => i.keyword === 'CMD').at(-1)
    assert.deepEqual(jsonArgs(cmd!.args), ['node', 'dist/src/server.js'], 'exec form, so SIGTERM reaches node')
    const buildConfig = JSON.parse(read('tsconfig.json')) as { compilerOptions: { outDir: string } }
    assert.equal(buildConfig.compilerOptions.outDir, 'dist')
    assert.ok(existsSync(`${ROOT}src/server.ts`), 'dist/src/server.js is compiled from src/server.ts')
  })

  test('everything the image runs imports only production dependencies (npm ci --omit=dev)', () => {
    const { dependencies } = JSON.parse(read('package.json')) as { dependencies: Record<string, string> }
    const sources = ['src', 'plugins', 'routes'].flatMap((folder) => readdirSync(`${ROOT}${folder}`, { recursive: true, encoding: 'utf8' })
      .filter((file) => file.endsWith('.ts')).map((file) => `${folder}/${file}`))
    assert.ok(sources.includes('src/server.ts') && sources.includes('src/cli.ts'))
    const missing = new Set<string>()
    for (const source of sources) {
      // Type-only imports are erased by the compiler; everything else is loaded at run time.
      for (const [, typeOnly, specifier] of read(source).matchAll(/^\s*(?:import|export)\s+(type\s+)?(?:[^;'"]*?\sfrom\s+)?'([^']+)'/gm)) {
        if (typeOnly !== undefined || specifier!.startsWith('.') || specifier!.startsWith('node:')) continue
        const name = specifier!.startsWith('@') ? specifier!.split('/').slice(0, 2).join('/') : specifier!.split('/')[0]!
        if (!(name in dependencies)) missing.add(`${name} (${source})`)
      }
      for (const [, specifier] of read(source).matchAll(/\bimport\('([^.'][^']*)'\)/g)) {
        if (!specifier!.startsWith('node:') && !(specifier! in dependencies)) missing.add(`${specifier} (${source})`)
      }
    }
    assert.deepEqual([...missing], [], 'imported at run time but not in dependencies')
    // pino loads its transport by name: pino-pretty (a dev dependency) only where it resolves.
    assert.match(read('src/pretty-logs.ts'), /isInstalled\('pino-pretty'\)/)
  })

  test('.dockerignore keeps local state and secrets out of the build context', () => {
    const ignored = read('.dockerignore').split('\n').map((line) => line.trim())
    for (const entry of ['node_modules', 'dist', '.dev', '.git']) assert.ok(ignored.includes(entry), entry)
  })
})

describe('docker-compose.yml', () => {
  const service = compose.services['sso-attrs']
  const redis = compose.services.redis

  test('runs the service, built from the Dockerfile, and Redis', () => {
    assert.ok(service !== undefined, 'service sso-attrs')
    assert.ok(service.build !== undefined, 'sso-attrs is built here')
    assert.ok(redis !== undefined, 'service redis')
    assert.match(redis.image ?? '', /^redis:7/, 'Redis 7 (the version the tests run)')
  })

  test('the service waits for a healthy Redis and points REDIS_URL at it', () => {
    assert.deepEqual(service!.depends_on, { redis: { condition: 'service_healthy' } })
    assert.ok(redis!.healthcheck?.test !== undefined, 'redis has a healthcheck')
    assert.match(composeEnv(service!).REDIS_URL ?? '', /^redis:\/\/redis:6379/)
  })

  test('publishes the port the service listens on', () => {
    const env = composeEnv(service!)
    const ports = (service!.ports ?? []).map(String)
    assert.ok(ports.some((port) => port.endsWith(`:${env.PORT}`)), `ports ${ports.join(', ')} include the container port ${env.PORT}`)
  })

  test('has a healthcheck on /healthz at that port', () => {
    const check = service!.healthcheck
    assert.ok(Array.isArray(check?.test), 'exec-form healthcheck')
    assert.equal(check.test[0], 'CMD')
    assert.match(check.test.join(' '), new RegExp(`127\\.0\\.0\\.1:${composeEnv(service!).PORT}/healthz`))
  })

  test('the healthcheck command succeeds against a running service and fails when it is down', { timeout: 60_000 }, async () => {
    const [kind, ...command] = service!.healthcheck!.test as string[]
    assert.equal(kind, 'CMD')
    const port = composeEnv(service!).PORT!
    // The compose check names the container port; here the service listens on a free one.
    await checkAgainstService((actual) => command.map((part) => part.replaceAll(`:${port}/`, `:${actual}/`)))
  })

  test('every environment variable it sets is a setting of ConfigSchema', () => {
    const names = Object.keys(composeEnv(service!))
    assert.ok(names.length > 0)
    const unknown = names.filter((name) => !KNOWN_SETTINGS.has(name))
    assert.deepEqual(unknown, [], 'names the service would ignore')
  })

  test('is a valid production configuration once the required values are filled in', () => {
    const env = composeEnv(service!)
    assert.equal(env.NODE_ENV, 'production')
    const required = Object.entries(env).filter(([, value]) => /^\$\{\w+:\?/.test(value)).map(([name]) => name)
    assert.deepEqual(required.sort(), ['SSO_APPS', 'SSO_ENCRYPTION_KEYS', 'SSO_ISSUER', 'SSO_JWKS_URL'], 'compose refuses to start without these')
    const filled: Record<string, string> = {
      ...env,
      SSO_ISSUER: 'https://idp.example.com/realms/main',
      SSO_JWKS_URL: 'https://idp.example.com/realms/main/protocol/openid-connect/certs',
      SSO_APPS: 'CRM,Portal',
      SSO_ENCRYPTION_KEYS: `k1:${Buffer.alloc(32, 7).toString('base64url')}`
    }
    assert.doesNotThrow(() => loadConfig(filled))
  })

  test('the service reads .env, which stays out of git and of the build context', () => {
    assert.equal(service!.env_file, '.env')
    const lines = (file: string) => read(file).split('\n').map((line) => line.trim())
    assert.ok(lines('.gitignore').includes('.env'), '.env in .gitignore')
    assert.ok(lines('.dockerignore').includes('.env'), '.env in .dockerignore')
  })

  test('.env.example names every variable compose interpolates, and leaves the required ones empty', () => {
    assert.deepEqual(interpolated.filter((v) => v.required).map((v) => v.name).sort(), ['SSO_APPS', 'SSO_ENCRYPTION_KEYS', 'SSO_ISSUER', 'SSO_JWKS_URL'])
    for (const { name, required, fallback } of interpolated) {
      assert.ok(name in envExample, `${name} is in .env.example`)
      // Copied unchanged, it must not start: no shared encryption key, no guessed issuer.
      if (required) assert.equal(envExample[name], '', `${name} is left empty`)
      else assert.equal(envExample[name], fallback, `${name} shows the compose default`)
    }
    assert.throws(() => interpolate(composeText, envExample), /compose refuses to start: set SSO_ISSUER/)
  })

  test('.env.example holds settings of the service and variables of compose only, so check-config warns about none', () => {
    const commented = [...read('.env.example').matchAll(/^# ?([A-Z][A-Z0-9_]*)=(.*)$/gm)].map(([, name, value]) => [name!, value!] as const)
    assert.ok(commented.length > 0, 'optional settings shown as examples')
    const composeOnly = new Set(interpolated.filter((v) => !KNOWN_SETTINGS.has(v.name)).map((v) => v.name))
    for (const name of [...Object.keys(envExample), ...commented.map(([n]) => n)]) {
      assert.ok(KNOWN_SETTINGS.has(name) || composeOnly.has(name), `${name} is a setting of ConfigSchema or a variable of docker-compose.yml`)
      if (!KNOWN_SETTINGS.has(name)) assert.doesNotMatch(name, /^(SSO|REDIS)_/, `${name}: check-config would warn that it is not a setting`)
    }
    // Filled in, with the optional examples turned on, it is what the container gets: valid.
    const filled = {
      ...envExample,
      ...Object.fromEntries(commented),
      SSO_ISSUER: 'https://idp.example.com/realms/main',
      SSO_JWKS_URL: 'https://idp.example.com/realms/main/protocol/openid-connect/certs',
      SSO_APPS: 'CRM,Portal',
      SSO_ENCRYPTION_KEYS: `k1:${Buffer.alloc(32, 7).toString('base64url')}`
    }
    const resolved = parse(interpolate(composeText, filled)) as { services: Record<string, ComposeService> }
    assert.doesNotThrow(() => loadConfig({ ...filled, ...composeEnv(resolved.services['sso-attrs']!) }))
  })

  test('Redis runs as docs/SCALING.md recommends: maxmemory with noeviction, append-only file every second, on a volume', () => {
    assert.match(read('docs/SCALING.md'), /`maxmemory` with `maxmemory-policy noeviction`/)
    assert.match(read('docs/SCALING.md'), /AOF `everysec`/)
    const options = redisOptions(composeText, envExample)
    assert.equal(options.get('maxmemory-policy'), 'noeviction')
    assert.equal(options.get('appendonly'), 'yes')
    assert.equal(options.get('appendfsync'), 'everysec')
    assert.match(options.get('maxmemory') ?? '', /^\d+(?:[kmg]b?)?$/i, 'maxmemory is a size')
    assert.ok(redis!.volumes?.includes('redis-data:/data'), 'the append-only file (in /data, the image\'s working directory) is on a named volume')
    assert.equal(redis!.ports, undefined, 'Redis is reachable from the compose network only')
  })

  test('a real redis-server takes that command line: the settings hold, the append-only file is written, a full Redis refuses writes and evicts nothing', { timeout: 30_000 }, async (t) => {
    const args = redisCommandLine(composeText, envExample)
    assert.equal(args[0], 'redis-server')
    const dir = mkdtempSync(join(tmpdir(), 'sso-attrs-compose-redis-'))
    const port = await freePort()
    // The fixture's own options (port, dir, no persistence) come first: the compose ones win.
    const child = await spawnRedis(port, dir, args.slice(1))
    const client = new Redis(port, '127.0.0.1', { maxRetriesPerRequest: 0 })
    t.after(async () => {
      client.disconnect()
      await killProcess(child)
      rmSync(dir, { recursive: true, force: true })
    })
    const config = async (name: string) => (await client.config('GET', name) as string[])[1]
    assert.equal(await config('maxmemory-policy'), 'noeviction')
    assert.equal(await config('appendonly'), 'yes')
    assert.equal(await config('appendfsync'), 'everysec')
    assert.equal(Number(await config('maxmemory')), 256 * 1024 * 1024, 'the 256mb of .env.example')

    await client.set('kept', 'x')
    assert.ok(readdirSync(join(dir, 'appendonlydir')).some((file) => file.endsWith('.aof')), 'an append-only file in the data dir')

    // Full: the limit just above what Redis holds now, then writes of 1 KiB until one is refused.
    const used = Number(/used_memory:(\d+)/.exec(await client.info('memory'))![1])
    await client.config('SET', 'maxmemory', String(used + 64 * 1024))
    let written = 0
    let refusal: Error | undefined
    for (; written < 1000 && refusal === undefined; written++) {
      await client.set(`k${written}`, 'v'.repeat(1024)).catch((error: Error) => { refusal = error })
    }
    assert.match(String(refusal), /OOM/, 'a write is refused once Redis is full')
    const stored = written - 1
    assert.ok(stored > 0, 'some writes fitted')
    assert.equal(await client.exists('kept', ...Array.from({ length: stored }, (_, i) => `k${i}`)), stored + 1, 'nothing was evicted')

    // The service on that full Redis: the 507 envelope, and nothing stored.
    const app = await buildService(undefined, { SSO_STORE: 'redis', REDIS_URL: `redis://127.0.0.1:${port}`, REDIS_COMMAND_TIMEOUT_MS: 500, REDIS_CONNECT_TIMEOUT_MS: 500 })
    try {
      const put = await app.inject({ method: 'PUT', url: '/sso/session/attr', headers: { authorization: `Bearer ${await mintUst()}` }, payload: { current_app: 'CRM', name: 'n', value: 'v' } })
      assert.equal(put.statusCode, 507, put.body)
      const body = put.json<{ status: string, sub_status: string[] }>()
      assert.deepEqual([body.status, body.sub_status], ['error', ['E011007']])
      assert.equal(await client.dbsize(), stored + 1, 'the service stored nothing')
    } finally {
      await app.close()
    }
  })
})

/** The redis service's command line, interpolated from `vars`. */
function redisCommandLine (text: string, vars: Record<string, string | undefined>): string[] {
  const filled = { ...vars, SSO_ISSUER: 'x', SSO_JWKS_URL: 'x', SSO_APPS: 'x', SSO_ENCRYPTION_KEYS: 'x' }
  const command = (parse(interpolate(text, filled)) as { services: Record<string, ComposeService> }).services.redis!.command
  assert.ok(Array.isArray(command), 'exec-form command: each option and value its own item')
  return command.map(String)
}

/** `--name value` pairs of the redis service's command line. */
function redisOptions (text: string, vars: Record<string, string | undefined>): Map<string, string> {
  const args = redisCommandLine(text, vars).slice(1)
  const options = new Map<string, string>()
  for (let i = 0; i < args.length; i += 2) {
    assert.match(args[i]!, /^--[a-z-]+$/, `option at ${i}`)
    options.set(args[i]!.slice(2), args[i + 1]!)
  }
  return options
}

describe('health probes and the log', () => {
  /** The app at LOG_LEVEL=info writing its log lines to an array. */
  async function loggedApp (t: Parameters<typeof buildService>[0], overrides: Parameters<typeof testConfig>[0] = {}) {
    const lines: Array<{ level: number, msg?: string, req?: { url?: string } }> = []
    const stream = new Writable({
      write (chunk: Buffer | string, _encoding, callback) {
        for (const line of chunk.toString().split('\n')) if (line !== '') lines.push(JSON.parse(line) as typeof lines[number])
        callback()
      }
    })
    const config = testConfig({ LOG_LEVEL: 'info', ...overrides })
    const app = await buildService(t, { LOG_LEVEL: 'info', ...overrides }, { logger: { ...loggerOptions(config), stream } })
    return { app, lines }
  }

  test('/healthz and /readyz log nothing while healthy (the compose and Dockerfile checks run every 10 s); other requests still log at info', async (t) => {
    const { app, lines } = await loggedApp(t)
    const atStart = lines.length // the start-up notices
    for (let i = 0; i < 3; i++) {
      assert.equal((await app.inject({ method: 'GET', url: '/healthz' })).statusCode, 200)
      assert.equal((await app.inject({ method: 'GET', url: '/readyz' })).statusCode, 200)
    }
    assert.deepEqual(lines.slice(atStart), [], 'no log line for six probes')
    assert.equal((await app.inject({ method: 'GET', url: '/nowhere' })).statusCode, 404)
    assert.ok(lines.slice(atStart).some((line) => line.level === 30 && line.req?.url === '/nowhere'), 'an ordinary request logs at info')
  })

  test('a failing /readyz still logs its error', { timeout: 30_000 }, async (t) => {
    const redis = await RedisServer.start()
    t.after(async () => { await redis.close() })
    const { app, lines } = await loggedApp(t, { SSO_STORE: 'redis', REDIS_URL: redis.url, REDIS_COMMAND_TIMEOUT_MS: 200, REDIS_CONNECT_TIMEOUT_MS: 200 })
    const atStart = lines.length
    assert.equal((await app.inject({ method: 'GET', url: '/readyz' })).statusCode, 200)
    assert.deepEqual(lines.slice(atStart), [], 'silent while ready')
    await redis.stop()
    assert.equal((await app.inject({ method: 'GET', url: '/readyz' })).statusCode, 503)
    assert.ok(lines.slice(atStart).some((line) => line.level >= 50), 'the 503 is logged at error level')
  })
})
