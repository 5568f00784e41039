import assert from 'node:assert/strict'
import { execFileSync, spawn } from 'node:child_process'
import { existsSync } from 'node:fs'
import { describe, test } from 'node:test'
import { setTimeout as sleep } from 'node:timers/promises'
import { fileURLToPath } from 'node:url'
import { prettyTransport } from '../../src/pretty-logs.ts'
import { freePort } from '../fixtures/redis.ts'
import { serverProcessEnv } from '../helper.ts'

const ROOT = fileURLToPath(new URL('../..', import.meta.url))
const development = { NODE_ENV: 'development' }
const everythingInstalled = () => true

describe('prettyTransport', () => {
  test('pino-pretty at a terminal in development', () => {
    assert.equal(prettyTransport(development, true, everythingInstalled)?.target, 'pino-pretty')
  })

  test('JSON when stdout is not a terminal, or in production', () => {
    assert.equal(prettyTransport(development, false, everythingInstalled), undefined)
    assert.equal(prettyTransport({ NODE_ENV: 'production' }, true, everythingInstalled), undefined)
  })

  test('JSON when pino-pretty is not installed (npm ci --omit=dev), instead of a failed start', () => {
    const asked: string[] = []
    assert.equal(prettyTransport(development, true, (name) => { asked.push(name); return false }), undefined)
    assert.deepEqual(asked, ['pino-pretty'])
  })

  test('looks pino-pretty up where the server resolves it (it is installed here, as a dev dependency)', () => {
    assert.equal(prettyTransport(development, true)?.target, 'pino-pretty')
  })
})

// The real entry point at a real terminal: `script` gives the server a pseudo-terminal as stdout.
const noScript = existsSync('/usr/bin/script') ? false : '/usr/bin/script (util-linux) is missing'

test('src/server.ts at a terminal in development logs for a person, not JSON', { skip: noScript, timeout: 60_000 }, async (t) => {
  const port = await freePort()
  const child = spawn('/usr/bin/script', ['-qec', `exec ${process.execPath} --import tsx src/server.ts`, '/dev/null'], {
    cwd: ROOT,
    stdio: ['ignore', 'pipe', 'pipe'],
    env: serverProcessEnv(port, { TERM: 'dumb', LOG_LEVEL: 'info', SSO_STORE: 'memory' })
  })
  let output = ''
  child.stdout.on('data', (chunk: Buffer) => { output += chunk.toString() })
  child.stderr.on('data', (chunk: Buffer) => { output += chunk.toString() })
  const exited = new Promise((resolve) => child.once('exit', resolve))
  // `script` runs the server as its child, in a session of its own: stop that process by its id.
  const serverPid = () => Number(execFileSync('pgrep', ['-P', String(child.pid)], { encoding: 'utf8' }).trim().split('\n')[0])
  t.after(async () => {
    if (child.exitCode !== null) return
    try {
      process.kill(serverPid(), 'SIGKILL')
    } catch {}
    child.kill('SIGKILL')
    await exited
  })

  const started = Date.now()
  while (!output.includes(`Server listening at http://127.0.0.1:${port}`)) {
    assert.equal(child.exitCode, null, `the server exited: ${output}`)
    assert.ok(Date.now() - started < 45_000, `no "Server listening" line within 45 s: ${output}`)
    await sleep(100)
  }
  process.kill(serverPid(), 'SIGTERM')
  await exited
  const lines = output.split(/\r?\n/).filter((line) => line.includes('Server listening'))
  assert.ok(lines.length > 0)
  for (const line of lines) {
    assert.doesNotMatch(line, /^\s*\{/, 'not a JSON line')
    assert.match(line, /\d\d:\d\d:\d\d\.\d{3}/, 'a pino-pretty time stamp')
    assert.match(line, /INFO/, 'a level name')
  }
})
