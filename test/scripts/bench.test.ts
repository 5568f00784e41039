import assert from 'node:assert/strict'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, test } from 'node:test'
import type { RoundStats } from '../../scripts/bench/load.ts'
import { parseBenchOptions, serviceEnvOverrides } from '../../scripts/bench/options.ts'
import { aggregate, renderReport, writeReport, type ReportInput } from '../../scripts/bench/report.ts'
import { buildScenarios, compareScenarios, selectScenarios } from '../../scripts/bench/scenarios.ts'
import { renderWebSocketSection, type FanOutResult } from '../../scripts/bench/websocket.ts'

// The parts of `npm run bench` that decide what runs and what BENCHMARKS.md says, without
// running a load (the machine's cores are not the test's to take).

const ROOT = join(import.meta.dirname, '..', '..')

describe('bench options', () => {
  test('defaults, and --quick: shorter rounds, fewer sessions, BENCHMARKS.md left alone unless --write', () => {
    const normal = parseBenchOptions([], {}).opts
    assert.deepEqual({ ...normal }, { duration: 3, rounds: 3, warmup: 1, connections: 50, sessions: 2000, memoryAttrs: 100_000, only: [], compare: undefined, pin: true, profile: false, write: true })
    const { opts: quick, run } = parseBenchOptions(['--quick'], {})
    assert.deepEqual([quick.duration, quick.rounds, quick.warmup, quick.sessions, quick.memoryAttrs, quick.write, run.quick], [1, 1, 0.5, 300, 10_000, false, true])
    assert.equal(parseBenchOptions(['--quick', '--write'], {}).opts.write, true)
    assert.equal(run.outFile, join(ROOT, 'BENCHMARKS.md'))
  })

  test('flags win over BENCH_* variables; --only, BENCH_ONLY and --profile do not rewrite the file', () => {
    assert.equal(parseBenchOptions(['--rounds', '5'], { BENCH_ROUNDS: '7' }).opts.rounds, 5)
    assert.equal(parseBenchOptions([], { BENCH_ROUNDS: '7' }).opts.rounds, 7)
    assert.deepEqual(parseBenchOptions([], { BENCH_ONLY: 'get-plain, names' }).opts.only, ['get-plain', 'names'])
    assert.equal(parseBenchOptions([], { BENCH_ONLY: 'get-plain' }).opts.write, false)
    assert.equal(parseBenchOptions(['--only', 'names'], {}).opts.write, false)
    const profile = parseBenchOptions(['--profile'], {}).opts
    assert.deepEqual([profile.write, profile.memoryAttrs], [false, 0])
  })

  test('BENCH_SERVICE_ENV: settings for the service under test, values may hold = and commas may be spaced', () => {
    assert.deepEqual(serviceEnvOverrides({ BENCH_SERVICE_ENV: 'SSO_TOKEN_CACHE_SIZE=0, SSO_KEY_PREFIX=a=b:' }), { SSO_TOKEN_CACHE_SIZE: '0', SSO_KEY_PREFIX: 'a=b:' })
    assert.deepEqual(serviceEnvOverrides({}), {})
    assert.throws(() => serviceEnvOverrides({ BENCH_SERVICE_ENV: 'NOVALUE' }), /"NOVALUE" is not NAME=value/)
    assert.deepEqual(serviceEnvOverrides({ BENCH_SERVICE_ENV: 'A=1', BENCH_COMPARE_ENV: 'SSO_RATE_LIMIT_MAX=0' }, 'BENCH_COMPARE_ENV'), { SSO_RATE_LIMIT_MAX: '0' })
    assert.throws(() => serviceEnvOverrides({ BENCH_COMPARE_ENV: 'B' }, 'BENCH_COMPARE_ENV'), /BENCH_COMPARE_ENV: "B" is not NAME=value/)
  })

  test('refuses a value below its minimum, naming the variable and the flag', () => {
    assert.throws(() => parseBenchOptions(['--rounds', '0'], {}), /BENCH_ROUNDS \/ --rounds must be a number >= 1, not 0/)
    assert.throws(() => parseBenchOptions([], { BENCH_DURATION: 'soon' }), /BENCH_DURATION/)
  })
})

describe('bench scenarios', () => {
  const scenarios = buildScenarios(['t0', 't1'], ['n0', 'n1'], '{}')

  test('four baseline rows (bare GET and PUT, their floors), then the seven service scenarios --only knows', () => {
    assert.deepEqual(scenarios.map((s) => s.key), ['base-get', 'base-put', 'floor-get', 'floor-put', 'get-plain', 'get-secret', 'put-plain', 'put-secret', 'put-batch', 'get-batch', 'names'])
    assert.ok(scenarios.slice(0, 4).every((s) => s.target === 'baseline' && !s.rotate))
    assert.equal(scenarios.find((s) => s.key === 'floor-put')?.body, '{}', 'the PUT floor sends the PUT single body')
  })

  test('--compare: every service scenario again on the other build, keys b:…, batch gains against its own single form', () => {
    assert.equal(parseBenchOptions(['--compare', '/tmp/base'], {}).opts.compare, '/tmp/base')
    assert.equal(parseBenchOptions([], { BENCH_COMPARE: '/tmp/env' }).opts.compare, '/tmp/env')
    assert.equal(parseBenchOptions(['--compare', '.'], {}).opts.write, false, 'an A/B does not rewrite BENCHMARKS.md unless --write')
    const b = compareScenarios(scenarios)
    assert.deepEqual(b.map((s) => s.key), ['b:get-plain', 'b:get-secret', 'b:put-plain', 'b:put-secret', 'b:put-batch', 'b:get-batch', 'b:names'])
    assert.ok(b.every((s) => s.target === 'compare' && s.label.endsWith(' [B]')))
    assert.equal(b.find((s) => s.key === 'b:get-batch')?.singleOf, 'b:get-plain')
  })

  test('--only keeps the baselines and the single form a batch scenario is compared with', () => {
    assert.deepEqual(selectScenarios(scenarios, ['get-batch']).map((s) => s.key), ['base-get', 'base-put', 'floor-get', 'floor-put', 'get-plain', 'get-batch'])
    assert.equal(selectScenarios(scenarios, []).length, scenarios.length)
    assert.throws(() => selectScenarios(scenarios, ['get-plan']), /--only: unknown scenario get-plan \(known: get-plain,/)
  })
})

/** One round of `rps` requests a second, with costs that make every column a known figure. */
function round (rps: number, p99 = 4, redisCpuUs = 30): RoundStats {
  return {
    rps,
    p50: 2,
    p99,
    requests: rps * 3,
    sentRequests: rps * 3,
    failures: 0,
    commandsPerRequest: 9,
    commands: new Map([['evalsha', rps * 3], ['hget', rps * 3 * 8]]),
    serverCpuUs: 100,
    redisCpuUs,
    loadgenCpuPct: 40,
    serverCoreBusy: 90,
    loadgenCoreBusy: 50,
    serverCpuPct: 80,
    serverErrors: 0,
    load1: 0.3
  }
}

describe('bench report', () => {
  const scenarios = selectScenarios(buildScenarios(['t0', 't1'], ['n0'], '{}'), ['get-plain'])
  const rounds = new Map<string, RoundStats[]>([
    ['base-get', [round(10_000), round(12_000)]],
    ['base-put', [round(9000), round(9000)]],
    ['floor-get', [round(8000, 4, 10), round(12_000, 4, 20)]],
    ['floor-put', [round(7000), round(7000)]],
    ['get-plain', [round(8500, 4, 15), round(9000, 12, 20)]]
  ])
  const sent = new Map([['get-plain', new Map([['evalsha', 1]])]])
  const rows = aggregate(scenarios, rounds, sent)
  const input: ReportInput = {
    opts: { ...parseBenchOptions(['--only', 'get-plain'], {}).opts, rounds: 2 },
    quick: false,
    root: ROOT,
    rows,
    rounds,
    commandsSent: { sent, background: new Map([['get-plain', new Map([['rate-limit sync', 3]])]]) },
    facts: { runCommands: new Map([['evalsha', 100]]), scriptLoads: 2, scriptCount: 8, noscript: 0, scanKeys: 0 },
    memory: undefined,
    rss: { boot: 60, beforeLoad: 80, afterLoad: 84, maxDuringLoad: 85 },
    baselineRss: 50,
    pinning: { server: 0, loadgen: 1, redis: 1 },
    pinNote: 'pinned',
    cpuCount: 2,
    redisVersion: '7.0.15',
    redisUrl: 'redis://127.0.0.1:6399',
    loadAtStart: [0.1, 0.2, 0.3],
    loadAtEnd: [0.4, 0.5, 0.6],
    totalSeconds: 42,
    loadSeconds: 30,
    tokenCounts: { sessions: 2, names: 1, memory: 0 },
    profileLines: []
  }
  const report = renderReport(input)

  test('rows are medians of the rounds; ratios are medians of the per-round ratios to the baseline', () => {
    const get = rows.find((r) => r.scenario.key === 'get-plain')!
    assert.equal(get.rps, 8750)
    assert.equal(get.ratio, (8500 / 10_000 + 9000 / 12_000) / 2)
    assert.equal(get.p99, 8)
    assert.equal(get.floorRatio, (8500 / 8000 + 9000 / 12_000) / 2, 'paired with the floor of the same round')
    assert.equal(get.p99Ratio, (4 / 4 + 12 / 4) / 2, 'p99 over the bare route\'s p99 of the same round')
    assert.equal(get.redisCpuRatio, (15 / 10 + 20 / 20) / 2, 'Redis CPU over the floor\'s of the same round')
    assert.equal(get.sentCmds, 1, 'only the commands the MONITOR sample saw the request send')
    assert.equal(get.allCmds, 9)
    assert.match(report, /^\| GET single plain \| 8,750 \| 2\.00 \| 8\.00 \| 2\.00 \| 0\.80 \| 0\.91 \| 1\.00 \(9\.0\) \| 100 \| 18 \(1\.25 ×\) \| 8,750 \| – \| 0 \|$/m)
    assert.match(report, /^\| floor GET \(bare Fastify \+ one ioredis EVALSHA\) \| 10,000 \| .* \| 1 \(ref\.\) \| 9\.00 \| 100 \(baseline\) \| 15 \(ref\.\) \| /m)
    assert.match(report, /^\| baseline GET \(bare Fastify\) \| 11,000 \| .* \| 1 \(ref\.\) \| /m)
  })

  test('the sections of BENCHMARKS.md in order, targets judged, what did not run said so', () => {
    const headings = report.split('\n').filter((line) => line.startsWith('#'))
    assert.deepEqual(headings, ['# Benchmarks', '## Run', '## Method', '## Results', '## Warnings', '## Targets'])
    assert.match(report, /^\| GET single plain ≥ 0\.80 × floor GET \| 0\.91 \| met \|$/m)
    assert.match(report, /^\| GET single encrypted ≥ 0\.80 × floor GET \| not run \| – \|$/m)
    assert.match(report, /^\| Redis CPU per GET single plain ≤ 1\.5 × floor GET's \| 1\.25 × \| met \|$/m)
    assert.match(report, /^\| Redis CPU per PUT single encrypted \+ expiration ≤ 2 × floor PUT's \| not run \| – \|$/m)
    assert.match(report, /^\| p99 ≤ 2 × the bare route's p99, single forms \(50 connections\) \| worst 2\.00 × \(GET single plain: 8\.00 ms\) \| met \|$/m)
    assert.match(report, /^\| Lua scripts loaded once \| 2 EVAL\/SCRIPT LOAD for 8 scripts over the run \(0 NOSCRIPT replies\) \| met \|$/m)
    assert.match(report, /^- Only some scenarios ran \(--only get-plain\)\.$/m)
    assert.match(report, /^- 50 connections; per scenario a 1 s warm-up, then 2 rounds of 3 s,/m)
  })

  test('a rewrite keeps the notes written by hand below the marker', () => {
    const dir = mkdtempSync(join(tmpdir(), 'sso-attrs-bench-report-'))
    try {
      const file = join(dir, 'BENCHMARKS.md')
      const notes = '<!-- notes: everything below this line is written by hand and kept when npm run bench rewrites the file -->\n\nBy hand.\n'
      writeFileSync(file, `# old figures\n\n${notes}`)
      writeReport(file, report)
      assert.equal(readFileSync(file, 'utf8'), `${report}\n${notes}`)
      assert.equal(readFileSync(join(ROOT, 'BENCHMARKS.md'), 'utf8').includes(notes.split('\n')[0]!), true, 'BENCHMARKS.md has the marker')
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  })
})

describe('npm run bench: the WebSocket section', () => {
  test('the calls/s row, then a fan-out row per outstanding depth, figures as measured', () => {
    const fanOut = (inFlight: number, eventsPerSecond: number, p99Ms: number): FanOutResult => ({
      subscribers: 1000, inFlight, writes: eventsPerSecond / 1000 * 3, deliveries: eventsPerSecond * 3, seconds: 3, writesPerSecond: eventsPerSecond / 1000, eventsPerSecond, p50Ms: p99Ms / 2, p99Ms, dropped: 0, missing: 0
    })
    const section = renderWebSocketSection({ inFlight: 16, calls: 30_000, errors: 0, seconds: 3, perSecond: 10_000, p50Ms: 1, p99Ms: 4 }, [fanOut(1, 20_000, 60), fanOut(4, 30_000, 150)])
    assert.match(section, /^\| `session\.attr\.get`, one connection, 16 in flight \| 10,000 \| 1\.00 \| 4\.00 \| 0 \|$/m)
    assert.match(section, /^\| fan-out to 1,000 subscribers of one owner, 1 write outstanding \| 20,000 \| 20 \| 30\.00 \| 60\.00 \| 0 \| 0 \|$/m)
    assert.match(section, /^\| fan-out to 1,000 subscribers of one owner, 4 writes outstanding \| 30,000 \| 30 \| 75\.00 \| 150\.00 \| 0 \| 0 \|$/m)
    assert.match(section, /1,000 connections of one user, each subscribed to `user\.attr`/)
  })
})
