import { execFileSync } from 'node:child_process'
import { createHash } from 'node:crypto'
import { readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import type { Redis } from 'ioredis'
import { ATTR_PATH, APP, call, failure, MEMORY_ATTRS_PER_SESSION, pool, value100, type Scenario } from './scenarios.ts'

// What the bench reads besides autocannon's figures: Redis INFO and MONITOR, /proc for CPU
// and RSS, CPU placement with taskset.

export function parseInfo (text: string): Map<string, string> {
  const map = new Map<string, string>()
  for (const line of text.split('\r\n')) {
    if (line === '' || line.startsWith('#')) continue
    const colon = line.indexOf(':')
    if (colon > 0) map.set(line.slice(0, colon), line.slice(colon + 1))
  }
  return map
}

export interface CommandStat { calls: number, failed: number }

export async function commandStats (redis: Redis): Promise<Map<string, CommandStat>> {
  const stats = new Map<string, CommandStat>()
  for (const [key, value] of parseInfo(await redis.info('commandstats'))) {
    if (!key.startsWith('cmdstat_')) continue
    const field = (name: string) => Number(new RegExp(`(?:^|,)${name}=(\\d+)`).exec(value)?.[1] ?? 0)
    stats.set(key.slice('cmdstat_'.length), { calls: field('calls'), failed: field('failed_calls') + field('rejected_calls') })
  }
  return stats
}

/** Commands run between two snapshots, without the INFO calls of this tool. */
export function commandDelta (before: Map<string, CommandStat>, after: Map<string, CommandStat>): Map<string, number> {
  const delta = new Map<string, number>()
  for (const [name, stat] of after) {
    if (name === 'info') continue
    const calls = stat.calls - (before.get(name)?.calls ?? 0)
    if (calls > 0) delta.set(name, calls)
  }
  return delta
}

export async function redisCpuSeconds (redis: Redis): Promise<number> {
  const info = parseInfo(await redis.info('cpu'))
  return Number(info.get('used_cpu_user') ?? 0) + Number(info.get('used_cpu_sys') ?? 0)
}

let clockTicks = 100
try {
  clockTicks = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100
} catch {}

/** utime + stime of a process (all its threads), in microseconds, from /proc. */
export function processCpuMicros (pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
  // fields[0] is field 3 (state): utime is field 14, stime field 15.
  return (Number(fields[11]) + Number(fields[12])) * (1e6 / clockTicks)
}

export function rssMiB (pid: number): number {
  const match = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))
  return match === null ? Number.NaN : Number(match[1]) / 1024
}

export interface Jiffies { busy: number, total: number }

/** Busy and total jiffies of one CPU (or of all, cpu = undefined), from /proc/stat. */
export function cpuJiffies (cpu: number | undefined): Jiffies {
  const label = cpu === undefined ? 'cpu' : `cpu${cpu}`
  const line = readFileSync('/proc/stat', 'utf8').split('\n').find((l) => l.startsWith(`${label} `))
  if (line === undefined) return { busy: Number.NaN, total: Number.NaN }
  const values = line.trim().split(/\s+/).slice(1, 9).map(Number)
  const total = values.reduce((a, b) => a + b, 0)
  return { busy: total - values[3]! - values[4]!, total } // idle and iowait are not busy
}

export function busyPercent (before: Jiffies, after: Jiffies): number {
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

export interface Pinning { server: number, loadgen: number, redis: number }

export function planPinning (enabled: boolean): { pinning: Pinning | undefined, note: string } {
  if (!enabled) return { pinning: undefined, note: 'not pinned (--no-pin)' }
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

export function pin (pid: number, cpu: number): void {
  execFileSync('taskset', ['-a', '-pc', String(cpu), String(pid)], { stdio: 'ignore' })
}

export class LatencyRecorder {
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

/** Monotonic microseconds: the clock of V8's CPU profile timestamps (CLOCK_MONOTONIC on Linux). */
export const monotonicMicros = () => Number(process.hrtime.bigint() / 1000n)

export interface RedisMemory { attributes: number, sessions: number, keys: number, bytes: number, perAttribute: number }

/**
 * Redis memory per attribute: used_memory before and after writing `attributes` attributes
 * of 100-byte values through the service (100 a session, one batch PUT each).
 */
export async function measureRedisMemory (admin: Redis, port: number, tokens: string[], attributes: number): Promise<RedisMemory> {
  const memoryBefore = Number(parseInfo(await admin.info('memory')).get('used_memory'))
  const keysBefore = await admin.dbsize()
  let memoryWritten = 0
  await pool(tokens, 16, async (token, i) => {
    const count = Math.min(MEMORY_ATTRS_PER_SESSION, attributes - i * MEMORY_ATTRS_PER_SESSION)
    const data = Array.from({ length: count }, (_, j) => ({ name: `m${String(j).padStart(3, '0')}`, value: value100() }))
    const reply = await call(port, 'PUT', ATTR_PATH, token, { current_app: APP, data })
    if (reply.status !== 200) throw failure('writing the memory sample', reply)
    memoryWritten += count
  })
  await sleep(200)
  const memoryAfter = Number(parseInfo(await admin.info('memory')).get('used_memory'))
  return {
    attributes: memoryWritten,
    sessions: tokens.length,
    keys: (await admin.dbsize()) - keysBefore,
    bytes: memoryAfter - memoryBefore,
    perAttribute: (memoryAfter - memoryBefore) / memoryWritten
  }
}

/** Sequential requests per scenario in the MONITOR sample. */
export const MONITOR_SAMPLE = 50

export interface CommandsSent {
  /** Per scenario: the commands one request sends to Redis itself, per request. */
  sent: Map<string, Map<string, number>>
  /** Per scenario: the background scripts seen during its sample, by task. */
  background: Map<string, Map<string, number>>
}

/**
 * Which commands a request itself sends to Redis, as opposed to the ones its Lua script runs
 * (INFO commandstats counts both; MONITOR marks the latter with the source "lua"). A short
 * sequential sample per scenario, before the load.
 */
export async function sampleCommandsSent (admin: Redis, port: number, scenarios: Scenario[], root: string): Promise<CommandsSent> {
  // Scripts the service runs beside requests, not for one: the rate-limit sync (every
  // SSO_RATE_LIMIT_SYNC_MS, for every caller at once) and a session's first entry in its
  // user's index. Told apart by their SHA1, the name EVALSHA gives them.
  const backgroundScripts = new Map(['rate', 'admit'].map((name) => [
    createHash('sha1').update(readFileSync(join(root, 'src', 'store', 'redis-scripts', `${name}.lua`), 'utf8')).digest('hex'),
    name === 'rate' ? 'rate-limit sync' : 'session index'
  ]))
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
      // EVAL sends a script's text: ioredis loads a script so on its first use by a connection
      // (counted as loads in the targets). PING is a readiness or keep-alive check, not a request's.
      const task = name === 'evalsha' ? backgroundScripts.get(String(args[1])) : name === 'eval' ? 'script load' : name === 'ping' ? 'ping' : undefined
      if (task !== undefined) besides.set(task, (besides.get(task) ?? 0) + 1)
      else seen.set(name, (seen.get(name) ?? 0) + 1)
    })
    await sleep(50)
    for (let i = 0; i < MONITOR_SAMPLE; i++) {
      const reply = await call(port, scenario.method, scenario.path, scenario.tokens[(i * 37) % scenario.tokens.length]!, scenario.body === undefined ? undefined : JSON.parse(scenario.body))
      if (reply.status !== 200) throw failure(`${scenario.label} (MONITOR sample)`, reply)
    }
    await sleep(200)
    monitor.disconnect()
    sent.set(scenario.key, new Map([...seen].map(([name, count]) => [name, count / MONITOR_SAMPLE])))
  }
  return { sent, background }
}

export interface RunFacts {
  /** Commands Redis ran from the service's start to the end of the load. */
  runCommands: Map<string, number>
  scriptLoads: number
  scriptCount: number
  noscript: number
  scanKeys: number
}

/** Whole-run Redis facts: scripts loaded, NOSCRIPT replies, SCAN/KEYS. */
export function runFacts (commandsAtStart: Map<string, CommandStat>, commandsAtEnd: Map<string, CommandStat>, root: string): RunFacts {
  const allCommands = commandDelta(new Map(), commandsAtEnd)
  return {
    runCommands: commandDelta(commandsAtStart, commandsAtEnd),
    scriptLoads: (allCommands.get('eval') ?? 0) + (allCommands.get('script|load') ?? 0),
    scriptCount: readdirSync(join(root, 'dist/src/store/redis-scripts')).filter((f) => f.endsWith('.lua') && f !== 'prelude.lua').length,
    noscript: commandsAtEnd.get('evalsha')?.failed ?? 0,
    scanKeys: (allCommands.get('scan') ?? 0) + (allCommands.get('keys') ?? 0)
  }
}
