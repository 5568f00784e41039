import assert from 'node:assert/strict'
import { execFile, spawn } from 'node:child_process'
import { randomUUID } from 'node:crypto'
import type { AddressInfo } from 'node:net'
import { test } from 'node:test'
import { fileURLToPath } from 'node:url'
import { build, mintUst, RUN_TYPESCRIPT } from '../helper.ts'

// `sso-attrs ws`: one call, and --follow for notifications, against a served app.

const ROOT = fileURLToPath(new URL('../../', import.meta.url))
const CLI = [...RUN_TYPESCRIPT, 'src/cli.ts', 'ws']

function env (url: string, ust?: string): NodeJS.ProcessEnv {
  return { PATH: process.env.PATH, HOME: process.env.HOME, SSO_WS_URL: url, ...(ust !== undefined ? { SSO_UST: ust } : {}) }
}

async function run (args: string[], environment: NodeJS.ProcessEnv): Promise<{ code: number, stdout: string, stderr: string }> {
  return await new Promise((resolve) => {
    execFile(process.execPath, [...CLI, ...args], { cwd: ROOT, env: environment, timeout: 30_000 }, (error, stdout, stderr) => {
      resolve({ code: error === null ? 0 : Number((error as { code?: number }).code), stdout, stderr })
    })
  })
}

test('sso-attrs ws calls a method and prints the result; an error answer exits 1; --follow prints notifications', async (t) => {
  const app = await build(t)
  await app.listen({ port: 0, host: '127.0.0.1' })
  const url = `ws://127.0.0.1:${(app.server.address() as AddressInfo).port}/api/current`
  const sid = randomUUID()
  const ust = await mintUst({ sub: 'kim', sid })

  const [set, unauthenticated, bad] = await Promise.all([
    run(['session.attr.set', '["theme", "dark"]'], env(url, ust)),
    run(['session.attr.names'], env(url)),
    run(['session.attr.set', '{"name": "x", "colour": 1}'], env(url, ust))
  ])
  assert.equal(set.code, 0, set.stderr)
  assert.equal(JSON.parse(set.stdout).version, 1)
  assert.equal(unauthenticated.code, 1)
  assert.equal(JSON.parse(unauthenticated.stderr).data.errname, 'ENOTAUTHENTICATED')
  assert.equal(bad.code, 1)
  assert.equal(JSON.parse(bad.stderr).code, -32602)
  const get = await run(['session.attr.get', '["theme"]'], env(url, ust))
  assert.equal(JSON.parse(get.stdout).value, 'dark')

  const follower = spawn(process.execPath, [...CLI, '--follow', 'core.subscribe', '["session.attr"]'], { cwd: ROOT, env: env(url, ust) })
  t.after(() => follower.kill())
  let stdout = ''
  let written = false
  const lines = new Promise<string[]>((resolve) => {
    follower.stdout.on('data', (chunk: Buffer) => {
      stdout += chunk.toString()
      // Subscribed (its answer printed): a REST write of the same session is the event.
      if (stdout.includes('\n}\n') && !written) {
        written = true
        app.inject({ method: 'PUT', url: '/sso/session/attr', headers: { authorization: `Bearer ${ust}` }, payload: { current_app: 'CRM', name: 'theme', value: 'light' } })
          .catch((error: unknown) => { follower.kill(); throw error })
      }
      const notifications = stdout.split('\n').filter((line) => line.startsWith('{"jsonrpc"'))
      if (notifications.length > 0) resolve(notifications)
    })
  })
  const [notification] = await lines
  const params = JSON.parse(notification!).params
  assert.equal(params.msg, 'changed')
  assert.equal(params.fields.version, 2)
  assert.equal(params.fields.value, 'light')
})
