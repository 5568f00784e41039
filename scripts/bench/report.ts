import { existsSync, readFileSync, writeFileSync } from 'node:fs'
import os from 'node:os'
import { join } from 'node:path'
import type { RoundStats } from './load.ts'
import { MONITOR_SAMPLE, type CommandsSent, type Pinning, type RedisMemory, type RunFacts } from './measure.ts'
import { fmt, median } from './numbers.ts'
import { nearCacheNote } from './near-cache.ts'
import type { BenchOptions } from './options.ts'
import { baselineOf, BATCH, floorOf, SINGLE_FORMS, MEMORY_ATTRS_PER_SESSION, NAMES_PER_SESSION, RATE_LIMIT_MAX, TOKEN_CACHE_DEFAULT, VALUE_BYTES, type Scenario } from './scenarios.ts'

// BENCHMARKS.md: the rows (medians of the rounds), the issue 15 targets, and how it was measured.

// BENCHMARKS.md from this line on is notes written by hand, which a rewrite keeps.
const NOTES_MARKER = '<!-- notes: everything below this line is written by hand and kept when npm run bench rewrites the file -->'

/** One scenario over its rounds: medians; ratios are medians of per-round ratios (paired runs). */
export interface Row {
  scenario: Scenario
  rps: number
  p50: number
  p99: number
  ratio: number
  /** Paired ratio of req/s to the floor of the same method (the bare route plus one EVALSHA). */
  floorRatio: number
  /** Median of the per-round p99 ÷ the bare route's p99 of the same method and round. */
  p99Ratio: number
  /** Median of the per-round Redis CPU per request ÷ the floor's of the same method and round. */
  redisCpuRatio: number
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

const pairedRatio = (a: RoundStats[], b: RoundStats[], scale = 1) => median(a.map((stats, i) => (stats.rps * scale) / (b[i]?.rps ?? Number.NaN)))
/** Median of the per-round ratios of one figure to the same figure of another row (NaN when that row did not run). */
const pairedFigure = (a: RoundStats[], b: RoundStats[] | undefined, figure: (stats: RoundStats) => number) =>
  b === undefined ? Number.NaN : median(a.map((stats, i) => figure(stats) / (b[i] === undefined ? Number.NaN : figure(b[i]))))

export function aggregate (scenarios: Scenario[], rounds: Map<string, RoundStats[]>, sent: CommandsSent['sent']): Row[] {
  return scenarios.map((scenario) => {
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
      floorRatio: pairedFigure(stats, rounds.get(floorOf(scenario.method)), (s) => s.rps),
      p99Ratio: pairedFigure(stats, rounds.get(baselineOf(scenario.method)), (s) => s.p99),
      redisCpuRatio: pairedFigure(stats, rounds.get(floorOf(scenario.method)), (s) => s.redisCpuUs),
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
}

/** The background scripts seen during each scenario's MONITOR sample, on one line. */
export function backgroundNote (background: CommandsSent['background']): string {
  return [...background].map(([key, tasks]) => `${key}: ${[...tasks].map(([task, count]) => `${count} ${task}`).join(', ') || 'none'}`).join('; ')
}

export interface ServiceRss { boot: number, beforeLoad: number, afterLoad: number, maxDuringLoad: number }

/** Everything the report states, gathered by the run. */
export interface ReportInput {
  opts: BenchOptions
  quick: boolean
  root: string
  rows: Row[]
  rounds: Map<string, RoundStats[]>
  commandsSent: CommandsSent
  facts: RunFacts
  memory: RedisMemory | undefined
  rss: ServiceRss
  baselineRss: number
  pinning: Pinning | undefined
  pinNote: string
  cpuCount: number
  redisVersion: string
  redisUrl: string
  loadAtStart: number[]
  loadAtEnd: number[]
  totalSeconds: number
  loadSeconds: number
  /** USTs minted: the driven sessions, the names sessions, the memory sample's sessions. */
  tokenCounts: { sessions: number, names: number, memory: number }
  profileLines: string[]
  /** Redis CPU per second with no load (bench/near-cache.ts), for the near cache's net figure. */
  idleRedisCpuUsPerSecond?: number | undefined
}

export function renderReport (input: ReportInput): string {
  const { opts, rows, commandsSent: { sent }, facts, memory, rss, pinning } = input
  const row = (key: string) => rows.find((r) => r.scenario.key === key)
  const services = rows.filter((r) => r.scenario.target === 'service')
  const maxCmds = Math.max(...services.map((r) => r.sentCmds))
  const minCmds = Math.min(...services.map((r) => r.sentCmds))
  const sampleOk = services.every((r) => {
    const names = sent.get(r.scenario.key) ?? new Map<string, number>()
    const total = [...names.values()].reduce((a, b) => a + b, 0)
    return total === 1 && [...names.keys()].every((name) => name === 'evalsha' || name === 'eval' || name === 'evalsha_ro' || name === 'fcall')
  })
  const background = backgroundNote(input.commandsSent.background)
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
  const singleRows = SINGLE_FORMS.map(row).filter((r) => r !== undefined)
  const worstP99 = singleRows.length === 0 ? undefined : singleRows.reduce((worst, r) => (r.p99Ratio > worst.p99Ratio ? r : worst))
  const atMost = (label: string, key: string, value: (r: Row) => number, limit: number, digits: number, unit = ''): [string, string, string] => {
    const r = row(key)
    if (r === undefined || !Number.isFinite(value(r))) return [label, ...NOT_RUN]
    return [label, `${fmt(value(r), digits)}${unit}`, verdict(value(r) <= limit)]
  }
  const targets: Array<[string, string, string]> = [
    rowTarget('GET single plain ≥ 0.80 × floor GET', 'get-plain', (r) => r.floorRatio, 0.8, 2),
    rowTarget('GET single encrypted ≥ 0.80 × floor GET', 'get-secret', (r) => r.floorRatio, 0.8, 2),
    rowTarget('PUT single encrypted + expiration ≥ 0.70 × floor PUT', 'put-secret', (r) => r.floorRatio, 0.7, 2),
    atMost('Redis CPU per GET single plain ≤ 1.5 × floor GET\'s', 'get-plain', (r) => r.redisCpuRatio, 1.5, 2, ' ×'),
    atMost('Redis CPU per PUT single encrypted + expiration ≤ 2 × floor PUT\'s', 'put-secret', (r) => r.redisCpuRatio, 2, 2, ' ×'),
    worstP99 === undefined
      ? ['p99 ≤ 2 × the bare route\'s p99, single forms (50 connections)', ...NOT_RUN]
      : ['p99 ≤ 2 × the bare route\'s p99, single forms (50 connections)', `worst ${fmt(worstP99.p99Ratio, 2)} × (${worstP99.scenario.label}: ${fmt(worstP99.p99, 2)} ms)`, verdict(worstP99.p99Ratio <= 2)],
    rowTarget(`PUT batch of ${BATCH} ≥ 15 × attributes/s of PUT single (issue 5)`, 'put-batch', (r) => r.batchGain, 15, 1, ' ×'),
    rowTarget(`GET batch of ${BATCH} ≥ 15 × attributes/s of GET single (issue 5)`, 'get-batch', (r) => r.batchGain, 15, 1, ' ×'),
    ['one Redis round trip per request (EVALSHA)', `${fmt(minCmds, 3)}–${fmt(maxCmds, 3)} commands sent per request under load; MONITOR sample: ${sampleOk ? 'one EVALSHA per request in every scenario' : services.map((r) => `${r.scenario.key}: ${r.sample}`).join('; ')}; beside the requests, over the ${MONITOR_SAMPLE}-request samples: ${background}`, verdict(maxCmds <= 1.02 && minCmds >= 0.98 && sampleOk)],
    ['Lua scripts loaded once', `${facts.scriptLoads} EVAL/SCRIPT LOAD for ${facts.scriptCount} scripts over the run (${facts.noscript} NOSCRIPT replies)`, verdict(facts.scriptLoads <= facts.scriptCount)],
    ['no SCAN/KEYS', `${facts.scanKeys} calls`, verdict(facts.scanKeys === 0)],
    memory === undefined
      ? [`Redis memory ≤ ${memoryLimit} B per attribute (100-byte value)`, 'not measured (--memory-attrs 0)', '–']
      : [`Redis memory ≤ ${memoryLimit} B per attribute (100-byte value)`, `${fmt(memory.perAttribute, 1)} B`, verdict(memory.perAttribute <= memoryLimit)],
    ['service RSS flat under load (≤ 25 % growth over the measured rounds)', `${fmt(rss.beforeLoad, 1)} → ${fmt(rss.afterLoad, 1)} MiB (${rssGrowth >= 0 ? '+' : ''}${fmt(100 * rssGrowth, 1)} %)`, verdict(rssGrowth <= 0.25)]
  ]

  const table = [
    '| scenario | req/s | p50 ms | p99 ms | p99 ÷ bare p99 | ratio to bare route | ratio to floor | Redis cmds/req sent (run, incl. in scripts) | service CPU µs/req | Redis CPU µs/req (÷ floor\'s) | attributes/s | batch gain | errors |',
    '|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|',
    ...rows.map((r) => {
      const isBaseline = r.scenario.target === 'baseline'
      const isReference = r.scenario.key === baselineOf(r.scenario.method)
      const isFloor = r.scenario.key === floorOf(r.scenario.method)
      const single = SINGLE_FORMS.includes(r.scenario.key.replace(/^b:/, ''))
      return `| ${r.scenario.label} | ${fmt(r.rps)} | ${fmt(r.p50, 2)} | ${fmt(r.p99, 2)} | ${isReference ? '1 (ref.)' : fmt(r.p99Ratio, 2)} | ${isReference ? '1 (ref.)' : fmt(r.ratio, 2)} | ` +
        `${isBaseline ? (isFloor ? '1 (ref.)' : '–') : fmt(r.floorRatio, 2)} | ${isBaseline ? fmt(r.allCmds, 2) : `${fmt(r.sentCmds, 2)} (${fmt(r.allCmds, 1)})`} | ` +
        `${fmt(r.serverCpuUs)}${isBaseline ? ' (baseline)' : ''} | ${isReference ? '–' : isBaseline ? `${fmt(r.redisCpuUs)} (ref.)` : `${fmt(r.redisCpuUs)}${single ? ` (${fmt(r.redisCpuRatio, 2)} ×)` : ''}`} | ${fmt(r.attrsPerSecond)} | ${Number.isFinite(r.batchGain) ? `${fmt(r.batchGain, 1)} ×` : '–'} | ${r.failures}${r.serverErrors > 0 ? ` (+${r.serverErrors} logged)` : ''} |`
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
    const line = (floorKey: string, bareKey: string, serviceKey: string, what: string): string | undefined => {
      const floor = row(floorKey)
      const service = row(serviceKey)
      if (floor === undefined || service === undefined) return undefined
      return `${what}: ${fmt(floor.rps)} req/s = ${fmt(floor.ratio, 2)} of the bare route, ${fmt(floor.serverCpuUs)} µs of CPU per request against the bare route's ` +
        `${fmt(row(bareKey)?.serverCpuUs ?? Number.NaN)}, Redis ${fmt(floor.redisCpuUs)} µs; ${service.scenario.label} is **${fmt(service.floorRatio, 2)} of it** ` +
        `(${fmt(service.serverCpuUs)} µs per request, Redis ${fmt(service.redisCpuUs)} µs = ${fmt(service.redisCpuRatio, 2)} × the floor's)`
    }
    const lines = [line('floor-get', 'base-get', 'get-plain', 'GET floor'), line('floor-put', 'base-put', 'put-secret', 'PUT floor')].filter((l) => l !== undefined)
    if (lines.length === 0) return '- Floors: not run.'
    return `- Floors (bare Fastify + one ioredis EVALSHA, auto-pipelining, on the baseline's core). ${lines.join('. ')}.`
  }
  const targetTable = ['| target (issue 15) | measured | |', '|---|---|---|', ...targets.map(([t, m, v]) => `| ${t} | ${m} | ${v} |`)]
  const fastifyVersion = (JSON.parse(readFileSync(join(input.root, 'node_modules/fastify/package.json'), 'utf8')) as { version: string }).version
  const autocannonVersion = (JSON.parse(readFileSync(join(input.root, 'node_modules/autocannon/package.json'), 'utf8')) as { version: string }).version
  const saturated = rows.filter((r) => r.loadgenCpuPct >= 90 || (pinning !== undefined && r.loadgenCoreBusy >= 95))
  const date = new Date().toISOString().replace(/\.\d+Z$/, 'Z')
  const { loadAtStart, loadAtEnd } = input

  const machine = [
    `- Date: ${date}; total run time ${fmt(input.totalSeconds)} s (load phase ${fmt(input.loadSeconds)} s).`,
    `- Machine: ${input.cpuCount} CPUs (${os.cpus()[0]?.model.trim() ?? 'unknown model'}), ${fmt(os.totalmem() / 2 ** 30, 1)} GiB, Linux ${os.release()}.`,
    `- Node ${process.version}, Redis ${input.redisVersion}, Fastify ${fastifyVersion}, autocannon ${autocannonVersion}.`,
    `- CPU placement: ${input.pinNote}.`,
    `- Load average (1/5/15 min) at start ${loadAtStart.map((v) => fmt(v, 2)).join(' / ')}, at end ${loadAtEnd.map((v) => fmt(v, 2)).join(' / ')}` +
      (loadAtStart[0]! > 0.5 ? ': other work was running on the machine, so the figures are noisy.' : '.')
  ]
  const method = [
    `- ${opts.connections} connections; per scenario a ${opts.warmup} s warm-up, then ${opts.rounds} round${opts.rounds > 1 ? 's' : ''} of ${opts.duration} s, run round-robin across the scenarios; figures are medians of the rounds.`,
    `- The service runs as \`node dist/src/server.js\` with NODE_ENV=production, LOG_LEVEL=warn, Redis at ${input.redisUrl.replace(/:\d+$/, ':<free port>')}, USTs verified with an ES256 key from a JWKS file (SSO_JWKS_FILE); every other setting at its default (metrics on; rate limiting on, with SSO_RATE_LIMIT_MAX=${fmt(RATE_LIMIT_MAX)} so that no request is refused).`,
    `- ${opts.sessions} distinct sessions, one ES256 UST each (distinct \`sid\`), rotated on every request (\`Authorization: Bearer\`; the service's verified-token cache is left at its default size, so after the population every request is a cache hit); the names scenario rotates over ${input.tokenCounts.names} sessions of ${NAMES_PER_SESSION} attributes. Values are ${VALUE_BYTES}-byte JSON strings; GET inputs go in the query string, PUT inputs in a JSON body.`,
    '- Baseline: `scripts/bench-baseline.mjs`, a bare Fastify 5 app (logger at warn, no schemas, hooks or Redis) on the same path and the same CPU, answering with the service\'s own GET single / PUT single bodies (same envelope, same size, a cid made the same way) and parsing the same PUT body. The floor rows are the same app\'s GET plus one EVALSHA through ioredis (auto-pipelining; a one-line script reading a 100-byte hash field over 2,000 keys) and its PUT, the same JSON body parsed, plus one EVALSHA writing the value into a hash field: the least any service with a Redis round trip per request pays here.',
    '- ratio to bare route / to floor: median of the per-round ratios of req/s to the bare route / the floor of the same method in the same round; p99 ÷ bare p99 and Redis CPU ÷ floor\'s likewise, per round, then the median. batch gain: attributes/s of the batch form ÷ attributes/s of the single plain form of the same method (per round, median).',
    `- Redis cmds/req sent: the commands a request sends to Redis itself, as opposed to those its Lua script runs. Which ones they are comes from a MONITOR sample of ${MONITOR_SAMPLE} sequential requests per scenario before the load (MONITOR tags script commands "lua"; the EVALSHAs of the rate-limit sync and of a session's first entry in its user's index, told apart by their script's SHA1, run beside the requests rather than for one, and are reported apart); how many per request under load from the \`INFO commandstats\` delta of those commands over the round ÷ requests sent (in-flight ones at the end of a round included). In brackets: every command Redis ran per request, inside scripts included (\`INFO commandstats\` counts both; INFO itself excluded).`,
    '- service CPU µs/req: utime+stime delta of the server process (`/proc/<pid>/stat`) ÷ requests sent (for baseline rows, the baseline process). Redis CPU µs/req: `INFO cpu` delta. Server process CPU: its utime+stime over the round, % of one core. Core busy: `/proc/stat` of the pinned cores; in brackets the part that was not the server process: the kernel\'s loopback network work (about 10–15 % here) and any other process on the machine. errors: non-2xx, socket errors and timeouts seen by autocannon, plus error-level lines the server logged. p50/p99: every response\'s latency as autocannon reports it.'
  ]
  const memoryLines = [
    floorNote(),
    nearCacheNote(input.rounds, input.idleRedisCpuUsPerSecond),
    memory === undefined ? '- Redis memory: not measured (--memory-attrs 0).' : `- Redis memory: ${fmt(memory.bytes / 1048576, 1)} MiB of \`used_memory\` for ${fmt(memory.attributes)} attributes (${VALUE_BYTES}-byte values, names of 4 characters, ${fmt(memory.sessions)} sessions of ${MEMORY_ATTRS_PER_SESSION}, ${fmt(memory.keys)} keys) = **${fmt(memory.perAttribute, 1)} bytes per attribute** (target ≤ ${memoryLimit}).`,
    `- Service RSS: ${fmt(rss.boot, 1)} MiB after start, ${fmt(rss.beforeLoad, 1)} MiB before the measured rounds (after population and warm-up), ${fmt(rss.afterLoad, 1)} MiB after them (highest seen between rounds ${fmt(rss.maxDuringLoad, 1)} MiB). Baseline RSS at the end: ${fmt(input.baselineRss, 1)} MiB.`,
    `- Redis over the whole run: ${facts.scriptLoads} EVAL/SCRIPT LOAD, ${facts.noscript} NOSCRIPT replies, ${facts.scanKeys} SCAN/KEYS; commands Redis ran from the service's start to the end of the load (population and memory sample included, scripts' inner commands included): ${[...facts.runCommands].sort((a, b) => b[1] - a[1]).map(([n, c]) => `${n} ${fmt(c)}`).join(', ')}.`
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
  const cachedTokens = input.tokenCounts.sessions + input.tokenCounts.names + input.tokenCounts.memory
  if (cachedTokens > TOKEN_CACHE_DEFAULT) warnings.push(`- ${cachedTokens} USTs exceed the service's default token cache (${TOKEN_CACHE_DEFAULT}): some requests paid a full ES256 verification.`)
  if (opts.compare !== undefined) warnings.push(`- Same-run A/B (--compare): the rows marked [B] are the build in ${opts.compare}${process.env.BENCH_COMPARE_ENV ? ` with ${process.env.BENCH_COMPARE_ENV}` : ''}, on the same core and Redis under its own key prefix, each driven right after its A row; the targets judge the A rows only.`)
  if (opts.only.length > 0) warnings.push(`- Only some scenarios ran (--only ${opts.only.join(',')}).`)
  if (input.quick) warnings.push('- Quick run (`--quick`): short rounds and fewer sessions; indicative only.')

  return [
    '# Benchmarks',
    '',
    'Rewritten by `npm run bench` (`scripts/bench.ts`; `npm run bench -- --help` for options, `--quick` for a short run,',
    '`--profile` for a CPU profile of the service). Targets from issue 15. Numbers from one run on a shared machine: compare',
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
    ...(input.profileLines.length > 0 ? ['', '## Where the service\'s CPU time goes (`--profile`)', '', ...input.profileLines] : []),
    ''
  ].join('\n')
}

/** Replaces `file` with the report, keeping the hand-written notes below NOTES_MARKER. */
export function writeReport (file: string, report: string): void {
  const previous = existsSync(file) ? readFileSync(file, 'utf8') : ''
  const notes = previous.indexOf(NOTES_MARKER)
  writeFileSync(file, notes === -1 ? report : `${report}\n${previous.slice(notes)}`)
}
