import { createRequire } from 'node:module'
import os from 'node:os'
import { setTimeout as sleep } from 'node:timers/promises'
import type { Redis } from 'ioredis'
import { busyPercent, commandDelta, commandStats, cpuJiffies, LatencyRecorder, processCpuMicros, redisCpuSeconds, rssMiB, type Pinning } from './measure.ts'
import { fmt } from './numbers.ts'
import { log, type Server } from './processes.ts'
import type { Scenario, Target } from './scenarios.ts'

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

export interface RoundStats {
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

export type Drive = (scenario: Scenario, duration: number) => Promise<RoundStats>

export interface LoadContext {
  servers: Partial<Record<Target, Server>> & Record<'service' | 'baseline', Server>
  /** The Redis both servers use, read with INFO before and after each round. */
  admin: Redis
  pinning: Pinning | undefined
  connections: number
  /** Called with the service's RSS after each of its rounds. */
  onServiceRss: (mib: number) => void
}

/** Drives one scenario with autocannon for `duration` seconds and measures what it cost. */
export function createDriver ({ servers, admin, pinning, connections, onServiceRss }: LoadContext): Drive {
  let runIndex = 0
  return async (scenario, duration) => {
    const server = servers[scenario.target]!
    const alive = () => {
      for (const s of Object.values(servers).filter((s) => s !== undefined)) {
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
    const instance = autocannon({ url: `http://127.0.0.1:${server.port}`, connections, duration, timeout: 10, requests: [request] })
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
    if (scenario.target === 'service') onServiceRss(rssMiB(servers.service.pid))
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
}

export async function warmUp (scenarios: Scenario[], drive: Drive, seconds: number): Promise<void> {
  if (seconds <= 0) return
  for (const scenario of scenarios) {
    log(`warm-up ${scenario.label}`)
    await drive(scenario, seconds)
  }
}

/**
 * The rounds, round-robin across scenarios, so that noise from other work on the machine
 * spreads over all of them and the ratios compare runs made side by side.
 */
export async function measureRounds (scenarios: Scenario[], drive: Drive, rounds: number, duration: number): Promise<Map<string, RoundStats[]>> {
  const byScenario = new Map<string, RoundStats[]>(scenarios.map((s) => [s.key, []]))
  for (let round = 1; round <= rounds; round++) {
    for (const scenario of scenarios) {
      const stats = await drive(scenario, duration)
      byScenario.get(scenario.key)!.push(stats)
      log(`round ${round}/${rounds} ${scenario.label.padEnd(36)} ${fmt(stats.rps).padStart(7)} req/s  p50 ${fmt(stats.p50, 2)} ms  p99 ${fmt(stats.p99, 2)} ms` +
        `  cmds/req ${fmt(stats.commandsPerRequest, 2)}  server ${fmt(stats.serverCpuUs)} µs/req  loadgen ${fmt(stats.loadgenCpuPct)} %` +
        `  core: server ${fmt(stats.serverCpuPct)} % of ${fmt(stats.serverCoreBusy)} % busy` +
        `  load ${fmt(stats.load1, 1)}` +
        (stats.failures > 0 ? `  FAILURES ${stats.failures}` : '') + (stats.serverErrors > 0 ? `  SERVER ERRORS ${stats.serverErrors}` : ''))
    }
  }
  return byScenario
}
