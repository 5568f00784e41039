// npm run soak -- --minutes N: a bounded soak of the real stack on loopback. Starts a
// redis-server (the test fixture) and the built service (node dist/src/server.js, production
// mode) with everything on (rate limiting, metrics scraped as Prometheus would, encryption,
// session and user attributes, writes with an Idempotency-Key and their repeats), drives a
// mixed workload over many sessions that come and go (per-attribute expiry, idle sessions left
// to expire, logouts), then checks the invariants: every key has a TTL,
// Redis memory returns to its baseline once the sessions have expired, the service's RSS stays
// flat (growth reported), and no error other than those the workload provokes.
import { spawn } from 'node:child_process'
import { randomBytes, randomUUID } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { setTimeout as sleep } from 'node:timers/promises'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import { SignJWT } from 'jose'
import { loadRedisFixture } from './bench/redis-fixture.ts'

const HELP = `usage: npm run soak -- [--minutes N] [--sessions N] [--workers N] [--idle S]

  --minutes <n>    length of the load phase, 0.1-60           (default 1)
  --sessions <n>   sessions alive at any time                  (default 500)
  --workers <n>    concurrent requests                          (default 16)
  --idle <s>       SSO_SESSION_IDLE_TTL of the service          (default 10)

Loopback only: a redis-server on a free port and the service from dist/ (npm run soak builds it).
Exit code 0 when every invariant holds, 1 otherwise.`

const { values } = parseArgs({
  options: {
    minutes: { type: 'string', default: '1' },
    sessions: { type: 'string', default: '500' },
    workers: { type: 'string', default: '16' },
    idle: { type: 'string', default: '10' },
    help: { type: 'boolean', short: 'h', default: false }
  }
})
if (values.help === true) {
  process.stdout.write(`${HELP}\n`)
  process.exit(0)
}
const MINUTES = Math.min(60, Math.max(0.1, Number(values.minutes)))
const SESSIONS = Math.max(10, Number(values.sessions))
const WORKERS = Math.max(1, Number(values.workers))
const IDLE_S = Math.max(2, Number(values.idle))
const MAX_S = IDLE_S * 4
const TOMBSTONE_S = IDLE_S
const TOKEN_S = MAX_S + 10
const ROOT = fileURLToPath(new URL('../', import.meta.url))
const SECRET = randomBytes(32).toString('base64url')
const ISSUER = 'https://soak.test'
const P = '/sso/session/attr'

const log = (line: string) => process.stdout.write(`${line}\n`)
const mib = (bytes: number) => `${(bytes / 1048576).toFixed(1)} MiB`

const { RedisServer, freePort } = await loadRedisFixture(ROOT)
const redis = await RedisServer.start()
const inspect = redis.client()
const port = await freePort()
const service = spawn(process.execPath, ['dist/src/server.js'], {
  cwd: ROOT,
  stdio: ['ignore', 'pipe', 'pipe'],
  env: {
    PATH: process.env.PATH,
    NODE_ENV: 'production',
    HOST: '127.0.0.1',
    PORT: String(port),
    LOG_LEVEL: 'warn',
    REDIS_URL: redis.url,
    SSO_JWT_SECRET: SECRET,
    SSO_ISSUER: ISSUER,
    SSO_APPS: 'CRM',
    SSO_ENCRYPTION_KEYS: `k1:${randomBytes(32).toString('base64url')}`,
    SSO_SESSION_IDLE_TTL: String(IDLE_S),
    SSO_SESSION_MAX_TTL: String(MAX_S),
    SSO_TOMBSTONE_TTL: String(TOMBSTONE_S),
    SSO_USER_ATTR_IDLE_TTL: String(IDLE_S),
    SSO_IDEMPOTENCY_TTL: String(IDLE_S),
    // On, with a budget no caller of the workload reaches: its counts are shared through Redis.
    SSO_RATE_LIMIT_MAX: '1000000',
    SSO_RATE_LIMIT_WINDOW: String(IDLE_S),
    METRICS_ENABLED: 'true'
  }
})
const logLines: string[] = []
let serviceErrors = 0
for (const stream of [service.stdout, service.stderr]) {
  let rest = ''
  stream.on('data', (chunk: Buffer) => {
    const lines = (rest + chunk.toString()).split('\n')
    rest = lines.pop() ?? ''
    for (const line of lines) {
      logLines.push(line)
      try {
        if ((JSON.parse(line) as { level?: number }).level! >= 50) serviceErrors++
      } catch {
        serviceErrors++ // not a pino line: a crash or a stray print
      }
    }
  })
}
let finished = false
service.once('exit', (code) => { if (!finished) { log(`the service exited early (${code}):\n${logLines.slice(-20).join('\n')}`); process.exit(1) } })
const cleanup = async () => {
  finished = true
  service.kill('SIGTERM')
  inspect.disconnect()
  await redis.close()
}
process.once('SIGINT', () => { cleanup().catch(() => {}).finally(() => process.exit(130)) })

const base = `http://127.0.0.1:${port}`
for (let started = Date.now(); ;) {
  const ok = await fetch(`${base}/readyz`).then((response) => response.ok, () => false)
  if (ok) break
  if (Date.now() - started > 30_000) throw new Error('the service did not become ready')
  await sleep(100)
}

function rssOf (pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8')
  return Number(/^VmRSS:\s+(\d+) kB/m.exec(status)?.[1] ?? 0) * 1024
}

async function usedMemory (): Promise<number> {
  return Number(/^used_memory:(\d+)/m.exec(await inspect.info('memory'))?.[1] ?? 0)
}

async function mint (sid: string, sub: string): Promise<string> {
  return await new SignJWT({ sid }).setProtectedHeader({ alg: 'HS256' }).setIssuer(ISSUER).setSubject(sub)
    // Short-lived tokens: the user's session index lives as long as the newest token.
    .setIssuedAt().setExpirationTime(`${TOKEN_S}s`).sign(new TextEncoder().encode(SECRET))
}

interface LiveSession { ust: string, names: Set<string>, versions: Map<string, number>, calls: number, bornAt: number }

async function newSession (): Promise<LiveSession> {
  return { ust: await mint(randomUUID(), `user-${Math.floor(Math.random() * 200)}`), names: new Set(), versions: new Map(), calls: 0, bornAt: Date.now() }
}

const stats = { requests: 0, byOutcome: new Map<string, number>(), unexpected: new Map<string, number>(), sessionsStarted: 0, loggedOut: 0 }
// Errors the workload asks for on purpose (a create of an existing name, a stale if_version, an
// update of an attribute that expired meanwhile, a call racing its session's logout by another
// worker); anything else is a finding.
const PROVOKED = new Set(['409 E009001', '409 E011005', '404 E009002', '401 E007001'])

async function send (method: string, path: string, ust: string, body?: unknown, idempotencyKey?: string): Promise<{ status: number, json: { sub_status?: string[], version?: number, result?: Record<string, { version?: number }> } }> {
  const response = await fetch(`${base}${path}`, {
    method,
    headers: {
      authorization: `Bearer ${ust}`,
      ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
      ...(idempotencyKey !== undefined ? { 'idempotency-key': `"${idempotencyKey}"` } : {})
    },
    body: body === undefined ? undefined : JSON.stringify(body),
    signal: AbortSignal.timeout(10_000)
  })
  const json = await response.json() as { sub_status?: string[], version?: number }
  const outcome = response.status === 200 ? '200' : `${response.status} ${(json.sub_status ?? []).join('+')}`
  stats.requests++
  stats.byOutcome.set(outcome, (stats.byOutcome.get(outcome) ?? 0) + 1)
  if (response.status !== 200 && !PROVOKED.has(outcome)) stats.unexpected.set(outcome, (stats.unexpected.get(outcome) ?? 0) + 1)
  return { status: response.status, json }
}

const pick = <T>(items: T[]): T => items[Math.floor(Math.random() * items.length)]!
const value = () => ({ id: randomUUID(), pad: 'x'.repeat(Math.floor(Math.random() * 100)) })

const U = '/sso/user/attr'
let replayMismatches = 0

/** One request of a random kind on a session; the mix leans to reads, as SSO traffic does. */
async function step (session: LiveSession): Promise<void> {
  session.calls++
  const names = [...session.names]
  const roll = Math.random()
  const name = `a${Math.floor(Math.random() * 12)}`
  if (roll < 0.12) {
    // The user's attributes, seen by every session of the user, encrypted or not.
    const userRoll = Math.random()
    if (userRoll < 0.4) await send('PUT', U, session.ust, { current_app: 'CRM', name: `u${Math.floor(Math.random() * 4)}`, value: value(), encrypt: Math.random() < 0.5, ...(Math.random() < 0.5 ? { expiration: 1 + Math.floor(Math.random() * IDLE_S) } : {}) })
    else if (userRoll < 0.8) await send('GET', `${U}?current_app=CRM&data=u0&data=u1&data=u2&data=u3`, session.ust)
    else await send('GET', `${U}/names?current_app=CRM`, session.ust)
    return
  }
  if (roll < 0.16) {
    // A write with an Idempotency-Key, then its repeat, as a client retrying would: the same
    // answer, nothing written twice.
    const key = randomUUID()
    const body = { current_app: 'CRM', name, value: value() }
    const first = await send('PUT', P, session.ust, body, key)
    const again = await send('PUT', P, session.ust, body, key)
    // Another worker may end the session in between (a logout of a retired session): then the
    // repeat is refused 401 like every call on it. Anything else must be the first answer.
    const ended = again.status === 401 && again.json.sub_status?.[0] === 'E007001'
    if (!ended && (first.status !== again.status || first.json.version !== again.json.version)) {
      replayMismatches++
      if (replayMismatches <= 5) log(`  repeat answered differently: ${first.status} v${first.json.version} then ${again.status} v${again.json.version} ${JSON.stringify(again.json.sub_status ?? [])}`)
    }
    if (first.status === 200) { session.names.add(name); session.versions.set(name, first.json.version ?? 1) }
    return
  }
  if (roll < 0.25 || names.length === 0) {
    const expiration = Math.random() < 0.5 ? 1 + Math.floor(Math.random() * IDLE_S) : undefined
    const reply = await send('PUT', P, session.ust, { current_app: 'CRM', name, value: value(), encrypt: Math.random() < 0.3, ...(expiration !== undefined ? { expiration } : {}) })
    if (reply.status === 200) { session.names.add(name); session.versions.set(name, reply.json.version ?? 1) }
  } else if (roll < 0.50) {
    await send('GET', `${P}?current_app=CRM&name=${pick(names)}`, session.ust)
  } else if (roll < 0.58) {
    const data = Array.from({ length: 5 }, (_, index) => ({ name: `b${index}`, value: value() }))
    const reply = await send('PUT', P, session.ust, { current_app: 'CRM', expiration: 1 + Math.floor(Math.random() * IDLE_S), data })
    if (reply.status === 200) for (const item of data) session.names.add(item.name)
  } else if (roll < 0.68) {
    await send('GET', `${P}?current_app=CRM&${names.slice(0, 8).map((n) => `data=${n}`).join('&')}`, session.ust)
  } else if (roll < 0.74) {
    await send('GET', `${P}/names?current_app=CRM`, session.ust)
  } else if (roll < 0.78) {
    await send('GET', `${P}/exists?current_app=CRM&data=${pick(names)}&data=nope`, session.ust)
  } else if (roll < 0.86) {
    // Optimistic update with the version last seen: a 409 E011005 when it moved (provoked).
    const target = pick(names)
    const reply = await send('PATCH', P, session.ust, { current_app: 'CRM', name: target, value: value(), if_version: session.versions.get(target) ?? 1 })
    if (reply.status === 200) session.versions.set(target, reply.json.version ?? 1)
    else if (reply.status === 404) session.names.delete(target) // expired meanwhile
  } else if (roll < 0.92) {
    const target = pick(names)
    await send('DELETE', `${P}?current_app=CRM&name=${target}`, session.ust)
    session.names.delete(target)
  } else {
    // Create of a name that may exist: 409 E009001 when it does (provoked).
    const reply = await send('POST', P, session.ust, { current_app: 'CRM', name: pick([...names, name]), value: value() })
    if (reply.status === 200) session.names.add(name)
  }
}

// Warm-up: every script loaded once, so the memory baseline includes the script cache.
const warm = await newSession()
for (let index = 0; index < 20; index++) await step(warm)
await send('DELETE', '/sso/session?current_app=CRM', warm.ust)
await sleep((TOMBSTONE_S + 2) * 1000)
const baselineMemory = await usedMemory()
const baselineKeys = await inspect.dbsize()
const pid = service.pid!
stats.byOutcome.clear()
stats.unexpected.clear()
stats.requests = 0
log(`soak: ${MINUTES} min, ${SESSIONS} live sessions, ${WORKERS} workers; idle TTL ${IDLE_S} s, max TTL ${MAX_S} s, tombstones ${TOMBSTONE_S} s`)
log(`baseline: Redis used_memory ${mib(baselineMemory)} with ${baselineKeys} keys; service RSS ${mib(rssOf(pid))}`)

// Load: a pool of live sessions; a session is retired after a random number of calls (left
// to expire, or logged out), and a new one takes its place.
const pool = await Promise.all(Array.from({ length: SESSIONS }, newSession))
stats.sessionsStarted = pool.length
const endAt = Date.now() + MINUTES * 60_000
const rss: Array<{ at: number, bytes: number }> = []
const loadStarted = Date.now()
let scrapes = 0
let failedScrapes = 0
const sampler = setInterval(() => {
  rss.push({ at: Date.now() - loadStarted, bytes: rssOf(pid) })
  // Scraped as Prometheus would, while the load runs.
  fetch(`${base}/metrics`, { signal: AbortSignal.timeout(5000) }).then(async (response) => {
    scrapes++
    if (!response.ok || !(await response.text()).includes('sso_attrs_')) failedScrapes++
  }, () => { scrapes++; failedScrapes++ })
}, 2000)
let lastReport = Date.now()
let lastRequests = 0
const worker = async () => {
  while (Date.now() < endAt) {
    const slot = Math.floor(Math.random() * pool.length)
    const session = pool[slot]!
    // Retired after some calls, or before its token gets old: left to expire, or logged out.
    if (session.calls > 5 + Math.random() * 60 || Date.now() - session.bornAt > MAX_S * 500) {
      if (Math.random() < 0.2) {
        await send('DELETE', '/sso/session?current_app=CRM', session.ust)
        stats.loggedOut++
      }
      pool[slot] = await newSession()
      stats.sessionsStarted++
      continue
    }
    await step(session)
    if (Date.now() - lastReport > 10_000) {
      const now = Date.now()
      const since = lastReport
      lastReport = now
      log(`  ${((now - loadStarted) / 1000).toFixed(0)} s: ${((stats.requests - lastRequests) / ((now - since) / 1000)).toFixed(0)} req/s, Redis ${mib(await usedMemory())} / ${await inspect.dbsize()} keys, service RSS ${mib(rssOf(pid))}`)
      lastRequests = stats.requests
    }
  }
}
await Promise.all(Array.from({ length: WORKERS }, worker))
clearInterval(sampler)
const loadSeconds = (Date.now() - loadStarted) / 1000
const peakMemory = await usedMemory()
const peakKeys = await inspect.dbsize()

// Invariant 1: every key has a TTL (the soak may SCAN: it is not a request path).
let withoutTtl = 0
let scanned = 0
for (let cursor = '0'; ;) {
  const [next, keys] = await inspect.scan(cursor, 'COUNT', 1000)
  for (const key of keys) {
    scanned++
    if (await inspect.pttl(key) === -1) {
      withoutTtl++
      if (withoutTtl <= 5) log(`  key without TTL: ${key} (${await inspect.type(key)})`)
    }
  }
  cursor = next
  if (cursor === '0') break
}

// Invariant 2: once every session has expired, Redis holds what it held before the load.
const drainStarted = Date.now()
const drainLimit = (TOKEN_S + TOMBSTONE_S + IDLE_S + 30) * 1000
while (await inspect.dbsize() > baselineKeys && Date.now() - drainStarted < drainLimit) await sleep(500)
const drainedKeys = await inspect.dbsize()
const drainedMemory = await usedMemory()
const drainSeconds = (Date.now() - drainStarted) / 1000
const finalRss = rssOf(pid)

// Invariant 3: the service's RSS is flat: the last third of the run against the middle third
// (the first is the heap growing to its working size; garbage collection makes single samples
// noisy, so medians).
const third = Math.max(1, Math.floor(rss.length / 3))
const median = (samples: Array<{ bytes: number }>) => samples.map((sample) => sample.bytes).sort((a, b) => a - b)[Math.floor(samples.length / 2)] ?? 0
const earlyRss = median(rss.slice(third, 2 * third))
const lateRss = median(rss.slice(-third))
const rssGrowth = earlyRss === 0 ? 0 : (lateRss - earlyRss) / earlyRss

const memoryDelta = drainedMemory - baselineMemory
const checks = [
  { name: 'every key has a TTL', ok: withoutTtl === 0, detail: `${withoutTtl} of ${scanned} keys without a TTL at the end of the load` },
  { name: 'Redis memory back to baseline after expiry', ok: drainedKeys <= baselineKeys && Math.abs(memoryDelta) < 512 * 1024, detail: `${mib(baselineMemory)} before, ${mib(peakMemory)} / ${peakKeys} keys at the end of the load, ${mib(drainedMemory)} / ${drainedKeys} keys ${drainSeconds.toFixed(0)} s later (${memoryDelta >= 0 ? '+' : ''}${(memoryDelta / 1024).toFixed(1)} KiB)` },
  { name: 'service RSS flat', ok: rssGrowth < 0.25, detail: `median ${mib(earlyRss)} in the middle third, ${mib(lateRss)} in the last (${(rssGrowth * 100).toFixed(1)} %), ${mib(finalRss)} after the drain` },
  { name: 'no unprovoked error', ok: stats.unexpected.size === 0 && serviceErrors === 0, detail: `${[...stats.unexpected].map(([outcome, count]) => `${outcome}: ${count}`).join(', ') || 'none'} on the wire; ${serviceErrors} error lines in the service log` },
  { name: 'repeats under an Idempotency-Key got the first answer', ok: replayMismatches === 0, detail: `${replayMismatches} repeats answered differently` },
  { name: 'metrics scraped during the load', ok: scrapes > 0 && failedScrapes === 0, detail: `${scrapes} scrapes of /metrics, ${failedScrapes} failed` }
]
log(`load: ${stats.requests} requests in ${loadSeconds.toFixed(0)} s (${(stats.requests / loadSeconds).toFixed(0)} req/s), ${stats.sessionsStarted} sessions started, ${stats.loggedOut} logged out`)
log(`answers: ${[...stats.byOutcome].sort((a, b) => b[1] - a[1]).map(([outcome, count]) => `${outcome}: ${count}`).join(', ')}`)
for (const check of checks) log(`${check.ok ? 'ok  ' : 'FAIL'} ${check.name}: ${check.detail}`)
if (serviceErrors > 0) log(logLines.filter((line) => !line.includes('"level":40')).slice(-10).join('\n'))
await cleanup()
process.exit(checks.every((check) => check.ok) ? 0 : 1)
