// npm run bench: the benchmark of issue 5. Starts a real redis-server, the service in production
// mode (node dist/src/server.js, built by the npm script) and a bare Fastify baseline
// (scripts/bench-baseline.mjs) as separate processes, pins them and the load generator to
// different cores with taskset where it can, drives every scenario with autocannon and rewrites
// BENCHMARKS.md. `npm run bench -- --help` lists the options; `--quick` is a short smoke run.
import { execFileSync, spawn, type ChildProcess } from 'node:child_process'
import { createHash, randomBytes, randomUUID } from 'node:crypto'
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import os from 'node:os'
import { basename, dirname, join, relative } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import type { Redis } from 'ioredis'
import { exportJWK, generateKeyPair, SignJWT } from 'jose'

// ---------------------------------------------------------------------------------------------
// autocannon ships no type declarations: the part of its programmatic API used here.

interface AcRequestData {
  method: string
  path: string
  headers: Record<string, string>
  body?: string
}
interface AcRequest extends Partial<AcRequestData> {
  setupRequest?: (request: AcRequestData) => AcRequestData
}
interface AcOptions {
  url: string
  connections: number
  duration: number
  timeout: number
  requests: AcRequest[]
}
interface AcResult {
  duration: number
  errors: number
  timeouts: number
  non2xx: number
  requests: { total: number, sent: number }
}
interface AcInstance extends PromiseLike<AcResult> {
  on: (event: 'response', listener: (client: unknown, statusCode: number, bytes: number, responseTime: number) => void) => AcInstance
}
type Autocannon = (options: AcOptions) => AcInstance

const require = createRequire(import.meta.url)
const autocannon = require('autocannon') as Autocannon

// The Redis test fixture, imported at run time: the Docker build compiles scripts/ without
// test/, so a static import would break `npm run build` there.
interface RedisFixture {
  readonly port: number
  readonly dir: string
  readonly url: string
  client: () => Redis
  close: () => Promise<void>
}
interface RedisFixtureModule {
  RedisServer: { start: () => Promise<RedisFixture> }
  freePort: () => Promise<number>
}

// ---------------------------------------------------------------------------------------------
// Options

const HELP = `usage: npm run bench -- [options]   (or: npx tsx scripts/bench.ts [options] after npm run build)

  --duration <s>       length of one measured round per scenario    (BENCH_DURATION, default 3; quick 1)
  --rounds <n>         measured rounds per scenario, medians taken  (BENCH_ROUNDS, default 3; quick 1)
  --warmup <s>         warm-up per scenario before the rounds       (BENCH_WARMUP, default 1; quick 0.5)
  --connections <n>    autocannon connections                       (BENCH_CONNECTIONS, default 50)
  --sessions <n>       distinct sessions / ES256 USTs driven         (BENCH_SESSIONS, default 2000; quick 300)
  --memory-attrs <n>   attributes written for the Redis memory figure (BENCH_MEMORY_ATTRS, default 100000; quick 10000;
                       0 skips it, the default with --profile)
  --only <keys>        only these service scenarios (BENCH_ONLY, comma-separated; the baselines always run):
                       get-plain, get-secret, put-plain, put-secret, put-batch, get-batch, names
  --quick              short smoke run (with --profile or --only: BENCHMARKS.md is not rewritten unless --write)
  --profile            run the service under node --cpu-prof and print where its CPU time goes
                       (slows it down: does not rewrite BENCHMARKS.md unless --write)
  --profile-out <file> also keep the .cpuprofile there (open it in Chrome DevTools)
  --no-pin             do not pin processes to cores with taskset
  --write / --no-write rewrite BENCHMARKS.md or not
  --out <file>         where to write the report (default BENCHMARKS.md at the repository root)
`

const { values: flags } = parseArgs({
  options: {
    duration: { type: 'string' },
    rounds: { type: 'string' },
    warmup: { type: 'string' },
    connections: { type: 'string' },
    sessions: { type: 'string' },
    'memory-attrs': { type: 'string' },
    only: { type: 'string' },
    quick: { type: 'boolean', default: false },
    profile: { type: 'boolean', default: false },
    'profile-out': { type: 'string' },
    'no-pin': { type: 'boolean', default: false },
    write: { type: 'boolean', default: false },
    'no-write': { type: 'boolean', default: false },
    out: { type: 'string' },
    help: { type: 'boolean', short: 'h', default: false }
  }
})
if (flags.help) {
  process.stdout.write(HELP)
  process.exit(0)
}

function numberOption (flag: string | undefined, envName: string, normal: number, quick: number, min: number): number {
  const text = flag ?? process.env[envName]
  const value = text === undefined || text === '' ? (flags.quick ? quick : normal) : Number(text)
  if (!Number.isFinite(value) || value < min) throw new Error(`${envName} / --${envName.slice(6).toLowerCase().replace('_', '-')} must be a number >= ${min}, not ${String(text)}`)
  return value
}

const opts = {
  duration: numberOption(flags.duration, 'BENCH_DURATION', 3, 1, 0.5),
  rounds: Math.round(numberOption(flags.rounds, 'BENCH_ROUNDS', 3, 1, 1)),
  warmup: numberOption(flags.warmup, 'BENCH_WARMUP', 1, 0.5, 0),
  connections: Math.round(numberOption(flags.connections, 'BENCH_CONNECTIONS', 50, 50, 1)),
  sessions: Math.round(numberOption(flags.sessions, 'BENCH_SESSIONS', 2000, 300, 10)),
  // The memory sample writes 100 000 attributes through the service: in a profile it would hide the load.
  memoryAttrs: Math.round(numberOption(flags['memory-attrs'], 'BENCH_MEMORY_ATTRS', flags.profile ? 0 : 100_000, flags.profile ? 0 : 10_000, 0)),
  only: (flags.only ?? process.env.BENCH_ONLY ?? '').split(',').map((key) => key.trim()).filter((key) => key !== ''),
  pin: !flags['no-pin'],
  profile: flags.profile,
  write: flags['no-write'] ? false : flags.write || (!flags.quick && !flags.profile && flags.only === undefined && process.env.BENCH_ONLY === undefined)
}

// Read before this process pins itself to one core (availableParallelism follows the affinity).
const cpuCount = os.availableParallelism()
const here = dirname(fileURLToPath(import.meta.url))
// scripts/ in the repository, or dist/scripts/ when run compiled.
const root = basename(dirname(here)) === 'dist' ? dirname(dirname(here)) : dirname(here)
const outFile = flags.out ?? join(root, 'BENCHMARKS.md')

// Constants of the workload.
const APP = 'CRM'
const ISSUER = 'https://idp.bench.invalid'
const AUDIENCE = 'sso-attrs'
const KID = 'bench-es256'
const ATTR_PATH = '/sso/session/attr'
const BATCH = 20
const NAMES_PER_SESSION = 100
const MEMORY_ATTRS_PER_SESSION = 100
const VALUE_BYTES = 100 // serialized JSON: a 98-character string and its quotes
const EXPIRATION = 3600
const TOKEN_CACHE_DEFAULT = 10_000 // SSO_TOKEN_CACHE_SIZE, left at its default
const RATE_LIMIT_MAX = 1_000_000_000
// BENCHMARKS.md from this line on is notes written by hand, which a rewrite keeps.
const NOTES_MARKER = '<!-- notes: everything below this line is written by hand and kept when npm run bench rewrites the file -->'

// ---------------------------------------------------------------------------------------------
// Process bookkeeping: everything started is stopped, and the temp dirs removed, on any exit.

const cleanups: Array<() => Promise<void> | void> = []
const children = new Set<ChildProcess>()
const killOnExit = new Set<number>() // pids not spawned here (redis-server via the fixture)
const dirsOnExit = new Set<string>()

async function cleanup (): Promise<void> {
  while (cleanups.length > 0) {
    const step = cleanups.pop()!
    try {
      await step()
    } catch (error) {
      process.stderr.write(`cleanup: ${(error as Error).message}\n`)
    }
  }
}

// Last resort when the process leaves without running cleanup (uncaught error, process.exit).
process.on('exit', () => {
  for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL')
  for (const pid of killOnExit) {
    try {
      process.kill(pid, 'SIGKILL')
    } catch {}
  }
  for (const dir of dirsOnExit) rmSync(dir, { recursive: true, force: true })
})
for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
  process.once(signal, () => {
    process.stderr.write(`\nbench: ${signal}, stopping everything\n`)
    void cleanup().finally(() => process.exit(130))
  })
}

function log (line: string): void {
  process.stderr.write(`[bench ${new Date().toISOString().slice(11, 19)}] ${line}\n`)
}

// ---------------------------------------------------------------------------------------------
// Small helpers

const median = (values: number[]): number => {
  const sorted = values.filter((v) => Number.isFinite(v)).sort((a, b) => a - b)
  if (sorted.length === 0) return Number.NaN
  const middle = Math.floor(sorted.length / 2)
  return sorted.length % 2 === 1 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2
}

function fmt (value: number, digits = 0): string {
  if (!Number.isFinite(value)) return 'n/a'
  return value.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits })
}

function value100 (): string {
  return randomBytes(80).toString('base64url').slice(0, VALUE_BYTES - 2)
}

function parseInfo (text: string): Map<string, string> {
  const map = new Map<string, string>()
  for (const line of text.split('\r\n')) {
    if (line === '' || line.startsWith('#')) continue
    const colon = line.indexOf(':')
    if (colon > 0) map.set(line.slice(0, colon), line.slice(colon + 1))
  }
  return map
}

interface CommandStat { calls: number, failed: number }

async function commandStats (redis: Redis): Promise<Map<string, CommandStat>> {
  const stats = new Map<string, CommandStat>()
  for (const [key, value] of parseInfo(await redis.info('commandstats'))) {
    if (!key.startsWith('cmdstat_')) continue
    const field = (name: string) => Number(new RegExp(`(?:^|,)${name}=(\\d+)`).exec(value)?.[1] ?? 0)
    stats.set(key.slice('cmdstat_'.length), { calls: field('calls'), failed: field('failed_calls') + field('rejected_calls') })
  }
  return stats
}

/** Commands run between two snapshots, without the INFO calls of this tool. */
function commandDelta (before: Map<string, CommandStat>, after: Map<string, CommandStat>): Map<string, number> {
  const delta = new Map<string, number>()
  for (const [name, stat] of after) {
    if (name === 'info') continue
    const calls = stat.calls - (before.get(name)?.calls ?? 0)
    if (calls > 0) delta.set(name, calls)
  }
  return delta
}

async function redisCpuSeconds (redis: Redis): Promise<number> {
  const info = parseInfo(await redis.info('cpu'))
  return Number(info.get('used_cpu_user') ?? 0) + Number(info.get('used_cpu_sys') ?? 0)
}

let clockTicks = 100
try {
  clockTicks = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100
} catch {}

/** utime + stime of a process (all its threads), in microseconds, from /proc. */
function processCpuMicros (pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
  // fields[0] is field 3 (state): utime is field 14, stime field 15.
  return (Number(fields[11]) + Number(fields[12])) * (1e6 / clockTicks)
}

/** BENCH_SERVICE_ENV="NAME=value,NAME=value": settings for the service under test, to measure what one of them costs. */
function serviceEnvOverrides (): Record<string, string> {
  const text = process.env.BENCH_SERVICE_ENV ?? ''
  return Object.fromEntries(text.split(',').map((pair) => pair.trim()).filter((pair) => pair !== '').map((pair) => {
    const equals = pair.indexOf('=')
    if (equals <= 0) throw new Error(`BENCH_SERVICE_ENV: "${pair}" is not NAME=value`)
    return [pair.slice(0, equals), pair.slice(equals + 1)]
  }))
}

function rssMiB (pid: number): number {
  const match = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))
  return match === null ? Number.NaN : Number(match[1]) / 1024
}

/** Busy and total jiffies of one CPU (or of all, cpu = undefined), from /proc/stat. */
function cpuJiffies (cpu: number | undefined): { busy: number, total: number } {
  const label = cpu === undefined ? 'cpu' : `cpu${cpu}`
  const line = readFileSync('/proc/stat', 'utf8').split('\n').find((l) => l.startsWith(`${label} `))
  if (line === undefined) return { busy: Number.NaN, total: Number.NaN }
  const values = line.trim().split(/\s+/).slice(1, 9).map(Number)
  const total = values.reduce((a, b) => a + b, 0)
  return { busy: total - values[3]! - values[4]!, total } // idle and iowait are not busy
}

function busyPercent (before: { busy: number, total: number }, after: { busy: number, total: number }): number {
  return (100 * (after.busy - before.busy)) / (after.total - before.total)
}

function parseCpuList (list: string): number[] {
  const cpus: number[] = []
  for (const part of list.trim().split(',')) {
    const [from, to] = part.split('-').map(Number)
    if (from === undefined || !Number.isInteger(from)) continue
    for (let cpu = from; cpu <= (to ?? from); cpu++) cpus.push(cpu)
  }
  return cpus
}

interface Pinning { server: number, loadgen: number, redis: number }

function planPinning (): { pinning: Pinning | undefined, note: string } {
  if (!opts.pin) return { pinning: undefined, note: 'not pinned (--no-pin)' }
  let allowed: number[]
  try {
    const out = execFileSync('taskset', ['-pc', String(process.pid)], { encoding: 'utf8' })
    allowed = parseCpuList(out.slice(out.lastIndexOf(':') + 1))
  } catch {
    return { pinning: undefined, note: 'not pinned: taskset is not available' }
  }
  if (allowed.length < 2) return { pinning: undefined, note: `not pinned: only ${allowed.length} CPU available` }
  const pinning = { server: allowed[0]!, loadgen: allowed[1]!, redis: allowed[2] ?? allowed[1]! }
  const redisNote = pinning.redis === pinning.loadgen ? `redis-server shares CPU ${pinning.redis} with the load generator` : `redis-server on CPU ${pinning.redis}`
  return {
    pinning,
    note: `pinned with taskset: service and baseline on CPU ${pinning.server}, load generator (this process, autocannon) on CPU ${pinning.loadgen}, ${redisNote}`
  }
}

function pin (pid: number, cpu: number): void {
  execFileSync('taskset', ['-a', '-pc', String(cpu), String(pid)], { stdio: 'ignore' })
}

// ---------------------------------------------------------------------------------------------
// Servers

interface Server {
  name: string
  port: number
  pid: number
  child: ChildProcess
  /** Log lines at error level or worse (pino level >= 50) so far. */
  errorLines: () => number
  stop: () => Promise<void>
}

async function startServer (name: string, args: string[], env: Record<string, string>, port: number, cpu: number | undefined): Promise<Server> {
  const command = cpu === undefined ? process.execPath : 'taskset'
  const argv = cpu === undefined ? args : ['-c', String(cpu), process.execPath, ...args]
  // taskset execs node in place, so the pid is the server's own.
  const child = spawn(command, argv, { cwd: root, env, stdio: ['ignore', 'pipe', 'pipe'] })
  children.add(child)
  let output = ''
  let errorLines = 0
  let shown = 0
  const keep = (chunk: Buffer) => {
    output = (output + chunk.toString()).slice(-4000)
    for (const line of chunk.toString().split('\n')) {
      if (line.trim() === '') continue
      const level = /"level":(\d+)/.exec(line)
      if (level !== null && Number(level[1]) >= 50) errorLines++
      // A server in trouble under load logs the same error thousands of times: show a few.
      if (shown++ < 20) process.stderr.write(`[${name}] ${line.slice(0, 600)}\n`)
      else if (shown === 21) process.stderr.write(`[${name}] (more log lines not shown; errors are counted in the report)\n`)
    }
  }
  child.stdout!.on('data', keep)
  child.stderr!.on('data', keep)
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()))
  const stop = async () => {
    if (child.exitCode !== null || child.signalCode !== null) return
    child.kill('SIGTERM')
    const timer = setTimeout(() => child.kill('SIGKILL'), 15_000)
    await exited
    clearTimeout(timer)
    children.delete(child)
  }
  cleanups.push(stop)

  const deadline = Date.now() + 20_000
  const probe = name === 'service' ? '/readyz' : '/healthz'
  for (;;) {
    if (child.exitCode !== null || child.signalCode !== null) throw new Error(`${name} exited at start (${child.exitCode ?? child.signalCode}):\n${output}`)
    try {
      const res = await fetch(`http://127.0.0.1:${port}${probe}`)
      if (res.ok) break
    } catch {}
    if (Date.now() > deadline) throw new Error(`${name} did not become ready on port ${port}:\n${output}`)
    await sleep(100)
  }
  return { name, port, pid: child.pid!, child, errorLines: () => errorLines, stop }
}

// ---------------------------------------------------------------------------------------------
// HTTP calls outside the load (setup and sanity checks)

interface Reply { status: number, body: Record<string, unknown> }

async function call (port: number, method: string, path: string, token: string, body?: unknown): Promise<Reply> {
  const res = await fetch(`http://127.0.0.1:${port}${path}`, {
    method,
    headers: { authorization: `Bearer ${token}`, ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
    ...(body !== undefined ? { body: JSON.stringify(body) } : {})
  })
  return { status: res.status, body: await res.json() as Record<string, unknown> }
}

async function pool<T> (items: T[], concurrency: number, work: (item: T, index: number) => Promise<void>): Promise<void> {
  let next = 0
  await Promise.all(Array.from({ length: Math.min(concurrency, items.length) }, async () => {
    while (next < items.length) {
      const index = next++
      await work(items[index]!, index)
    }
  }))
}

// ---------------------------------------------------------------------------------------------
// Scenarios

type Method = 'GET' | 'PUT'

interface Scenario {
  key: string
  label: string
  target: 'service' | 'baseline'
  method: Method
  path: string
  body?: string
  tokens: string[]
  /** A different UST (session) on every request; false for the baseline, which never reads it. */
  rotate: boolean
  /** Attributes read or written by one request. */
  items: number
  /** What makes a response right; returns a problem or undefined. */
  check: (reply: Reply) => string | undefined
  /** Single-form scenario the batch one is compared with. */
  singleOf?: string
}

interface RoundStats {
  rps: number
  p50: number
  p99: number
  requests: number
  sentRequests: number
  failures: number
  commandsPerRequest: number
  commands: Map<string, number>
  serverCpuUs: number
  redisCpuUs: number
  loadgenCpuPct: number
  /** Busy % of the server's core and of the load generator's core (whole machine when not pinned). */
  serverCoreBusy: number
  loadgenCoreBusy: number
  /** The server process's own CPU over the round, % of one core. */
  serverCpuPct: number
  /** Error-level lines the server logged during the round (failures the client may not see). */
  serverErrors: number
  /** 1-minute load average of the machine at the end of the round. */
  load1: number
}

class LatencyRecorder {
  #values = new Float64Array(1 << 16)
  #count = 0
  push (value: number): void {
    if (this.#count === this.#values.length) {
      const grown = new Float64Array(this.#values.length * 2)
      grown.set(this.#values)
      this.#values = grown
    }
    this.#values[this.#count++] = value
  }

  percentile (p: number): number {
    if (this.#count === 0) return Number.NaN
    const sorted = this.#values.slice(0, this.#count).sort()
    return sorted[Math.min(this.#count - 1, Math.ceil((p / 100) * this.#count) - 1)]!
  }
}

function okCheck (reply: Reply): string | undefined {
  if (reply.status !== 200 || reply.body.status !== 'ok') return `HTTP ${reply.status} ${JSON.stringify(reply.body).slice(0, 300)}`
  return undefined
}

// ---------------------------------------------------------------------------------------------
// CPU profile summary (--profile)

interface ProfileNode { id: number, callFrame: { functionName: string, url: string, lineNumber: number } }
interface CpuProfile { nodes: ProfileNode[], startTime: number, samples?: number[], timeDeltas?: number[] }

/** Monotonic microseconds: the clock of V8's CPU profile timestamps (CLOCK_MONOTONIC on Linux). */
const monotonicMicros = () => Number(process.hrtime.bigint() / 1000n)

/** Self time by area and function, counting only samples inside `window` (the measured rounds). */
function summarizeProfile (file: string, window: { start: number, end: number }): string[] {
  const profile = JSON.parse(readFileSync(file, 'utf8')) as CpuProfile
  const byId = new Map(profile.nodes.map((node) => [node.id, node]))
  const self = new Map<number, number>()
  const samples = profile.samples ?? []
  const deltas = profile.timeDeltas ?? []
  let at = profile.startTime
  let outside = 0
  for (let i = 0; i < samples.length; i++) {
    at += deltas[i] ?? 0
    const micros = deltas[i + 1] ?? 0
    if (at < window.start || at > window.end) {
      outside += micros
      continue
    }
    self.set(samples[i]!, (self.get(samples[i]!) ?? 0) + micros)
  }
  const byFunction = new Map<string, number>()
  const byArea = new Map<string, number>()
  let busy = 0
  let idle = 0
  for (const [id, micros] of self) {
    const frame = byId.get(id)!.callFrame
    if (frame.functionName === '(idle)') {
      idle += micros
      continue
    }
    busy += micros
    const url = frame.url
    let area: string
    const pkg = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url)
    if (pkg !== null) area = pkg[1]!
    else if (url.startsWith('node:')) area = url
    else if (url.startsWith('file://')) area = `sso-attrs ${relative(root, fileURLToPath(url))}`
    else area = frame.functionName.startsWith('(') ? frame.functionName : '(native)'
    byArea.set(area, (byArea.get(area) ?? 0) + micros)
    const where = url === '' ? '' : ` ${pkg !== null ? pkg[1]! + '/' + basename(url) : url.startsWith('file://') ? relative(root, fileURLToPath(url)) : url}:${frame.lineNumber + 1}`
    const key = `${frame.functionName === '' ? '(anonymous)' : frame.functionName}${where}`
    byFunction.set(key, (byFunction.get(key) ?? 0) + micros)
  }
  const top = (map: Map<string, number>, n: number) => [...map].sort((a, b) => b[1] - a[1]).slice(0, n)
    .map(([name, micros]) => `| ${name.replace(/\|/g, '\\|')} | ${fmt(micros / 1000)} | ${fmt((100 * micros) / busy, 1)} % |`)
  return [
    `Service process during the measured rounds only (start-up, population and warm-up left out: ${fmt(outside / 1e6, 1)} s of samples): ` +
      `busy ${fmt(busy / 1e6, 1)} s, idle ${fmt(idle / 1e6, 1)} s (idle includes the baseline's turns). Self time:`,
    '',
    '| package / module | self ms | of busy |',
    '|---|---:|---:|',
    ...top(byArea, 15),
    '',
    '| function | self ms | of busy |',
    '|---|---:|---:|',
    ...top(byFunction, 25)
  ]
}

// ---------------------------------------------------------------------------------------------

async function main (): Promise<void> {
  const startedAt = Date.now()
  const serverJs = join(root, 'dist/src/server.js')
  if (!existsSync(serverJs)) throw new Error(`${serverJs} is missing: run npm run build first (npm run bench does)`)
  const { RedisServer, freePort } = await import(new URL('test/fixtures/redis.ts', `file://${root}/`).href) as RedisFixtureModule

  const loadAtStart = os.loadavg()
  const { pinning, note: pinNote } = planPinning()
  if (pinning !== undefined) pin(process.pid, pinning.loadgen)
  log(pinNote)
  log(`options: ${JSON.stringify(opts)}`)

  const tmp = mkdtempSync(join(os.tmpdir(), 'sso-attrs-bench-'))
  dirsOnExit.add(tmp)
  cleanups.push(() => {
    rmSync(tmp, { recursive: true, force: true })
    dirsOnExit.delete(tmp)
  })

  // Redis
  const redisServer = await RedisServer.start()
  dirsOnExit.add(redisServer.dir)
  cleanups.push(async () => {
    await redisServer.close()
    dirsOnExit.delete(redisServer.dir)
  })
  const admin = redisServer.client()
  cleanups.push(() => admin.disconnect())
  const redisInfo = parseInfo(await admin.info('server'))
  const redisPid = Number(redisInfo.get('process_id'))
  killOnExit.add(redisPid)
  if (pinning !== undefined) pin(redisPid, pinning.redis)
  const redisVersion = redisInfo.get('redis_version') ?? '?'
  log(`redis-server ${redisVersion} on port ${redisServer.port} (pid ${redisPid})`)

  // UST keys: an ES256 key pair; the service gets the public half as a JWKS file.
  const { privateKey, publicKey } = await generateKeyPair('ES256', { extractable: true })
  const jwksFile = join(tmp, 'jwks.json')
  writeFileSync(jwksFile, JSON.stringify({ keys: [{ ...await exportJWK(publicKey), kid: KID, alg: 'ES256', use: 'sig' }] }))
  const mint = async (index: number, kind: string): Promise<string> => await new SignJWT({ sid: randomUUID(), roles: ['user'] })
    .setProtectedHeader({ alg: 'ES256', kid: KID, typ: 'JWT' })
    .setIssuer(ISSUER)
    .setAudience(AUDIENCE)
    .setSubject(`bench-${kind}-${index}`)
    .setIssuedAt()
    .setExpirationTime('2h')
    .sign(privateKey)

  // The service, in production mode, with only the environment it needs.
  const servicePort = await freePort()
  const profileDir = join(tmp, 'profile')
  const baseEnv = { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: process.env.HOME ?? tmp }
  const service = await startServer('service', [...(opts.profile ? ['--cpu-prof', `--cpu-prof-dir=${profileDir}`] : []), serverJs], {
    ...baseEnv,
    NODE_ENV: 'production',
    HOST: '127.0.0.1',
    PORT: String(servicePort),
    LOG_LEVEL: 'warn',
    REDIS_URL: redisServer.url,
    SSO_ISSUER: ISSUER,
    SSO_AUDIENCE: AUDIENCE,
    SSO_APPS: `${APP},Portal`,
    SSO_JWKS_FILE: jwksFile,
    SSO_ENCRYPTION_KEYS: `bench:${randomBytes(32).toString('base64url')}`,
    // Rate limiting stays on (its cost is part of the service) with a budget no bench reaches.
    SSO_RATE_LIMIT_MAX: String(RATE_LIMIT_MAX),
    ...serviceEnvOverrides()
  }, servicePort, pinning?.server)
  const rss = { boot: rssMiB(service.pid), beforeLoad: Number.NaN, afterLoad: Number.NaN, maxDuringLoad: 0 }
  log(`service on port ${service.port} (pid ${service.pid}), RSS ${fmt(rss.boot, 1)} MiB`)
  const commandsAtStart = await commandStats(admin)

  // Sessions: one UST each, distinct sid.
  const mintStarted = Date.now()
  const tokens = await Promise.all(Array.from({ length: opts.sessions }, async (_, i) => await mint(i, 's')))
  const namesSessions = Math.max(10, Math.min(200, Math.floor(opts.sessions / 10)))
  const namesTokens = await Promise.all(Array.from({ length: namesSessions }, async (_, i) => await mint(i, 'n')))
  const memorySessions = Math.ceil(opts.memoryAttrs / MEMORY_ATTRS_PER_SESSION)
  const memoryTokens = await Promise.all(Array.from({ length: memorySessions }, async (_, i) => await mint(i, 'm')))
  log(`minted ${tokens.length + namesTokens.length + memoryTokens.length} ES256 USTs in ${Date.now() - mintStarted} ms`)

  // Data: every session has a plain and an encrypted 100-byte value and b0..b19; the names
  // sessions have 100 attributes each.
  const prepStarted = Date.now()
  const fail = (what: string, reply: Reply) => new Error(`${what}: HTTP ${reply.status} ${JSON.stringify(reply.body).slice(0, 500)}`)
  await pool(tokens, 16, async (token) => {
    const data = [
      { name: 'plain', value: value100() },
      { name: 'secret', value: value100(), encrypt: true },
      ...Array.from({ length: BATCH }, (_, j) => ({ name: `b${j}`, value: value100() }))
    ]
    const reply = await call(service.port, 'PUT', ATTR_PATH, token, { current_app: APP, data })
    if (reply.status !== 200) throw fail('populating a session', reply)
  })
  await pool(namesTokens, 16, async (token) => {
    const data = Array.from({ length: NAMES_PER_SESSION }, (_, j) => ({ name: `n${String(j).padStart(3, '0')}`, value: value100() }))
    const reply = await call(service.port, 'PUT', ATTR_PATH, token, { current_app: APP, data })
    if (reply.status !== 200) throw fail('populating a names session', reply)
  })
  log(`populated ${tokens.length} sessions x ${BATCH + 2} attributes and ${namesTokens.length} sessions x ${NAMES_PER_SESSION} in ${Date.now() - prepStarted} ms`)

  // Redis memory per attribute: used_memory before and after writing memoryAttrs attributes
  // of 100-byte values through the service (100 a session, one batch PUT each).
  let memory: { attributes: number, sessions: number, keys: number, bytes: number, perAttribute: number } | undefined
  if (opts.memoryAttrs > 0) {
    const memoryBefore = Number(parseInfo(await admin.info('memory')).get('used_memory'))
    const keysBefore = await admin.dbsize()
    let memoryWritten = 0
    await pool(memoryTokens, 16, async (token, i) => {
      const count = Math.min(MEMORY_ATTRS_PER_SESSION, opts.memoryAttrs - i * MEMORY_ATTRS_PER_SESSION)
      const data = Array.from({ length: count }, (_, j) => ({ name: `m${String(j).padStart(3, '0')}`, value: value100() }))
      const reply = await call(service.port, 'PUT', ATTR_PATH, token, { current_app: APP, data })
      if (reply.status !== 200) throw fail('writing the memory sample', reply)
      memoryWritten += count
    })
    await sleep(200)
    const memoryAfter = Number(parseInfo(await admin.info('memory')).get('used_memory'))
    memory = {
      attributes: memoryWritten,
      sessions: memorySessions,
      keys: (await admin.dbsize()) - keysBefore,
      bytes: memoryAfter - memoryBefore,
      perAttribute: (memoryAfter - memoryBefore) / memoryWritten
    }
    log(`Redis memory: ${fmt(memory.bytes / 1048576, 1)} MiB for ${memory.attributes} attributes = ${fmt(memory.perAttribute, 1)} B/attribute`)
  }

  // Bodies the baseline mirrors: the service's own GET single and PUT single responses.
  const sampleGet = await call(service.port, 'GET', `${ATTR_PATH}?current_app=${APP}&name=plain`, tokens[0]!)
  const putBody = JSON.stringify({ current_app: APP, name: 'put-plain', value: value100() })
  const samplePut = await call(service.port, 'PUT', ATTR_PATH, tokens[0]!, JSON.parse(putBody))
  if (sampleGet.status !== 200 || samplePut.status !== 200) throw fail('sample request', sampleGet.status !== 200 ? sampleGet : samplePut)
  const template = (reply: Reply) => JSON.stringify(Object.fromEntries(Object.entries(reply.body).filter(([key]) => key !== 'cid')))
  const baselinePort = await freePort()
  const baseline = await startServer('baseline', [join(root, 'scripts/bench-baseline.mjs')], {
    ...baseEnv,
    NODE_ENV: 'production',
    PORT: String(baselinePort),
    LOG_LEVEL: 'warn',
    BENCH_GET_TEMPLATE: template(sampleGet),
    BENCH_PUT_TEMPLATE: template(samplePut),
    BENCH_REDIS_URL: redisServer.url
  }, baselinePort, pinning?.server)
  log(`baseline on port ${baseline.port} (pid ${baseline.pid})`)

  const found = (encrypted: boolean) => (reply: Reply) => okCheck(reply) ??
    (reply.body.found !== true || reply.body.is_encrypted !== encrypted || typeof reply.body.value !== 'string' || (reply.body.value).length !== VALUE_BYTES - 2
      ? `unexpected body ${JSON.stringify(reply.body).slice(0, 300)}`
      : undefined)
  const batchQuery = Array.from({ length: BATCH }, (_, j) => `data=b${j}`).join('&')
  const scenarios: Scenario[] = [
    { key: 'base-get', label: 'baseline GET (bare Fastify)', target: 'baseline', method: 'GET', path: `${ATTR_PATH}?current_app=${APP}&name=plain`, tokens, rotate: false, items: 1, check: okCheck },
    { key: 'base-put', label: 'baseline PUT (bare Fastify)', target: 'baseline', method: 'PUT', path: ATTR_PATH, body: putBody, tokens, rotate: false, items: 1, check: okCheck },
    { key: 'floor-get', label: 'floor GET (bare Fastify + one ioredis EVALSHA)', target: 'baseline', method: 'GET', path: `/floor${ATTR_PATH}?current_app=${APP}&name=plain`, tokens, rotate: false, items: 1, check: okCheck },
    { key: 'get-plain', label: 'GET single plain', target: 'service', method: 'GET', path: `${ATTR_PATH}?current_app=${APP}&name=plain`, tokens, rotate: true, items: 1, check: found(false) },
    { key: 'get-secret', label: 'GET single encrypted (decrypt)', target: 'service', method: 'GET', path: `${ATTR_PATH}?current_app=${APP}&name=secret`, tokens, rotate: true, items: 1, check: found(true) },
    { key: 'put-plain', label: 'PUT single plain', target: 'service', method: 'PUT', path: ATTR_PATH, body: putBody, tokens, rotate: true, items: 1, check: okCheck },
    {
      key: 'put-secret',
      label: 'PUT single encrypted + expiration',
      target: 'service',
      method: 'PUT',
      path: ATTR_PATH,
      body: JSON.stringify({ current_app: APP, name: 'put-secret', value: value100(), encrypt: true, expiration: EXPIRATION }),
      tokens,
      rotate: true,
      items: 1,
      check: (reply) => okCheck(reply) ?? (typeof reply.body.expiration_time !== 'string' ? 'no expiration_time in the reply' : undefined)
    },
    {
      key: 'put-batch',
      label: `PUT batch of ${BATCH}`,
      target: 'service',
      method: 'PUT',
      path: ATTR_PATH,
      body: JSON.stringify({ current_app: APP, data: Array.from({ length: BATCH }, (_, j) => ({ name: `w${j}`, value: value100() })) }),
      tokens,
      rotate: true,
      items: BATCH,
      singleOf: 'put-plain',
      check: (reply) => okCheck(reply) ?? (Object.keys(reply.body.result as object).length !== BATCH ? 'result has the wrong size' : undefined)
    },
    {
      key: 'get-batch',
      label: `GET batch of ${BATCH}`,
      target: 'service',
      method: 'GET',
      path: `${ATTR_PATH}?current_app=${APP}&${batchQuery}`,
      tokens,
      rotate: true,
      items: BATCH,
      singleOf: 'get-plain',
      check: (reply) => {
        const problem = okCheck(reply)
        if (problem !== undefined) return problem
        const result = reply.body.result as Record<string, { found?: boolean }>
        return Object.values(result).filter((item) => item.found === true).length !== BATCH ? 'not every batch item found' : undefined
      }
    },
    {
      key: 'names',
      label: `names (${NAMES_PER_SESSION}-attribute session)`,
      target: 'service',
      method: 'GET',
      path: `${ATTR_PATH}/names?current_app=${APP}`,
      tokens: namesTokens,
      rotate: true,
      items: 1,
      check: (reply) => okCheck(reply) ?? (!Array.isArray(reply.body.result) || reply.body.result.length !== NAMES_PER_SESSION ? 'names result has the wrong size' : undefined)
    }
  ]
  const servers = { service, baseline }
  const known = scenarios.filter((s) => s.target === 'service').map((s) => s.key)
  const unknown = opts.only.filter((key) => !known.includes(key))
  if (unknown.length > 0) throw new Error(`--only: unknown scenario ${unknown.join(', ')} (known: ${known.join(', ')})`)
  if (opts.only.length > 0) {
    // A batch scenario needs its single form for the batch gain.
    const wanted = new Set(opts.only)
    for (const s of scenarios) if (wanted.has(s.key) && s.singleOf !== undefined) wanted.add(s.singleOf)
    scenarios.splice(0, scenarios.length, ...scenarios.filter((s) => s.target === 'baseline' || wanted.has(s.key)))
  }

  // Sanity: every scenario's request is answered correctly before it is measured.
  for (const scenario of scenarios) {
    const server = servers[scenario.target]
    const reply = await call(server.port, scenario.method, scenario.path, scenario.tokens[1]!, scenario.body === undefined ? undefined : JSON.parse(scenario.body))
    const problem = scenario.check(reply)
    if (problem !== undefined) throw new Error(`${scenario.label}: ${problem}`)
  }
  log('every scenario answers correctly')

  // Which commands a request itself sends to Redis, as opposed to the ones its Lua script runs
  // (INFO commandstats counts both; MONITOR marks the latter with the source "lua"). A short
  // sequential sample per scenario, before the load.
  // Scripts the service runs beside requests, not for one: the rate-limit sync (every
  // SSO_RATE_LIMIT_SYNC_MS, for every caller at once) and a session's first entry in its
  // user's index. Told apart by their SHA1, the name EVALSHA gives them.
  const backgroundScripts = new Map(['rate', 'admit'].map((name) => [
    createHash('sha1').update(readFileSync(join(root, 'src', 'store', 'redis-scripts', `${name}.lua`), 'utf8')).digest('hex'),
    name === 'rate' ? 'rate-limit sync' : 'session index'
  ]))
  const SAMPLE = 50
  const sent = new Map<string, Map<string, number>>()
  const background = new Map<string, Map<string, number>>()
  for (const scenario of scenarios.filter((s) => s.target === 'service')) {
    const monitor = await admin.monitor()
    const seen = new Map<string, number>()
    const besides = new Map<string, number>()
    background.set(scenario.key, besides)
    monitor.on('monitor', (_time: string, args: string[], source: string) => {
      if (source === 'lua' || args[0] === undefined) return
      const name = args[0].toLowerCase()
      const task = name === 'evalsha' ? backgroundScripts.get(String(args[1])) : undefined
      if (task !== undefined) besides.set(task, (besides.get(task) ?? 0) + 1)
      else seen.set(name, (seen.get(name) ?? 0) + 1)
    })
    await sleep(50)
    for (let i = 0; i < SAMPLE; i++) {
      const reply = await call(service.port, scenario.method, scenario.path, scenario.tokens[(i * 37) % scenario.tokens.length]!, scenario.body === undefined ? undefined : JSON.parse(scenario.body))
      if (reply.status !== 200) throw fail(`${scenario.label} (MONITOR sample)`, reply)
    }
    await sleep(200)
    monitor.disconnect()
    sent.set(scenario.key, new Map([...seen].map(([name, count]) => [name, count / SAMPLE])))
  }
  log(`commands sent per request (MONITOR): ${[...sent].map(([key, names]) => `${key}: ${[...names].map(([n, c]) => `${n} ${fmt(c, 2)}`).join(', ')}`).join('; ')}`)
  const backgroundNote = [...background].map(([key, tasks]) => `${key}: ${[...tasks].map(([task, count]) => `${count} ${task}`).join(', ') || 'none'}`).join('; ')
  log(`background scripts during the MONITOR samples (not counted per request): ${backgroundNote}`)

  let runIndex = 0
  async function drive (scenario: Scenario, duration: number): Promise<RoundStats> {
    const server = servers[scenario.target]
    const alive = () => {
      for (const s of Object.values(servers)) {
        if (s.child.exitCode !== null || s.child.signalCode !== null) throw new Error(`${s.name} exited (${s.child.exitCode ?? s.child.signalCode}) during ${scenario.label}`)
      }
    }
    alive()
    const tokenList = scenario.tokens
    let next = Math.floor(Math.random() * tokenList.length) + (runIndex++) * 7919
    const contentType: Record<string, string> = scenario.body === undefined ? {} : { 'content-type': 'application/json' }
    // Rotation rebuilds every request in autocannon (setupRequest), which costs the load
    // generator; the baseline ignores the token, so it gets the same bytes, built once.
    const request: AcRequest = {
      method: scenario.method,
      path: scenario.path,
      ...(scenario.body === undefined ? {} : { body: scenario.body }),
      ...(scenario.rotate
        ? {
            headers: contentType,
            setupRequest: (req: AcRequestData) => {
              req.headers.authorization = `Bearer ${tokenList[next++ % tokenList.length]!}`
              return req
            }
          }
        : { headers: { ...contentType, authorization: `Bearer ${tokenList[0]!}` } })
    }
    const latencies = new LatencyRecorder()
    let failures = 0
    const commandsBefore = await commandStats(admin)
    const redisCpuBefore = await redisCpuSeconds(admin)
    const cpuBefore = processCpuMicros(server.pid)
    const errorLinesBefore = server.errorLines()
    const loadgenBefore = process.cpuUsage()
    const serverCoreBefore = cpuJiffies(pinning?.server)
    const loadgenCoreBefore = cpuJiffies(pinning?.loadgen)
    const wallBefore = performance.now()
    const instance = autocannon({ url: `http://127.0.0.1:${server.port}`, connections: opts.connections, duration, timeout: 10, requests: [request] })
    instance.on('response', (_client, statusCode, _bytes, responseTime) => {
      latencies.push(responseTime)
      if (statusCode < 200 || statusCode >= 300) failures++
    })
    const result = await instance
    const loadgen = process.cpuUsage(loadgenBefore)
    const serverCoreBusy = busyPercent(serverCoreBefore, cpuJiffies(pinning?.server))
    const loadgenCoreBusy = busyPercent(loadgenCoreBefore, cpuJiffies(pinning?.loadgen))
    const wall = performance.now() - wallBefore
    await sleep(150) // the server finishes what was in flight when autocannon stopped
    alive()
    const cpu = processCpuMicros(server.pid) - cpuBefore
    const wallWithTail = performance.now() - wallBefore
    const redisCpu = await redisCpuSeconds(admin) - redisCpuBefore
    const commands = commandDelta(commandsBefore, await commandStats(admin))
    const requests = result.requests.total
    // Per-request costs divide by the requests sent: those still in flight when autocannon
    // stopped (at most one per connection) were served all the same.
    const sentRequests = Math.max(result.requests.sent, requests)
    const totalCommands = [...commands.values()].reduce((a, b) => a + b, 0)
    if (scenario.target === 'service') rss.maxDuringLoad = Math.max(rss.maxDuringLoad, rssMiB(service.pid))
    return {
      rps: requests / result.duration,
      p50: latencies.percentile(50),
      p99: latencies.percentile(99),
      requests,
      failures: failures + result.errors + result.timeouts,
      sentRequests,
      commandsPerRequest: totalCommands / sentRequests,
      commands,
      serverCpuUs: cpu / sentRequests,
      redisCpuUs: (redisCpu * 1e6) / sentRequests,
      loadgenCpuPct: (100 * (loadgen.user + loadgen.system)) / (wall * 1000),
      serverCoreBusy,
      loadgenCoreBusy,
      serverCpuPct: (100 * cpu) / (wallWithTail * 1000),
      serverErrors: server.errorLines() - errorLinesBefore,
      load1: os.loadavg()[0]!
    }
  }

  // Warm-up, then the rounds round-robin across scenarios, so that noise from other work on
  // the machine spreads over all of them and the ratios compare runs made side by side.
  const loadStarted = Date.now()
  if (opts.warmup > 0) {
    for (const scenario of scenarios) {
      log(`warm-up ${scenario.label}`)
      await drive(scenario, opts.warmup)
    }
  }
  rss.beforeLoad = rssMiB(service.pid)
  const profileWindow = { start: monotonicMicros(), end: Number.POSITIVE_INFINITY }
  const rounds = new Map<string, RoundStats[]>(scenarios.map((s) => [s.key, []]))
  for (let round = 1; round <= opts.rounds; round++) {
    for (const scenario of scenarios) {
      const stats = await drive(scenario, opts.duration)
      rounds.get(scenario.key)!.push(stats)
      log(`round ${round}/${opts.rounds} ${scenario.label.padEnd(36)} ${fmt(stats.rps).padStart(7)} req/s  p50 ${fmt(stats.p50, 2)} ms  p99 ${fmt(stats.p99, 2)} ms` +
        `  cmds/req ${fmt(stats.commandsPerRequest, 2)}  server ${fmt(stats.serverCpuUs)} µs/req  loadgen ${fmt(stats.loadgenCpuPct)} %` +
        `  core: server ${fmt(stats.serverCpuPct)} % of ${fmt(stats.serverCoreBusy)} % busy` +
        `  load ${fmt(stats.load1, 1)}` +
        (stats.failures > 0 ? `  FAILURES ${stats.failures}` : '') + (stats.serverErrors > 0 ? `  SERVER ERRORS ${stats.serverErrors}` : ''))
    }
  }
  profileWindow.end = monotonicMicros()
  if (opts.profile) log(`profile window (monotonic µs): ${profileWindow.start},${profileWindow.end}`)
  rss.afterLoad = rssMiB(service.pid)
  const baselineRss = rssMiB(baseline.pid)
  const loadSeconds = (Date.now() - loadStarted) / 1000
  const commandsAtEnd = await commandStats(admin)
  const loadAtEnd = os.loadavg()

  // Aggregate: medians of rounds; ratios are medians of per-round ratios (paired runs).
  interface Row {
    scenario: Scenario
    rps: number
    p50: number
    p99: number
    ratio: number
    /** Commands the request sends to Redis (the MONITOR sample's command names), per request under load. */
    sentCmds: number
    /** Every command Redis ran, inside scripts included, per request under load. */
    allCmds: number
    sample: string
    commandMix: string
    serverCpuUs: number
    redisCpuUs: number
    attrsPerSecond: number
    batchGain: number
    failures: number
    loadgenCpuPct: number
    serverCoreBusy: number
    loadgenCoreBusy: number
    serverCpuPct: number
    /** Median of (core busy − the server's own share): other work on the server's core. */
    otherOnServerCore: number
    serverErrors: number
    roundsRps: number[]
    roundsLoad: number[]
  }
  const baselineOf = (method: Method) => method === 'GET' ? 'base-get' : 'base-put'
  const pairedRatio = (a: RoundStats[], b: RoundStats[], scale = 1) => median(a.map((stats, i) => (stats.rps * scale) / (b[i]?.rps ?? Number.NaN)))
  const rows: Row[] = scenarios.map((scenario) => {
    const stats = rounds.get(scenario.key)!
    const mixTotals = new Map<string, number>()
    let requestTotal = 0
    for (const round of stats) {
      requestTotal += round.sentRequests
      for (const [name, calls] of round.commands) mixTotals.set(name, (mixTotals.get(name) ?? 0) + calls)
    }
    return {
      scenario,
      rps: median(stats.map((s) => s.rps)),
      p50: median(stats.map((s) => s.p50)),
      p99: median(stats.map((s) => s.p99)),
      ratio: pairedRatio(stats, rounds.get(baselineOf(scenario.method))!),
      sentCmds: median(stats.map((s) => [...s.commands].filter(([name]) => sent.get(scenario.key)?.has(name) === true).reduce((sum, [, calls]) => sum + calls, 0) / s.sentRequests)),
      allCmds: median(stats.map((s) => s.commandsPerRequest)),
      sample: [...(sent.get(scenario.key) ?? [])].map(([name, perRequest]) => `${name} ${fmt(perRequest, 2)}`).join(', ') || 'none',
      commandMix: [...mixTotals].sort((a, b) => b[1] - a[1]).map(([name, calls]) => `${name} ${fmt(calls / requestTotal, 2)}`).join(', ') || 'none',
      serverCpuUs: median(stats.map((s) => s.serverCpuUs)),
      redisCpuUs: median(stats.map((s) => s.redisCpuUs)),
      attrsPerSecond: median(stats.map((s) => s.rps)) * scenario.items,
      batchGain: scenario.singleOf === undefined ? Number.NaN : pairedRatio(stats, rounds.get(scenario.singleOf)!, scenario.items),
      failures: stats.reduce((sum, s) => sum + s.failures, 0),
      loadgenCpuPct: median(stats.map((s) => s.loadgenCpuPct)),
      serverCoreBusy: median(stats.map((s) => s.serverCoreBusy)),
      loadgenCoreBusy: median(stats.map((s) => s.loadgenCoreBusy)),
      serverCpuPct: median(stats.map((s) => s.serverCpuPct)),
      otherOnServerCore: median(stats.map((s) => Math.max(0, s.serverCoreBusy - s.serverCpuPct))),
      serverErrors: stats.reduce((sum, s) => sum + s.serverErrors, 0),
      roundsRps: stats.map((s) => s.rps),
      roundsLoad: stats.map((s) => s.load1)
    }
  })
  const row = (key: string) => rows.find((r) => r.scenario.key === key)

  // Whole-run Redis facts: scripts loaded, SCAN/KEYS.
  const runCommands = commandDelta(commandsAtStart, commandsAtEnd)
  const allCommands = commandDelta(new Map(), commandsAtEnd)
  const scriptLoads = (allCommands.get('eval') ?? 0) + (allCommands.get('script|load') ?? 0)
  const scriptCount = readdirSync(join(root, 'dist/src/store/redis-scripts')).filter((f) => f.endsWith('.lua') && f !== 'prelude.lua').length
  const noscript = commandsAtEnd.get('evalsha')?.failed ?? 0
  const scanKeys = (allCommands.get('scan') ?? 0) + (allCommands.get('keys') ?? 0)

  // Profile: stop the service now so that it writes the profile.
  let profileLines: string[] = []
  if (opts.profile) {
    await service.stop()
    const file = readdirSync(profileDir).find((f) => f.endsWith('.cpuprofile'))
    if (file === undefined) profileLines = ['(no profile was written)']
    else {
      profileLines = summarizeProfile(join(profileDir, file), profileWindow)
      if (flags['profile-out'] !== undefined) {
        mkdirSync(dirname(flags['profile-out']), { recursive: true })
        copyFileSync(join(profileDir, file), flags['profile-out'])
        profileLines.push('', `Profile kept in ${flags['profile-out']}.`)
      }
    }
  }

  // ------------------------------------------------------------------ report
  const services = rows.filter((r) => r.scenario.target === 'service')
  const singles = ['get-plain', 'get-secret', 'put-plain', 'put-secret'].map(row).filter((r) => r !== undefined)
  const worstSingleP99 = singles.length === 0 ? undefined : singles.reduce((worst, r) => (r.p99 > worst.p99 ? r : worst))
  const maxCmds = Math.max(...services.map((r) => r.sentCmds))
  const minCmds = Math.min(...services.map((r) => r.sentCmds))
  const sampleOk = services.every((r) => {
    const names = sent.get(r.scenario.key) ?? new Map<string, number>()
    const total = [...names.values()].reduce((a, b) => a + b, 0)
    return total === 1 && [...names.keys()].every((name) => name === 'evalsha' || name === 'eval' || name === 'evalsha_ro' || name === 'fcall')
  })
  const memoryLimit = 2 * VALUE_BYTES + 100
  const rssGrowth = (rss.afterLoad - rss.beforeLoad) / rss.beforeLoad
  const failures = rows.reduce((sum, r) => sum + r.failures, 0)
  const verdict = (met: boolean) => (met ? 'met' : '**missed**')
  const NOT_RUN: [string, string] = ['not run', '–']
  const rowTarget = (label: string, key: string, value: (r: Row) => number, limit: number, digits: number, unit = ''): [string, string, string] => {
    const r = row(key)
    if (r === undefined) return [label, ...NOT_RUN]
    return [label, `${fmt(value(r), digits)}${unit}`, verdict(value(r) >= limit)]
  }
  const targets: Array<[string, string, string]> = [
    rowTarget('GET single plain ≥ 0.80 × baseline GET', 'get-plain', (r) => r.ratio, 0.8, 2),
    rowTarget('GET single encrypted ≥ 0.80 × baseline GET', 'get-secret', (r) => r.ratio, 0.8, 2),
    rowTarget('PUT single encrypted + expiration ≥ 0.70 × baseline PUT', 'put-secret', (r) => r.ratio, 0.7, 2),
    rowTarget(`PUT batch of ${BATCH} ≥ 15 × attributes/s of PUT single`, 'put-batch', (r) => r.batchGain, 15, 1, ' ×'),
    rowTarget(`GET batch of ${BATCH} ≥ 15 × attributes/s of GET single`, 'get-batch', (r) => r.batchGain, 15, 1, ' ×'),
    worstSingleP99 === undefined
      ? ['p99 < 10 ms for single operations (50 connections)', ...NOT_RUN]
      : ['p99 < 10 ms for single operations (50 connections)', `worst ${fmt(worstSingleP99.p99, 2)} ms (${worstSingleP99.scenario.label})`, verdict(worstSingleP99.p99 < 10)],
    ['one Redis round trip per request (EVALSHA)', `${fmt(minCmds, 3)}–${fmt(maxCmds, 3)} commands sent per request under load; MONITOR sample: ${sampleOk ? 'one EVALSHA per request in every scenario' : services.map((r) => `${r.scenario.key}: ${r.sample}`).join('; ')}; beside the requests, over the ${SAMPLE}-request samples: ${backgroundNote}`, verdict(maxCmds <= 1.02 && minCmds >= 0.98 && sampleOk)],
    ['Lua scripts loaded once', `${scriptLoads} EVAL/SCRIPT LOAD for ${scriptCount} scripts over the run (${noscript} NOSCRIPT replies)`, verdict(scriptLoads <= scriptCount)],
    ['no SCAN/KEYS', `${scanKeys} calls`, verdict(scanKeys === 0)],
    memory === undefined
      ? [`Redis memory ≤ ${memoryLimit} B per attribute (100-byte value)`, 'not measured (--memory-attrs 0)', '–']
      : [`Redis memory ≤ ${memoryLimit} B per attribute (100-byte value)`, `${fmt(memory.perAttribute, 1)} B`, verdict(memory.perAttribute <= memoryLimit)],
    ['service RSS flat under load (≤ 25 % growth over the measured rounds)', `${fmt(rss.beforeLoad, 1)} → ${fmt(rss.afterLoad, 1)} MiB (${rssGrowth >= 0 ? '+' : ''}${fmt(100 * rssGrowth, 1)} %)`, verdict(rssGrowth <= 0.25)]
  ]

  const table = [
    '| scenario | req/s | p50 ms | p99 ms | ratio to baseline | Redis cmds/req sent (run, incl. in scripts) | service CPU µs/req | Redis CPU µs/req | attributes/s | batch gain | errors |',
    '|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|',
    ...rows.map((r) => {
      const isBaseline = r.scenario.target === 'baseline'
      const isReference = r.scenario.key === baselineOf(r.scenario.method)
      return `| ${r.scenario.label} | ${fmt(r.rps)} | ${fmt(r.p50, 2)} | ${fmt(r.p99, 2)} | ${isReference ? '1 (ref.)' : fmt(r.ratio, 2)} | ${isBaseline ? fmt(r.allCmds, 2) : `${fmt(r.sentCmds, 2)} (${fmt(r.allCmds, 1)})`} | ` +
        `${fmt(r.serverCpuUs)}${isBaseline ? ' (baseline)' : ''} | ${isReference ? '–' : fmt(r.redisCpuUs)} | ${fmt(r.attrsPerSecond)} | ${Number.isFinite(r.batchGain) ? `${fmt(r.batchGain, 1)} ×` : '–'} | ${r.failures}${r.serverErrors > 0 ? ` (+${r.serverErrors} logged)` : ''} |`
    })
  ]
  const details = [
    '| scenario | req/s per round | load average after each round | sent to Redis per request (MONITOR sample) | run by Redis per request, scripts included (load) | server process CPU | server core busy (not the server process) | load generator CPU | load-generator core busy |',
    '|---|---|---|---|---|---:|---:|---:|---:|',
    ...rows.map((r) => `| ${r.scenario.label} | ${r.roundsRps.map((v) => fmt(v)).join(' / ')} | ${r.roundsLoad.map((v) => fmt(v, 1)).join(' / ')} | ${r.scenario.target === 'baseline' ? '–' : r.sample} | ${r.commandMix} | ` +
      `${fmt(r.serverCpuPct)} % | ${fmt(r.serverCoreBusy)} % (${fmt(r.otherOnServerCore)} %) | ${fmt(r.loadgenCpuPct)} % | ${fmt(r.loadgenCoreBusy)} % |`)
  ]
  // How close the service is to what any service with one Redis round trip per request gets.
  function floorNote (): string {
    const floor = row('floor-get')
    const get = row('get-plain')
    if (floor === undefined || get === undefined) return '- Floor: not run.'
    const floorStats = rounds.get('floor-get')!
    const ofFloor = pairedRatio(rounds.get('get-plain')!, floorStats)
    return `- Floor (bare Fastify + one ioredis EVALSHA, auto-pipelining, on the baseline's core): ${fmt(floor.rps)} req/s = ${fmt(floor.ratio, 2)} of the bare GET, ` +
      `${fmt(floor.serverCpuUs)} µs of CPU per request against the bare route's ${fmt(row('base-get')?.serverCpuUs ?? Number.NaN)}. GET single plain is **${fmt(ofFloor, 2)} of the floor** (${fmt(get.serverCpuUs)} µs per request).`
  }
  const targetTable = ['| target (issue 5) | measured | |', '|---|---|---|', ...targets.map(([t, m, v]) => `| ${t} | ${m} | ${v} |`)]
  const fastifyVersion = (JSON.parse(readFileSync(join(root, 'node_modules/fastify/package.json'), 'utf8')) as { version: string }).version
  const autocannonVersion = (JSON.parse(readFileSync(join(root, 'node_modules/autocannon/package.json'), 'utf8')) as { version: string }).version
  const totalSeconds = (Date.now() - startedAt) / 1000
  const saturated = rows.filter((r) => r.loadgenCpuPct >= 90 || (pinning !== undefined && r.loadgenCoreBusy >= 95))
  const date = new Date().toISOString().replace(/\.\d+Z$/, 'Z')

  const machine = [
    `- Date: ${date}; total run time ${fmt(totalSeconds)} s (load phase ${fmt(loadSeconds)} s).`,
    `- Machine: ${cpuCount} CPUs (${os.cpus()[0]?.model.trim() ?? 'unknown model'}), ${fmt(os.totalmem() / 2 ** 30, 1)} GiB, Linux ${os.release()}.`,
    `- Node ${process.version}, Redis ${redisVersion}, Fastify ${fastifyVersion}, autocannon ${autocannonVersion}.`,
    `- CPU placement: ${pinNote}.`,
    `- Load average (1/5/15 min) at start ${loadAtStart.map((v) => fmt(v, 2)).join(' / ')}, at end ${loadAtEnd.map((v) => fmt(v, 2)).join(' / ')}` +
      (loadAtStart[0]! > 0.5 ? ': other work was running on the machine, so the figures are noisy.' : '.')
  ]
  const method = [
    `- ${opts.connections} connections; per scenario a ${opts.warmup} s warm-up, then ${opts.rounds} round${opts.rounds > 1 ? 's' : ''} of ${opts.duration} s, run round-robin across the scenarios; figures are medians of the rounds.`,
    `- The service runs as \`node dist/src/server.js\` with NODE_ENV=production, LOG_LEVEL=warn, Redis at ${redisServer.url.replace(/:\d+$/, ':<free port>')}, USTs verified with an ES256 key from a JWKS file (SSO_JWKS_FILE); every other setting at its default (metrics on; rate limiting on, with SSO_RATE_LIMIT_MAX=${fmt(RATE_LIMIT_MAX)} so that no request is refused).`,
    `- ${opts.sessions} distinct sessions, one ES256 UST each (distinct \`sid\`), rotated on every request (\`Authorization: Bearer\`; the service's verified-token cache is left at its default size, so after the population every request is a cache hit); the names scenario rotates over ${namesTokens.length} sessions of ${NAMES_PER_SESSION} attributes. Values are ${VALUE_BYTES}-byte JSON strings; GET inputs go in the query string, PUT inputs in a JSON body.`,
    '- Baseline: `scripts/bench-baseline.mjs`, a bare Fastify 5 app (logger at warn, no schemas, hooks or Redis) on the same path and the same CPU, answering with the service\'s own GET single / PUT single bodies (same envelope, same size, a cid made the same way) and parsing the same PUT body. The floor row is the same app\'s GET plus one EVALSHA through ioredis (auto-pipelining; a one-line script reading a 100-byte hash field over 2,000 keys): the least any service with a Redis round trip per request pays here.',
    '- ratio to baseline: median of the per-round ratios to the baseline run of the same method in the same round. batch gain: attributes/s of the batch form ÷ attributes/s of the single plain form of the same method (per round, median).',
    `- Redis cmds/req sent: the commands a request sends to Redis itself, as opposed to those its Lua script runs. Which ones they are comes from a MONITOR sample of ${SAMPLE} sequential requests per scenario before the load (MONITOR tags script commands "lua"; the EVALSHAs of the rate-limit sync and of a session's first entry in its user's index, told apart by their script's SHA1, run beside the requests rather than for one, and are reported apart); how many per request under load from the \`INFO commandstats\` delta of those commands over the round ÷ requests sent (in-flight ones at the end of a round included). In brackets: every command Redis ran per request, inside scripts included (\`INFO commandstats\` counts both; INFO itself excluded).`,
    '- service CPU µs/req: utime+stime delta of the server process (`/proc/<pid>/stat`) ÷ requests sent (for baseline rows, the baseline process). Redis CPU µs/req: `INFO cpu` delta. Server process CPU: its utime+stime over the round, % of one core. Core busy: `/proc/stat` of the pinned cores; in brackets the part that was not the server process: the kernel\'s loopback network work (about 10–15 % here) and any other process on the machine. errors: non-2xx, socket errors and timeouts seen by autocannon, plus error-level lines the server logged. p50/p99: every response\'s latency as autocannon reports it.'
  ]
  const memoryLines = [
    floorNote(),
    memory === undefined ? '- Redis memory: not measured (--memory-attrs 0).' : `- Redis memory: ${fmt(memory.bytes / 1048576, 1)} MiB of \`used_memory\` for ${fmt(memory.attributes)} attributes (${VALUE_BYTES}-byte values, names of 4 characters, ${fmt(memory.sessions)} sessions of ${MEMORY_ATTRS_PER_SESSION}, ${fmt(memory.keys)} keys) = **${fmt(memory.perAttribute, 1)} bytes per attribute** (target ≤ ${memoryLimit}).`,
    `- Service RSS: ${fmt(rss.boot, 1)} MiB after start, ${fmt(rss.beforeLoad, 1)} MiB before the measured rounds (after population and warm-up), ${fmt(rss.afterLoad, 1)} MiB after them (highest seen between rounds ${fmt(rss.maxDuringLoad, 1)} MiB). Baseline RSS at the end: ${fmt(baselineRss, 1)} MiB.`,
    `- Redis over the whole run: ${scriptLoads} EVAL/SCRIPT LOAD, ${noscript} NOSCRIPT replies, ${scanKeys} SCAN/KEYS; commands Redis ran from the service's start to the end of the load (population and memory sample included, scripts' inner commands included): ${[...runCommands].sort((a, b) => b[1] - a[1]).map(([n, c]) => `${n} ${fmt(c)}`).join(', ')}.`
  ]
  const warnings: string[] = []
  const contaminated = pinning === undefined ? [] : rows.filter((r) => r.otherOnServerCore >= 25)
  if (contaminated.length > 0) {
    warnings.push(`- Work other than the server process took ≥ 25 % of the server's core (median of the rounds; kernel network work alone is about 10–15 %) in: ${contaminated.map((r) => `${r.scenario.label} (${fmt(r.otherOnServerCore)} %)`).join(', ')}. ` +
      'The server did not have its core to itself: its req/s and latencies are understated and the ratios are unreliable; re-run on a quiet machine.')
  }
  const serverErrors = rows.reduce((sum, r) => sum + r.serverErrors, 0)
  if (serverErrors > 0) warnings.push(`- The servers logged ${serverErrors} errors during the rounds (including requests still in flight when a round stopped, which autocannon never sees); see the lines prefixed [service] above.`)
  if (failures > 0) warnings.push(`- **${failures} requests failed** (non-2xx, errors or timeouts): see the errors column; those figures are not valid.`)
  if (saturated.length > 0) warnings.push(`- The load generator used ≥ 90 % of its CPU (or its core was ≥ 95 % busy) in: ${saturated.map((r) => r.scenario.label).join(', ')}; those req/s may be the generator's limit rather than the server's.`)
  if (opts.profile) warnings.push('- The service ran under `--cpu-prof`, which slows it down: use these figures for the profile only.')
  const cachedTokens = tokens.length + namesTokens.length + memoryTokens.length
  if (cachedTokens > TOKEN_CACHE_DEFAULT) warnings.push(`- ${cachedTokens} USTs exceed the service's default token cache (${TOKEN_CACHE_DEFAULT}): some requests paid a full ES256 verification.`)
  if (opts.only.length > 0) warnings.push(`- Only some scenarios ran (--only ${opts.only.join(',')}).`)
  if (flags.quick) warnings.push('- Quick run (`--quick`): short rounds and fewer sessions; indicative only.')

  const report = [
    '# Benchmarks',
    '',
    'Rewritten by `npm run bench` (`scripts/bench.ts`; `npm run bench -- --help` for options, `--quick` for a short run,',
    '`--profile` for a CPU profile of the service). Targets from issue 5. Numbers from one run on a shared machine: compare',
    'ratios within a run rather than absolute figures across runs.',
    '',
    '## Run',
    '',
    ...machine,
    '',
    '## Method',
    '',
    ...method,
    '',
    '## Results',
    '',
    ...table,
    '',
    ...details,
    '',
    ...memoryLines,
    ...(warnings.length > 0 ? ['', '## Warnings', '', ...warnings] : []),
    '',
    '## Targets',
    '',
    ...targetTable,
    ...(profileLines.length > 0 ? ['', '## Where the service\'s CPU time goes (`--profile`)', '', ...profileLines] : []),
    ''
  ].join('\n')

  process.stdout.write(`\n${report}\n`)
  if (opts.write) {
    const previous = existsSync(outFile) ? readFileSync(outFile, 'utf8') : ''
    const notes = previous.indexOf(NOTES_MARKER)
    writeFileSync(outFile, notes === -1 ? report : `${report}\n${previous.slice(notes)}`)
    log(`wrote ${relative(process.cwd(), outFile) || outFile}`)
  } else {
    log(`not writing ${basename(outFile)} (${flags.quick ? '--quick' : opts.profile ? '--profile' : opts.only.length > 0 ? '--only' : '--no-write'}; --write to force)`)
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
