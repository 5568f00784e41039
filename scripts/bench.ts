// npm run bench: the benchmark of issue 5. Starts a real redis-server, the service in production
// mode (node dist/src/server.js, built by the npm script) and a bare Fastify baseline
// (scripts/bench-baseline.mjs) as separate processes, pins them and the load generator to
// different cores with taskset where it can, drives every scenario with autocannon and rewrites
// BENCHMARKS.md. `npm run bench -- --help` lists the options; `--quick` is a short smoke run.
//
// This file is the run from start to end; the parts are in scripts/bench/: options, scenarios
// (the workload), processes (Redis, the servers, cleanup), load (autocannon rounds), measure
// (INFO, MONITOR, /proc), profile (--profile) and report (BENCHMARKS.md).
import { randomBytes } from 'node:crypto'
import { existsSync, mkdtempSync } from 'node:fs'
import os from 'node:os'
import { basename, join, relative } from 'node:path'
import { createDriver, measureRounds, warmUp } from './bench/load.ts'
import { commandStats, measureRedisMemory, monotonicMicros, pin, planPinning, rssMiB, runFacts, sampleCommandsSent, type RedisMemory } from './bench/measure.ts'
import { fmt } from './bench/numbers.ts'
import { HELP, parseBenchOptions, ROOT, serviceEnvOverrides } from './bench/options.ts'
import { idleRedisCpuUsPerSecond, NEAR_CACHE_ENV, nearCacheScenarios } from './bench/near-cache.ts'
import { profileSection } from './bench/profile.ts'
import { cleanup, installExitHandlers, log, startRedis, startServer, temporaryDir, type Server } from './bench/processes.ts'
import { loadRedisFixture } from './bench/redis-fixture.ts'
import { aggregate, backgroundNote, renderReport, writeReport, type ServiceRss } from './bench/report.ts'
import { FAN_OUT_SUBSCRIBERS, measureWebSocketFanOut, measureWebSocketGet, renderWebSocketSection } from './bench/websocket.ts'
import {
  APP, ATTR_PATH, AUDIENCE, BATCH, buildScenarios, call, checkScenarios, compareScenarios, createMinter, failure, ISSUER, MEMORY_ATTRS_PER_SESSION,
  NAMES_PER_SESSION, populate, RATE_LIMIT_MAX, selectScenarios, value100, type Reply
} from './bench/scenarios.ts'

const { opts, run } = parseBenchOptions()
if (run.help) {
  process.stdout.write(HELP)
  process.exit(0)
}
installExitHandlers()

// Read before this process pins itself to one core (availableParallelism follows the affinity).
const cpuCount = os.availableParallelism()

async function main (): Promise<void> {
  const startedAt = Date.now()
  const serverJs = join(ROOT, 'dist/src/server.js')
  if (!existsSync(serverJs)) throw new Error(`${serverJs} is missing: run npm run build first (npm run bench does)`)
  const fixture = await loadRedisFixture(ROOT)

  const loadAtStart = os.loadavg()
  const { pinning, note: pinNote } = planPinning(opts.pin)
  if (pinning !== undefined) pin(process.pid, pinning.loadgen)
  log(pinNote)
  log(`options: ${JSON.stringify(opts)}`)

  const tmp = mkdtempSync(join(os.tmpdir(), 'sso-attrs-bench-'))
  temporaryDir(tmp)
  const redis = await startRedis(fixture, pinning?.redis)
  const { admin } = redis
  const { jwksFile, mint } = await createMinter(tmp)

  // The service, in production mode, with only the environment it needs.
  const servicePort = await fixture.freePort()
  const profileDir = join(tmp, 'profile')
  const baseEnv = { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: process.env.HOME ?? tmp }
  const serviceEnv = {
    ...baseEnv,
    NODE_ENV: 'production',
    HOST: '127.0.0.1',
    LOG_LEVEL: 'warn',
    REDIS_URL: redis.url,
    SSO_ISSUER: ISSUER,
    SSO_AUDIENCE: AUDIENCE,
    SSO_APPS: `${APP},Portal`,
    SSO_JWKS_FILE: jwksFile,
    SSO_ENCRYPTION_KEYS: `bench:${randomBytes(32).toString('base64url')}`,
    // Rate limiting stays on (its cost is part of the service) with a budget no bench reaches.
    SSO_RATE_LIMIT_MAX: String(RATE_LIMIT_MAX),
    // The fan-out row opens FAN_OUT_SUBSCRIBERS connections of one user.
    SSO_WS_MAX_CONNECTIONS_PER_USER: String(FAN_OUT_SUBSCRIBERS),
    ...serviceEnvOverrides()
  }
  const service = await startServer('service', [...(opts.profile ? ['--cpu-prof', `--cpu-prof-dir=${profileDir}`] : []), serverJs], { ...serviceEnv, PORT: String(servicePort) }, servicePort, pinning?.server, ROOT)
  const rss: ServiceRss = { boot: rssMiB(service.pid), beforeLoad: Number.NaN, afterLoad: Number.NaN, maxDuringLoad: 0 }
  log(`service on port ${service.port} (pid ${service.pid}), RSS ${fmt(rss.boot, 1)} MiB`)
  // Same-run A/B: the other build, on the same core and Redis, under a key prefix of its own.
  let compare: Server | undefined
  if (opts.compare !== undefined) {
    const compareRoot = opts.compare === '.' ? ROOT : opts.compare
    const compareJs = join(compareRoot, 'dist/src/server.js')
    if (!existsSync(compareJs)) throw new Error(`--compare: ${compareJs} is missing: run npm run build in ${opts.compare}`)
    const comparePort = await fixture.freePort()
    const compareEnv = serviceEnvOverrides(process.env, 'BENCH_COMPARE_ENV')
    compare = await startServer('compare', [compareJs], { ...serviceEnv, PORT: String(comparePort), SSO_KEY_PREFIX: 'sso-attrs-b:', ...compareEnv }, comparePort, pinning?.server, compareRoot)
    log(`compare (B: ${compareRoot}${Object.keys(compareEnv).length > 0 ? `, ${JSON.stringify(compareEnv)}` : ''}) on port ${compare.port} (pid ${compare.pid})`)
  }
  const commandsAtStart = await commandStats(admin)

  // Sessions: one UST each, distinct sid.
  const mintStarted = Date.now()
  const tokens = await Promise.all(Array.from({ length: opts.sessions }, async (_, i) => await mint(i, 's')))
  const namesSessions = Math.max(10, Math.min(200, Math.floor(opts.sessions / 10)))
  const namesTokens = await Promise.all(Array.from({ length: namesSessions }, async (_, i) => await mint(i, 'n')))
  const memorySessions = Math.ceil(opts.memoryAttrs / MEMORY_ATTRS_PER_SESSION)
  const memoryTokens = await Promise.all(Array.from({ length: memorySessions }, async (_, i) => await mint(i, 'm')))
  log(`minted ${tokens.length + namesTokens.length + memoryTokens.length} ES256 USTs in ${Date.now() - mintStarted} ms`)

  const prepStarted = Date.now()
  await populate(service.port, tokens, namesTokens)
  if (compare !== undefined) await populate(compare.port, tokens, namesTokens)
  log(`populated ${tokens.length} sessions x ${BATCH + 2} attributes and ${namesTokens.length} sessions x ${NAMES_PER_SESSION} in ${Date.now() - prepStarted} ms`)

  let memory: RedisMemory | undefined
  if (opts.memoryAttrs > 0) {
    memory = await measureRedisMemory(admin, service.port, memoryTokens, opts.memoryAttrs)
    log(`Redis memory: ${fmt(memory.bytes / 1048576, 1)} MiB for ${memory.attributes} attributes = ${fmt(memory.perAttribute, 1)} B/attribute`)
  }

  // Bodies the baseline mirrors: the service's own GET single and PUT single responses.
  const sampleGet = await call(service.port, 'GET', `${ATTR_PATH}?current_app=${APP}&name=plain`, tokens[0]!)
  const putBody = JSON.stringify({ current_app: APP, name: 'put-plain', value: value100() })
  const samplePut = await call(service.port, 'PUT', ATTR_PATH, tokens[0]!, JSON.parse(putBody))
  if (sampleGet.status !== 200 || samplePut.status !== 200) throw failure('sample request', sampleGet.status !== 200 ? sampleGet : samplePut)
  const template = (reply: Reply) => JSON.stringify(Object.fromEntries(Object.entries(reply.body).filter(([key]) => key !== 'cid')))
  const baselinePort = await fixture.freePort()
  const baseline = await startServer('baseline', [join(ROOT, 'scripts/bench-baseline.mjs')], {
    ...baseEnv,
    NODE_ENV: 'production',
    PORT: String(baselinePort),
    LOG_LEVEL: 'warn',
    BENCH_GET_TEMPLATE: template(sampleGet),
    BENCH_PUT_TEMPLATE: template(samplePut),
    BENCH_REDIS_URL: redis.url
  }, baselinePort, pinning?.server, ROOT)
  log(`baseline on port ${baseline.port} (pid ${baseline.pid})`)
  // The same service with the near cache on, for its rows (bench/near-cache.ts).
  const nearPort = await fixture.freePort()
  const near = await startServer('near', [serverJs], { ...serviceEnv, PORT: String(nearPort), ...NEAR_CACHE_ENV }, nearPort, pinning?.server, ROOT)
  log(`service with the near cache on port ${near.port} (pid ${near.pid})`)

  const selected = selectScenarios([...buildScenarios(tokens, namesTokens, putBody), ...nearCacheScenarios(tokens[0]!)], opts.only)
  // Each B row right after its A row, so that the two meet the same conditions.
  const scenarios = compare === undefined ? selected : selected.flatMap((s) => s.target === 'service' ? [s, ...compareScenarios([s])] : [s])
  await checkScenarios(scenarios, { service: service.port, baseline: baseline.port, near: near.port, ...(compare === undefined ? {} : { compare: compare.port }) })
  log('every scenario answers correctly')

  const commandsSent = await sampleCommandsSent(admin, service.port, scenarios, ROOT)
  log(`commands sent per request (MONITOR): ${[...commandsSent.sent].map(([key, names]) => `${key}: ${[...names].map(([n, c]) => `${n} ${fmt(c, 2)}`).join(', ')}`).join('; ')}`)
  log(`background scripts during the MONITOR samples (not counted per request): ${backgroundNote(commandsSent.background)}`)

  const drive = createDriver({
    servers: { service, baseline, near, ...(compare === undefined ? {} : { compare }) },
    admin,
    pinning,
    connections: opts.connections,
    onServiceRss: (mib) => { rss.maxDuringLoad = Math.max(rss.maxDuringLoad, mib) }
  })
  const loadStarted = Date.now()
  await warmUp(scenarios, drive, opts.warmup)
  const idleRedisCpu = scenarios.some((s) => s.target === 'near') ? await idleRedisCpuUsPerSecond(admin) : undefined
  if (idleRedisCpu !== undefined) log(`Redis CPU with no load: ${fmt(idleRedisCpu)} µs/s`)
  rss.beforeLoad = rssMiB(service.pid)
  const profileWindow = { start: monotonicMicros(), end: Number.POSITIVE_INFINITY }
  const rounds = await measureRounds(scenarios, drive, opts.rounds, opts.duration)
  profileWindow.end = monotonicMicros()
  if (opts.profile) log(`profile window (monotonic µs): ${profileWindow.start},${profileWindow.end}`)
  rss.afterLoad = rssMiB(service.pid)
  const baselineRss = rssMiB(baseline.pid)
  const loadSeconds = (Date.now() - loadStarted) / 1000
  const websocket = await measureWebSocketGet(service.port, APP, tokens[0]!, 'plain', { seconds: opts.duration * opts.rounds, warmupSeconds: opts.warmup, inFlight: 16 })
  log(`WebSocket: ${fmt(websocket.perSecond)} session.attr.get calls/s on one connection, p99 ${fmt(websocket.p99Ms, 2)} ms, ${websocket.errors} errors`)
  // One write outstanding: the latency of a fan-out alone; four: the rate when they queue.
  const fanOut = []
  for (const inFlight of [1, 4]) {
    const result = await measureWebSocketFanOut(service.port, APP, tokens[0]!, { subscribers: FAN_OUT_SUBSCRIBERS, seconds: opts.duration * opts.rounds, warmupSeconds: opts.warmup, inFlight })
    log(`WebSocket fan-out, ${inFlight} outstanding: ${fmt(result.eventsPerSecond)} events/s to ${result.subscribers} subscribers of one owner (${fmt(result.writesPerSecond)} writes/s), p50 ${fmt(result.p50Ms, 2)} ms, p99 ${fmt(result.p99Ms, 2)} ms, ${result.dropped} dropped, ${result.missing} missing`)
    fanOut.push(result)
  }
  const commandsAtEnd = await commandStats(admin)
  const loadAtEnd = os.loadavg()

  const rows = aggregate(scenarios, rounds, commandsSent.sent)
  const facts = runFacts(commandsAtStart, commandsAtEnd, ROOT)

  let profileLines: string[] = []
  if (opts.profile) {
    // The service writes its profile when it exits.
    await service.stop()
    profileLines = profileSection(profileDir, profileWindow, ROOT, run.profileOut)
  }

  const totalSeconds = (Date.now() - startedAt) / 1000
  const report = renderReport({
    opts,
    quick: run.quick,
    root: ROOT,
    rows,
    rounds,
    commandsSent,
    facts,
    memory,
    rss,
    baselineRss,
    pinning,
    pinNote,
    cpuCount,
    redisVersion: redis.version,
    redisUrl: redis.url,
    loadAtStart,
    loadAtEnd,
    totalSeconds,
    loadSeconds,
    tokenCounts: { sessions: tokens.length, names: namesTokens.length, memory: memoryTokens.length },
    profileLines,
    idleRedisCpuUsPerSecond: idleRedisCpu
  })

  const fullReport = `${report.replace(/\n*$/, '\n')}\n${renderWebSocketSection(websocket, fanOut)}`
  process.stdout.write(`\n${fullReport}\n`)
  if (opts.write) {
    writeReport(run.outFile, fullReport)
    log(`wrote ${relative(process.cwd(), run.outFile) || run.outFile}`)
  } else {
    log(`not writing ${basename(run.outFile)} (${run.quick ? '--quick' : opts.profile ? '--profile' : opts.only.length > 0 ? '--only' : opts.compare !== undefined ? '--compare' : '--no-write'}; --write to force)`)
  }
  log(`done in ${fmt(totalSeconds)} s`)
}

let exitCode = 0
try {
  await main()
} catch (error) {
  process.stderr.write(`bench failed: ${(error as Error).stack ?? String(error)}\n`)
  exitCode = 1
} finally {
  await cleanup()
}
process.exit(exitCode)
