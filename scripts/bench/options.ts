import { basename, dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'

export const HELP = `usage: npm run bench -- [options]   (or: npx tsx scripts/bench.ts [options] after npm run build)

  --duration <s>       length of one measured round per scenario    (BENCH_DURATION, default 3; quick 1)
  --rounds <n>         measured rounds per scenario, medians taken  (BENCH_ROUNDS, default 3; quick 1)
  --warmup <s>         warm-up per scenario before the rounds       (BENCH_WARMUP, default 1; quick 0.5)
  --connections <n>    autocannon connections                       (BENCH_CONNECTIONS, default 50)
  --sessions <n>       distinct sessions / ES256 USTs driven         (BENCH_SESSIONS, default 2000; quick 300)
  --memory-attrs <n>   attributes written for the Redis memory figure (BENCH_MEMORY_ATTRS, default 100000; quick 10000;
                       0 skips it, the default with --profile)
  --only <keys>        only these service scenarios (BENCH_ONLY, comma-separated; the baselines always run):
                       get-plain, get-secret, put-plain, put-secret, put-batch, get-batch, names, get-hot, get-hot-near
  --quick              short smoke run (with --profile, --only or --compare: BENCHMARKS.md is not rewritten unless --write)
  --profile            run the service under node --cpu-prof and print where its CPU time goes
                       (slows it down: does not rewrite BENCHMARKS.md unless --write)
  --profile-out <file> also keep the .cpuprofile there (open it in Chrome DevTools)
  --compare <dir>      same-run A/B: also start the service built in <dir> (another checkout, after its
                       npm run build) on the same core and Redis (its own key prefix), drive every service
                       scenario on it too (rows marked [B]), in turns with the others   (BENCH_COMPARE;
                       '.' for this build again, e.g. with BENCH_COMPARE_ENV)
                       BENCH_COMPARE_ENV="NAME=value,...": settings for B only (as BENCH_SERVICE_ENV)
  --no-pin             do not pin processes to cores with taskset
  --write / --no-write rewrite BENCHMARKS.md or not
  --out <file>         where to write the report (default BENCHMARKS.md at the repository root)
`

const here = dirname(fileURLToPath(import.meta.url))
/** The repository: above scripts/bench/, or above dist/scripts/bench/ when run compiled. */
export const ROOT = basename(dirname(dirname(here))) === 'dist' ? dirname(dirname(dirname(here))) : dirname(dirname(here))

export interface BenchOptions {
  duration: number
  rounds: number
  warmup: number
  connections: number
  sessions: number
  memoryAttrs: number
  only: string[]
  /** A second build of the service to drive beside this one (same-run A/B), or undefined. */
  compare: string | undefined
  pin: boolean
  profile: boolean
  write: boolean
}

/** What the run does besides its measured options: the report's warnings and file names depend on these. */
export interface RunFlags {
  help: boolean
  quick: boolean
  profileOut: string | undefined
  outFile: string
}

/** Command-line flags first, then BENCH_* variables, then the defaults (shorter ones with --quick). */
export function parseBenchOptions (args: string[] = process.argv.slice(2), env: NodeJS.ProcessEnv = process.env): { opts: BenchOptions, run: RunFlags } {
  const { values: flags } = parseArgs({
    args,
    options: {
      duration: { type: 'string' },
      rounds: { type: 'string' },
      warmup: { type: 'string' },
      connections: { type: 'string' },
      sessions: { type: 'string' },
      'memory-attrs': { type: 'string' },
      only: { type: 'string' },
      compare: { type: 'string' },
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

  const numberOption = (flag: string | undefined, envName: string, normal: number, quick: number, min: number): number => {
    const text = flag ?? env[envName]
    const value = text === undefined || text === '' ? (flags.quick ? quick : normal) : Number(text)
    if (!Number.isFinite(value) || value < min) throw new Error(`${envName} / --${envName.slice(6).toLowerCase().replace('_', '-')} must be a number >= ${min}, not ${String(text)}`)
    return value
  }

  const opts: BenchOptions = {
    duration: numberOption(flags.duration, 'BENCH_DURATION', 3, 1, 0.5),
    rounds: Math.round(numberOption(flags.rounds, 'BENCH_ROUNDS', 3, 1, 1)),
    warmup: numberOption(flags.warmup, 'BENCH_WARMUP', 1, 0.5, 0),
    connections: Math.round(numberOption(flags.connections, 'BENCH_CONNECTIONS', 50, 50, 1)),
    sessions: Math.round(numberOption(flags.sessions, 'BENCH_SESSIONS', 2000, 300, 10)),
    // The memory sample writes 100 000 attributes through the service: in a profile it would hide the load.
    memoryAttrs: Math.round(numberOption(flags['memory-attrs'], 'BENCH_MEMORY_ATTRS', flags.profile ? 0 : 100_000, flags.profile ? 0 : 10_000, 0)),
    only: (flags.only ?? env.BENCH_ONLY ?? '').split(',').map((key) => key.trim()).filter((key) => key !== ''),
    compare: (flags.compare ?? env.BENCH_COMPARE) || undefined,
    pin: !flags['no-pin'],
    profile: flags.profile,
    write: flags['no-write'] ? false : flags.write || (!flags.quick && !flags.profile && flags.only === undefined && env.BENCH_ONLY === undefined && (flags.compare ?? env.BENCH_COMPARE ?? '') === '')
  }
  return {
    opts,
    run: { help: flags.help, quick: flags.quick, profileOut: flags['profile-out'], outFile: flags.out ?? join(ROOT, 'BENCHMARKS.md') }
  }
}

/**
 * BENCH_SERVICE_ENV="NAME=value,NAME=value": settings for the service under test, to measure what one of them costs;
 * with variable BENCH_COMPARE_ENV, those for the B build of an A/B only.
 */
export function serviceEnvOverrides (env: NodeJS.ProcessEnv = process.env, variable: 'BENCH_SERVICE_ENV' | 'BENCH_COMPARE_ENV' = 'BENCH_SERVICE_ENV'): Record<string, string> {
  const text = env[variable] ?? ''
  return Object.fromEntries(text.split(',').map((pair) => pair.trim()).filter((pair) => pair !== '').map((pair) => {
    const equals = pair.indexOf('=')
    if (equals <= 0) throw new Error(`${variable}: "${pair}" is not NAME=value`)
    return [pair.slice(0, equals), pair.slice(equals + 1)]
  }))
}
