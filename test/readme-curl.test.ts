import assert from 'node:assert/strict'
import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, test } from 'node:test'
import { setTimeout as sleep } from 'node:timers/promises'
import { fileURLToPath } from 'node:url'
import { README_PATH } from '../scripts/config-table.ts'
import { freePort } from './fixtures/redis.ts'
import { RUN_TYPESCRIPT } from './helper.ts'

// Runs the README's curl sections ("Two minutes", "Try it", "Metrics") as a reader would: the
// real server started the way `npm start` starts it (development defaults, embedded store,
// development issuer), then every ```sh block pasted in order into one bash, and each output
// compared with the block the README shows after it. Only the port is rewritten; cids and
// times are the only values that may differ from the README.

const ROOT = fileURLToPath(new URL('..', import.meta.url))
const README_PORT = 17010

interface Block { lang: string, text: string }
interface Step { section: string, commands: string[], expected: Block | undefined }

const TWO_MINUTES = '## Two minutes: from clone to first attribute'
const TRY_IT = '## Try it'
const METRICS = '## Metrics'
/** The sections whose sh blocks run, in this order, in one shell. */
const SECTIONS = [TWO_MINUTES, TRY_IT, METRICS]

/** The fenced blocks of one `## ` section, in order. */
function blocksOf (markdown: string, heading: string): Block[] {
  const start = markdown.indexOf(`\n${heading}\n`)
  assert.ok(start !== -1, `README has a "${heading}" section`)
  const rest = markdown.slice(start + heading.length + 2)
  const end = rest.search(/\n## /)
  const section = end === -1 ? rest : rest.slice(0, end)
  return [...section.matchAll(/^```(\w*)\n([\s\S]*?)^```$/gm)].map((match) => ({ lang: match[1]!, text: match[2]!.replace(/\n$/, '') }))
}

/** The `## ` headings of the markdown, each with its fenced blocks. */
function sectionsOf (markdown: string): Array<{ heading: string, blocks: Block[] }> {
  return [...markdown.matchAll(/^## .*$/gm)].map((match) => ({ heading: match[0], blocks: blocksOf(markdown, match[0]) }))
}

/** The clone-and-start block: what this test does itself by starting the server. */
const isSetup = (block: Block) => block.lang === 'sh' && /\bnpm start\b/.test(block.text)

/** Each sh block with the output block that follows it, if any. */
function stepsOf (section: string, blocks: Block[]): Step[] {
  const steps: Step[] = []
  blocks.forEach((block, index) => {
    if (block.lang !== 'sh' || isSetup(block)) return
    const next = blocks[index + 1]
    steps.push({ section, commands: block.text.split('\n').filter((line) => line.trim() !== ''), expected: next !== undefined && next.lang !== 'sh' ? next : undefined })
  })
  return steps
}

const VOLATILE_TIMES = new Set(['creation_time', 'last_modified', 'expiration_time'])

/** The JSON with what legitimately differs between runs replaced by markers. */
function normalized (value: unknown, key = ''): unknown {
  if (Array.isArray(value)) return value.map((item) => normalized(item))
  if (value !== null && typeof value === 'object') {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, normalized(v, k)]))
  }
  if (key === 'cid' && typeof value === 'string') return '<cid>'
  if (VOLATILE_TIMES.has(key) && typeof value === 'string') {
    assert.match(value, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/, `${key} is an ISO 8601 UTC time`)
    return '<time>'
  }
  return value
}

interface HttpReply { statusLine: string, headers: Map<string, string>, body: string }

function parseHttp (text: string): HttpReply {
  const normalizedText = text.replaceAll('\r\n', '\n')
  const split = normalizedText.indexOf('\n\n')
  const head = normalizedText.slice(0, split === -1 ? undefined : split).split('\n')
  const headers = new Map<string, string>()
  for (const line of head.slice(1)) {
    const colon = line.indexOf(':')
    if (colon > 0) headers.set(line.slice(0, colon).trim().toLowerCase(), line.slice(colon + 1).trim())
  }
  return { statusLine: head[0]!.trim(), headers, body: split === -1 ? '' : normalizedText.slice(split + 2).trim() }
}

function parseJson (text: string, what: string): unknown {
  try {
    return JSON.parse(text)
  } catch {
    assert.fail(`${what}: not JSON: ${text.slice(0, 300)}`)
  }
}

const readme = readFileSync(README_PATH, 'utf8')
const steps = SECTIONS.flatMap((heading) => stepsOf(heading, blocksOf(readme, heading)))
let server: ChildProcess | undefined
let serverLog = ''
let port = 0
let devDir = ''
let outputs: string[][] = []

/** The environment a reader's shell would have, without any of this machine's service settings. */
function cleanEnv (): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {}
  for (const [name, value] of Object.entries(process.env)) {
    if (/^(SSO_|REDIS_)/.test(name) || ['NODE_ENV', 'HOST', 'PORT', 'LOG_LEVEL', 'NODE_OPTIONS', 'NODE_TEST_CONTEXT'].includes(name)) continue
    env[name] = value
  }
  return { ...env, SSO_DEV_DIR: devDir }
}

before(async () => {
  devDir = mkdtempSync(join(tmpdir(), 'sso-attrs-readme-'))
  port = await freePort()
  server = spawn(process.execPath, [...RUN_TYPESCRIPT, 'src/server.ts'], {
    cwd: ROOT,
    env: { ...cleanEnv(), PORT: String(port), LOG_LEVEL: 'warn' },
    stdio: ['ignore', 'pipe', 'pipe']
  })
  server.stdout!.on('data', (chunk: Buffer) => { serverLog += chunk.toString() })
  server.stderr!.on('data', (chunk: Buffer) => { serverLog += chunk.toString() })
  for (let attempt = 0; ; attempt++) {
    try {
      if ((await fetch(`http://127.0.0.1:${port}/healthz`)).ok) break
    } catch {}
    if (attempt > 150 || server.exitCode !== null) assert.fail(`the server did not start:\n${serverLog}`)
    await sleep(100)
  }

  // One bash for the whole walkthrough (the UST variable carries over); a marker after each
  // command splits the output.
  const script = steps.map((step) => step.commands.map((command) =>
    `${command.replaceAll(`localhost:${README_PORT}`, `localhost:${port}`)}\nprintf '\\n@@END@@\\n'`).join('\n')).join('\n')
  const run = spawnSync('bash', ['-c', script], { cwd: ROOT, env: cleanEnv(), encoding: 'utf8', timeout: 60_000 })
  assert.equal(run.status, 0, `the walkthrough ran: ${run.stderr}`)
  const pieces = run.stdout.split('\n@@END@@\n')
  outputs = steps.map((step) => pieces.splice(0, step.commands.length).map((piece) => piece.trim()))
})

after(async () => {
  if (server !== undefined && server.exitCode === null) {
    const exited = new Promise((resolve) => server!.once('exit', resolve))
    server.kill('SIGTERM')
    await exited
  }
  rmSync(devDir, { recursive: true, force: true })
})

describe('README curl examples ("Two minutes", "Try it", "Metrics"), run against a started service', () => {
  test('has the steps of a walkthrough', () => {
    const tryIt = steps.filter((step) => step.section === TRY_IT)
    assert.ok(tryIt.length >= 8, `${tryIt.length} sh blocks in Try it`)
    for (const section of [TWO_MINUTES, TRY_IT]) {
      const first = steps.find((step) => step.section === section)
      assert.ok(first?.commands[0]!.startsWith('UST=$('), `${section} starts by getting a UST`)
    }
    for (const step of steps.filter((step) => !step.commands[0]!.startsWith('UST=$('))) {
      assert.ok(step.expected !== undefined, `${step.commands[0]} shows its output`)
    }
  })

  test('the two-minute path starts from a clone with npm ci && npm start, as this test does', () => {
    const setup = blocksOf(readme, TWO_MINUTES).filter(isSetup)
    assert.equal(setup.length, 1)
    assert.match(setup[0]!.text, /^git clone .+ sso-attrs && cd sso-attrs\nnpm ci && npm start$/)
    assert.match(readme.slice(0, readme.indexOf(`\n${TWO_MINUTES}\n`)), /^# sso-attrs\n/, 'an early section of the README')
  })

  test('every curl command in the README is in a section run here', () => {
    for (const { heading, blocks } of sectionsOf(readme)) {
      if (SECTIONS.includes(heading)) continue
      for (const block of blocks) assert.doesNotMatch(block.text, /^\s*curl /m, `a curl in "${heading}" that no test runs`)
    }
  })

  test('the UST command prints a JWT', () => {
    assert.equal(outputs[0]![0], '', 'the assignment prints nothing')
    const check = spawnSync('bash', ['-c', `${steps[0]!.commands[0]}; printf %s "$UST"`], { cwd: ROOT, env: cleanEnv(), encoding: 'utf8' })
    assert.match(check.stdout, /^[\w-]+\.[\w-]+\.[\w-]+$/)
  })

  steps.forEach((step, index) => {
    if (step.expected === undefined) return
    test(`${step.section.slice(3)}, block ${index + 1}: ${step.commands[0]!.slice(0, 90)}`, () => {
      // A UST=$(...) assignment prints nothing; the block's output is that of the other commands.
      const isAssignment = step.commands.map((command) => command.startsWith('UST=$('))
      outputs[index]!.forEach((output, n) => { if (isAssignment[n]) assert.equal(output, '', `${step.commands[n]} prints nothing`) })
      const actual = outputs[index]!.filter((_, n) => !isAssignment[n])
      const expected = step.expected!
      if (expected.lang === 'json') {
        const lines = expected.text.split('\n')
        assert.equal(actual.length, lines.length, 'one JSON line per command')
        lines.forEach((line, n) => {
          const got = parseJson(actual[n]!, `command ${n + 1}`)
          assert.deepEqual(normalized(got), normalized(parseJson(line, 'README')), `command ${n + 1}: ${actual[n]}`)
        })
      } else if (expected.lang === 'http') {
        assert.equal(actual.length, 1, 'one command')
        const got = parseHttp(actual[0]!)
        const shown = parseHttp(expected.text)
        assert.equal(got.statusLine, shown.statusLine)
        for (const [name, value] of shown.headers) {
          assert.ok(got.headers.has(name), `header ${name}`)
          if (name !== 'x-cid') assert.equal(got.headers.get(name), value, `header ${name}`)
        }
        const body = parseJson(got.body, 'body') as { cid?: string }
        assert.equal(got.headers.get('x-cid'), body.cid, 'X-Cid is the body\'s cid')
        assert.deepEqual(normalized(body), normalized(parseJson(shown.body, 'README body')))
      } else if (expected.lang === 'text') {
        assert.equal(actual.length, 1, 'one command')
        assert.deepEqual(actual[0]!.split('\n').map((line) => line.trim()), expected.text.split('\n'))
      } else {
        assert.fail(`unexpected output block language "${expected.lang}"`)
      }
    })
  })
})
