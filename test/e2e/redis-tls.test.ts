import assert from 'node:assert/strict'
import { execFileSync, spawn, type ChildProcess } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, test, type TestContext } from 'node:test'
import { setTimeout as sleep } from 'node:timers/promises'
import { fileURLToPath } from 'node:url'
import { Redis } from 'ioredis'
import { freePort, killProcess, spawnRedis, waitUntilHealthy } from '../fixtures/redis.ts'
import { mintUst, RUN_TYPESCRIPT, serverProcessEnv } from '../helper.ts'
import { assertError, assertOk, call } from './http.ts'

// The real entry point against a redis-server that speaks TLS only (`rediss://`), with a
// private CA given the documented way (NODE_EXTRA_CA_CERTS, read when Node starts: hence a
// process of its own). Without that CA the certificate must be refused, not ignored.

const ROOT = fileURLToPath(new URL('../../', import.meta.url))

function hasOpenssl (): boolean {
  try {
    execFileSync('openssl', ['version'], { stdio: 'ignore' })
    return true
  } catch {
    return false
  }
}

const missing = !hasOpenssl()
const skip = missing && process.env.CI !== 'true' ? 'openssl is missing (apt-get install -y openssl) to make the test certificate' : false

let dir: string
let redisPort: number
let redisProcess: ChildProcess | undefined
let caFile: string
let keyFile: string
/** Why the TLS server could not start outside CI (a redis-server built without TLS), if it did not. */
let unavailable: string | undefined

before(async () => {
  if (skip !== false) return
  dir = mkdtempSync(join(tmpdir(), 'sso-attrs-tls-'))
  caFile = join(dir, 'cert.pem')
  keyFile = join(dir, 'key.pem')
  // A self-signed certificate for 127.0.0.1 that is its own CA.
  execFileSync('openssl', [
    'req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', keyFile, '-out', caFile, '-days', '1',
    '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1'
  ], { stdio: 'ignore' })
  redisPort = await freePort()
  // spawnRedis waits for PING on its plain port; the TLS port is the one the service gets.
  const plainPort = await freePort()
  try {
    redisProcess = await spawnRedis(plainPort, dir, ['--tls-port', String(redisPort), ...tlsServerArgs()])
  } catch (error) {
    if (process.env.CI === 'true') throw error
    unavailable = `redis-server does not start with TLS (built without it?): ${(error as Error).message}`
  }
})

after(async () => {
  await killProcess(redisProcess)
  if (dir !== undefined) rmSync(dir, { recursive: true, force: true })
})

function tlsServerArgs (): string[] {
  return ['--tls-cert-file', caFile, '--tls-key-file', keyFile, '--tls-ca-cert-file', caFile, '--tls-auth-clients', 'no']
}

function tlsClient (port: number): Redis {
  const client = new Redis({ host: '127.0.0.1', port, tls: { ca: readFileSync(caFile) }, maxRetriesPerRequest: 1, retryStrategy: () => null })
  client.on('error', () => {})
  return client
}

/** For waitUntilHealthy: one question to a TLS node, '' once `healthy` holds for its answer. */
function nodeProblem<T> (port: number, ask: (client: Redis) => Promise<T>, healthy: (answer: T) => boolean): () => Promise<string> {
  return async () => {
    // A client per try: one that found no server gives up (retryStrategy: null).
    const client = tlsClient(port)
    try {
      const answer = await ask(client)
      return healthy(answer) ? '' : `answered ${JSON.stringify(answer)}`
    } catch (error) {
      return (error as Error).message
    } finally {
      client.disconnect()
    }
  }
}

/** Three cluster masters that speak TLS only, the cluster bus included; their ports. */
async function startTlsCluster (t: TestContext): Promise<number[]> {
  const ports = new Set<number>()
  while (ports.size < 6) ports.add(await freePort())
  const [clientPorts, busPorts] = [[...ports].slice(0, 3), [...ports].slice(3)]
  const processes = clientPorts.map((port, index) => {
    const nodeDir = join(dir, `cluster-${index}`)
    mkdirSync(nodeDir)
    return spawn('redis-server', [
      '--port', '0', '--tls-port', String(port), ...tlsServerArgs(), '--tls-cluster', 'yes',
      '--cluster-enabled', 'yes', '--cluster-config-file', 'nodes.conf', '--cluster-port', String(busPorts[index]),
      '--bind', '127.0.0.1', '--dir', nodeDir, '--save', '', '--appendonly', 'no'
    ], { stdio: 'ignore' })
  })
  t.after(async () => { await Promise.all(processes.map(async (child) => await killProcess(child))) })
  for (const port of clientPorts) {
    await waitUntilHealthy(`TLS node ${port}`, nodeProblem(port, async (client) => await client.ping(), (answer) => answer === 'PONG'), 20_000)
  }
  execFileSync('redis-cli', ['--tls', '--cacert', caFile, '--cluster', 'create', ...clientPorts.map((port) => `127.0.0.1:${port}`), '--cluster-yes'], { stdio: 'ignore', timeout: 30_000 })
  for (const port of clientPorts) {
    const clusterOk = (info: unknown) => /^cluster_state:ok/m.test(String(info))
    await waitUntilHealthy(`TLS cluster node ${port}`, nodeProblem(port, async (client) => await client.cluster('INFO'), clusterOk), 20_000)
  }
  return clientPorts
}

/** A primary and one Sentinel watching it (quorum 1), both TLS only, replication included; their ports. */
async function startTlsSentinel (t: TestContext, name: string): Promise<{ primary: number, sentinel: number }> {
  const [primary, sentinel] = [await freePort(), await freePort()]
  const primaryDir = join(dir, 'sentinel-primary')
  const sentinelDir = join(dir, 'sentinel')
  mkdirSync(primaryDir)
  mkdirSync(sentinelDir)
  const configFile = join(sentinelDir, 'sentinel.conf')
  writeFileSync(configFile, `sentinel monitor ${name} 127.0.0.1 ${primary} 1\n`)
  const tlsArgs = [...tlsServerArgs(), '--tls-replication', 'yes', '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no']
  const processes = [
    spawn('redis-server', ['--port', '0', '--tls-port', String(primary), '--dir', primaryDir, ...tlsArgs], { stdio: 'ignore' }),
    spawn('redis-server', [configFile, '--sentinel', '--port', '0', '--tls-port', String(sentinel), '--dir', sentinelDir, ...tlsArgs], { stdio: 'ignore' })
  ]
  t.after(async () => { await Promise.all(processes.map(async (child) => await killProcess(child))) })
  const primaryOf = async (client: Redis) => await client.call('SENTINEL', 'GET-MASTER-ADDR-BY-NAME', name) as string[] | null
  await waitUntilHealthy(`TLS Sentinel ${sentinel}`, nodeProblem(sentinel, primaryOf, (address) => address?.[1] === String(primary)), 20_000)
  return { primary, sentinel }
}

interface Service { base: string, output: () => string }

async function startService (t: TestContext, env: Record<string, string>): Promise<Service> {
  const port = await freePort()
  const child = spawn(process.execPath, [...RUN_TYPESCRIPT, 'src/server.ts'], {
    cwd: ROOT,
    stdio: ['ignore', 'pipe', 'pipe'],
    env: serverProcessEnv(port, {
      LOG_LEVEL: 'warn',
      SSO_STORE: 'redis',
      REDIS_COMMAND_TIMEOUT_MS: '1000',
      SSO_KEY_PREFIX: `tls-${randomBytes(4).toString('hex')}:`,
      ...env
    })
  })
  let output = ''
  child.stdout.on('data', (chunk: Buffer) => { output += chunk.toString() })
  child.stderr.on('data', (chunk: Buffer) => { output += chunk.toString() })
  t.after(async () => await killProcess(child))
  const base = `http://127.0.0.1:${port}`
  const started = performance.now()
  for (;;) {
    assert.equal(child.exitCode, null, `the server exited during start-up: ${output}`)
    assert.ok(performance.now() - started < 20_000, `the server did not answer /healthz within 20 s: ${output}`)
    const live = await fetch(`${base}/healthz`, { signal: AbortSignal.timeout(2000) }).then((response) => response.status, () => 0)
    if (live === 200) break
    await sleep(100)
  }
  return { base, output: () => output }
}

async function readyStatus (base: string): Promise<number> {
  return await fetch(`${base}/readyz`, { signal: AbortSignal.timeout(3000) }).then((response) => response.status, () => 0)
}

async function waitReady (service: Service): Promise<void> {
  await waitUntilHealthy('the service over TLS', async () => {
    const status = await readyStatus(service.base)
    return status === 200 ? '' : `/readyz answered ${status}; its output: ${service.output()}`
  }, 20_000)
}

describe('Redis over TLS (rediss://)', { skip }, () => {
  test('with the private CA in NODE_EXTRA_CA_CERTS: ready, and attributes are stored on the TLS server', { timeout: 60_000 }, async (t) => {
    if (unavailable !== undefined) return t.skip(unavailable)
    const service = await startService(t, { REDIS_URL: `rediss://127.0.0.1:${redisPort}`, NODE_EXTRA_CA_CERTS: caFile })
    await waitReady(service)
    const ust = await mintUst()
    assertOk(await call(service.base, 'PUT', '/sso/session/attr', { ust, body: { current_app: 'CRM', name: 'theme', value: 'dark', encrypt: true } }), 'PUT over TLS')
    const got = assertOk(await call(service.base, 'GET', '/sso/session/attr?current_app=CRM&name=theme', { ust }), 'GET over TLS')
    assert.equal(got.value, 'dark')

    // The attribute is on that server, read back through a TLS client of our own.
    const inspector = tlsClient(redisPort)
    t.after(() => inspector.disconnect())
    const [, keys] = await inspector.scan('0', 'MATCH', '*:a', 'COUNT', 1000)
    const fields = await Promise.all(keys.map(async (key) => await inspector.hkeys(key)))
    assert.ok(fields.some((names) => names.includes('theme')), `no attributes hash holds "theme" (keys: ${keys.join(', ')})`)
  })

  test('without the CA the certificate is refused: not ready, and requests get a 503 envelope', { timeout: 60_000 }, async (t) => {
    if (unavailable !== undefined) return t.skip(unavailable)
    const service = await startService(t, { REDIS_URL: `rediss://127.0.0.1:${redisPort}` })
    // Give the client time to try (and fail) the handshake several times.
    await sleep(1500)
    assert.equal(await readyStatus(service.base), 503)
    const ust = await mintUst()
    const reply = await call(service.base, 'PUT', '/sso/session/attr', { ust, body: { current_app: 'CRM', name: 'theme', value: 'dark' } })
    assertError(reply, 503, 'E011003')
    assert.doesNotMatch(service.output(), new RegExp(ust.slice(-20)), 'the token does not reach the logs')
  })
})

describe('Redis Cluster over TLS (REDIS_TLS=true)', { skip }, () => {
  test('three TLS-only masters: ready with the CA, sessions spread over them; refused without it', { timeout: 120_000 }, async (t) => {
    if (unavailable !== undefined) return t.skip(unavailable)
    const ports = await startTlsCluster(t)
    const redisEnv = { REDIS_CLUSTER_NODES: ports.map((port) => `127.0.0.1:${port}`).join(','), REDIS_TLS: 'true' }
    const service = await startService(t, { ...redisEnv, NODE_EXTRA_CA_CERTS: caFile })
    await waitReady(service)
    const sessions = await Promise.all(Array.from({ length: 12 }, async () => await mintUst()))
    for (const [index, ust] of sessions.entries()) {
      assertOk(await call(service.base, 'PUT', '/sso/session/attr', { ust, body: { current_app: 'CRM', name: 'n', value: index } }), `PUT ${index}`)
    }
    for (const [index, ust] of sessions.entries()) {
      assert.equal(assertOk(await call(service.base, 'GET', '/sso/session/attr?current_app=CRM&name=n', { ust }), `GET ${index}`).value, index)
    }
    // Twelve sessions in random slots: all on one master would happen once in 177,000 runs.
    const keysPerMaster = await Promise.all(ports.map(async (port) => {
      const client = tlsClient(port)
      try { return await client.dbsize() } finally { client.disconnect() }
    }))
    assert.ok(keysPerMaster.filter((keys) => keys > 0).length >= 2, `keys per master: ${keysPerMaster.join(', ')}`)

    const untrusting = await startService(t, redisEnv)
    await sleep(1500)
    assert.equal(await readyStatus(untrusting.base), 503)
    assertError(await call(untrusting.base, 'GET', '/sso/session/attr?current_app=CRM&name=n', { ust: sessions[0]! }), 503, 'E011003')
  })
})

describe('Redis Sentinel over TLS (REDIS_TLS=true)', { skip }, () => {
  test('a TLS-only Sentinel and primary: ready with the CA, attributes on the primary; refused without it', { timeout: 90_000 }, async (t) => {
    if (unavailable !== undefined) return t.skip(unavailable)
    const { primary, sentinel } = await startTlsSentinel(t, 'attrs')
    const redisEnv = { REDIS_SENTINELS: `127.0.0.1:${sentinel}`, REDIS_SENTINEL_NAME: 'attrs', REDIS_TLS: 'true' }
    const service = await startService(t, { ...redisEnv, NODE_EXTRA_CA_CERTS: caFile })
    await waitReady(service)
    const ust = await mintUst()
    assertOk(await call(service.base, 'PUT', '/sso/session/attr', { ust, body: { current_app: 'CRM', name: 'theme', value: 'dark' } }), 'PUT')
    assert.equal(assertOk(await call(service.base, 'GET', '/sso/session/attr?current_app=CRM&name=theme', { ust }), 'GET').value, 'dark')
    const client = tlsClient(primary)
    t.after(() => client.disconnect())
    assert.ok(await client.dbsize() > 0, 'the attribute is on the primary the Sentinel names')

    const untrusting = await startService(t, redisEnv)
    await sleep(1500)
    assert.equal(await readyStatus(untrusting.base), 503)
    assertError(await call(untrusting.base, 'GET', '/sso/session/attr?current_app=CRM&name=theme', { ust }), 503, 'E011003')
  })
})
