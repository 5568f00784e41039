import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { Agent, request as httpRequest } from 'node:http'
import { connect } from 'node:net'
import { test, type TestContext } from 'node:test'
import { setTimeout as sleep } from 'node:timers/promises'
import { fileURLToPath } from 'node:url'
import { freePort, RedisServer } from '../fixtures/redis.ts'
import { mintUst, RUN_TYPESCRIPT, serverProcessEnv } from '../helper.ts'
import { assertOk, call, type Envelope, type Reply } from './http.ts'

// The real entry point (src/server.ts) in its own process: SIGTERM lets the requests in
// flight finish, stops accepting connections, closes Redis and exits 0.

const ROOT = fileURLToPath(new URL('../../', import.meta.url))

/** src/server.ts as a child process on `port`, once it answers /readyz; killed when the test ends. */
async function startServer (t: TestContext, port: number, settings: Record<string, string>) {
  const child = spawn(process.execPath, [...RUN_TYPESCRIPT, 'src/server.ts'], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'], env: serverProcessEnv(port, settings) })
  let output = ''
  child.stdout.on('data', (chunk: Buffer) => { output += chunk.toString() })
  child.stderr.on('data', (chunk: Buffer) => { output += chunk.toString() })
  const exited = new Promise<{ code: number | null, signal: NodeJS.Signals | null }>((resolve) => {
    child.once('exit', (code, signal) => resolve({ code, signal }))
  })
  t.after(() => { if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL') })
  const base = `http://127.0.0.1:${port}`
  const bootStarted = performance.now()
  for (;;) {
    assert.equal(child.exitCode, null, `the server exited during start-up: ${output}`)
    assert.ok(performance.now() - bootStarted < 20_000, `the server did not answer /readyz within 20 s: ${output}`)
    const ready = await fetch(`${base}/readyz`, { signal: AbortSignal.timeout(2000) }).then((response) => response.status, () => 0)
    if (ready === 200) break
    await sleep(100)
  }
  return { child, base, exited, bootMs: performance.now() - bootStarted, output: () => output }
}
const IN_FLIGHT = 50
const EXIT_BOUND_MS = 10_000

interface SlowRequest {
  /** Resolves once the headers and half of the body are on the wire. */
  started: Promise<void>
  finish: () => void
  reply: Promise<Reply>
}

/** A PUT whose body arrives in two halves, so that it stays in flight until `finish()`. */
function slowPut (port: number, ust: string, name: string, agent: Agent | false = false): SlowRequest {
  const body = Buffer.from(JSON.stringify({ current_app: 'CRM', name, value: { name, padding: 'p'.repeat(64) } }))
  const half = Math.floor(body.length / 2)
  const sentAt = performance.now()
  let finish = () => {}
  let markStarted = () => {}
  const started = new Promise<void>((resolve) => { markStarted = resolve })
  // Never rejects: a connection error is an answer with status 0, checked with the others.
  const reply = new Promise<Reply>((resolve) => {
    const req = httpRequest({
      host: '127.0.0.1',
      port,
      method: 'PUT',
      path: '/sso/session/attr',
      agent,
      headers: { authorization: `Bearer ${ust}`, 'content-type': 'application/json', 'content-length': body.length }
    }, (res) => {
      const chunks: Buffer[] = []
      res.on('data', (chunk: Buffer) => chunks.push(chunk))
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8')
        let parsed: Envelope | undefined
        try { parsed = JSON.parse(text) as Envelope } catch {}
        resolve({ status: res.statusCode ?? 0, headers: res.headers, text, body: parsed, ms: performance.now() - sentAt })
      })
    })
    req.on('error', (error: NodeJS.ErrnoException) => {
      markStarted()
      resolve({ status: 0, headers: {}, text: `connection error: ${error.code ?? error.message}`, body: undefined, ms: performance.now() - sentAt })
    })
    req.write(body.subarray(0, half), () => markStarted())
    finish = () => req.end(body.subarray(half))
  })
  return { started, finish: () => finish(), reply }
}

/** A GET through `agent`, resolved with whatever comes back (status 0 for a connection error). */
async function get (port: number, path: string, agent: Agent): Promise<Reply> {
  const sentAt = performance.now()
  return await new Promise((resolve) => {
    const req = httpRequest({ host: '127.0.0.1', port, path, agent }, (res) => {
      const chunks: Buffer[] = []
      res.on('data', (chunk: Buffer) => chunks.push(chunk))
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8')
        let parsed: Envelope | undefined
        try { parsed = JSON.parse(text) as Envelope } catch {}
        resolve({ status: res.statusCode ?? 0, headers: res.headers, text, body: parsed, ms: performance.now() - sentAt })
      })
    })
    req.on('error', (error: NodeJS.ErrnoException) => {
      resolve({ status: 0, headers: {}, text: `connection error: ${error.code ?? error.message}`, body: undefined, ms: performance.now() - sentAt })
    })
    req.end()
  })
}

/** Whether a TCP connection to the port is refused. */
async function refused (port: number): Promise<boolean> {
  return await new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1')
    socket.once('connect', () => { socket.destroy(); resolve(false) })
    socket.once('error', (error: NodeJS.ErrnoException) => resolve(error.code === 'ECONNREFUSED'))
  })
}

test('SIGTERM drains 50 in-flight requests, refuses new connections and exits 0', { timeout: 60_000 }, async (t) => {
  const redis = await RedisServer.start()
  t.after(() => redis.close())
  const port = await freePort()
  const prefix = `e2e-shutdown-${randomBytes(4).toString('hex')}:`
  const server = await startServer(t, port, {
    LOG_LEVEL: 'silent',
    SSO_STORE: 'redis',
    REDIS_URL: redis.url,
    REDIS_COMMAND_TIMEOUT_MS: '500',
    SSO_KEY_PREFIX: prefix
  })
  const { child, base, exited, bootMs } = server
  const ust = await mintUst()
  assertOk(await call(base, 'GET', '/sso/session/attr?current_app=CRM&name=none', { ust }), 'a GET before the shutdown')

  const requests = Array.from({ length: IN_FLIGHT }, (_, index) => slowPut(port, ust, `n${String(index).padStart(2, '0')}`))
  await Promise.all(requests.map(async (request) => await request.started))
  await sleep(300) // the server has parsed every request's headers and waits for the rest of the bodies

  const signalledAt = performance.now()
  child.kill('SIGTERM')
  let refusedAfter: number | undefined
  while (performance.now() - signalledAt < 5000) {
    if (await refused(port)) {
      refusedAfter = performance.now() - signalledAt
      break
    }
    await sleep(20)
  }
  assert.ok(refusedAfter !== undefined, 'new connections are refused after SIGTERM')
  await sleep(500)
  assert.equal(child.exitCode, null, 'the process waits for the requests in flight')

  for (const request of requests) request.finish()
  const replies = await Promise.all(requests.map(async (request) => await request.reply))
  for (const [index, reply] of replies.entries()) {
    const body = assertOk(reply, `in-flight request ${index}`)
    assert.equal(body.version, 1)
  }

  const exit = await Promise.race([exited, sleep(EXIT_BOUND_MS, undefined, { ref: false }).then(() => undefined)])
  const exitMs = performance.now() - signalledAt
  assert.ok(exit !== undefined, `the process did not exit within ${EXIT_BOUND_MS} ms of SIGTERM: ${server.output()}`)
  assert.deepEqual(exit, { code: 0, signal: null }, server.output())
  assert.equal(await refused(port), true, 'nothing listens after the exit')

  // Every drained write reached Redis before the connection to it was closed.
  const inspect = redis.client()
  t.after(() => inspect.disconnect())
  const attributeKeys = await inspect.keys(`${prefix}*:a`)
  assert.equal(attributeKeys.length, 1, 'one session')
  assert.deepEqual((await inspect.hkeys(attributeKeys[0]!)).sort(), requests.map((_, index) => `n${String(index).padStart(2, '0')}`))
  const clients = await inspect.client('LIST') as string
  assert.equal(clients.trim().split('\n').length, 1, `the server closed its Redis connection:\n${clients}`)

  t.diagnostic(`start-up ${bootMs.toFixed(0)} ms; listening socket closed ${refusedAfter.toFixed(0)} ms after SIGTERM; ${IN_FLIGHT} in-flight requests answered 200; exit 0 ${exitMs.toFixed(0)} ms after SIGTERM`)
})

test('a request that arrives on a kept-alive connection during the drain gets the 503 envelope and Connection: close', { timeout: 60_000 }, async (t) => {
  const port = await freePort()
  const server = await startServer(t, port, { LOG_LEVEL: 'silent', SSO_STORE: 'memory' })
  const { child, exited } = server

  // One connection, kept alive: the second request waits for it and goes out on it after the first.
  const agent = new Agent({ keepAlive: true, maxSockets: 1 })
  t.after(() => agent.destroy())
  const ust = await mintUst()
  const inFlight = slowPut(port, ust, 'drained', agent)
  await inFlight.started
  await sleep(300)
  child.kill('SIGTERM')
  const signalledAt = performance.now()
  while (!await refused(port)) {
    assert.ok(performance.now() - signalledAt < 5000, 'new connections are refused after SIGTERM')
    await sleep(20)
  }
  const late = get(port, '/healthz', agent)
  inFlight.finish()
  assertOk(await inFlight.reply, 'the request in flight at SIGTERM')
  const reply = await late

  assert.equal(reply.status, 503, reply.text)
  assert.equal(reply.headers.connection, 'close')
  assert.equal(reply.headers['retry-after'], '1')
  assert.match(String(reply.headers['content-type']), /^application\/json/)
  assert.ok(reply.body !== undefined, `an envelope, not ${reply.text}`)
  assert.equal(reply.body.status, 'error')
  assert.deepEqual(reply.body.sub_status, ['E011003'])
  assert.match(reply.body.cid, /^[0-9a-f]{24}$/)
  assert.equal(reply.headers['x-cid'], reply.body.cid)

  const exit = await Promise.race([exited, sleep(EXIT_BOUND_MS, undefined, { ref: false }).then(() => undefined)])
  assert.deepEqual(exit, { code: 0, signal: null }, server.output())
})
