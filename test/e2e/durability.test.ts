import assert from 'node:assert/strict'
import type { ChildProcess } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, test, type TestContext } from 'node:test'
import { setTimeout as sleep } from 'node:timers/promises'
import { freePort, killProcess, spawnRedis } from '../fixtures/redis.ts'
import { assertOk, call, listen } from './http.ts'
import { sessions } from './load.ts'

// Redis with an append-only file, SIGKILLed under a load of writes and started again on the same
// files: every write the service acknowledged (200) must still be there. A SIGKILL loses no
// write() that Redis made before it answered, whatever appendfsync says (the kernel keeps it);
// what fsync adds is survival of a machine crash or power loss, which no test here can make.
// The figures go to docs/SCALING.md.

const P = '/sso/session/attr'
const WRITERS = 8

async function killedUnderLoad (t: TestContext, fsync: 'always' | 'everysec'): Promise<{ acknowledged: number, lost: number, refused: number }> {
  const dir = mkdtempSync(join(tmpdir(), `sso-attrs-aof-${fsync}-`))
  const port = await freePort()
  const args = ['--appendonly', 'yes', '--appendfsync', fsync]
  let redis: ChildProcess | undefined = await spawnRedis(port, dir, args)
  t.after(async () => {
    await killProcess(redis)
    rmSync(dir, { recursive: true, force: true })
  })
  const { base } = await listen(t, { SSO_STORE: 'redis', REDIS_URL: `redis://127.0.0.1:${port}`, REDIS_COMMAND_TIMEOUT_MS: 500 })
  const all = await sessions(WRITERS)
  const acknowledged = all.map(() => [] as string[])
  let refused = 0
  const stop = new AbortController()
  const writers = all.map(async ({ ust }, writer) => {
    for (let i = 0; !stop.signal.aborted; i++) {
      const name = `w${i}`
      const reply = await call(base, 'PUT', P, { ust, body: { current_app: 'CRM', name, value: i } })
      if (reply.status === 200) acknowledged[writer]!.push(name)
      else refused++
    }
  })
  await sleep(1500)
  await killProcess(redis)
  await sleep(300)
  stop.abort()
  await Promise.all(writers)
  redis = await spawnRedis(port, dir, args)

  let lost = 0
  for (const [writer, { ust }] of all.entries()) {
    let names: string[] | undefined
    for (let attempt = 0; names === undefined && attempt < 100; attempt++) {
      const reply = await call(base, 'GET', `${P}/names?current_app=CRM`, { ust })
      if (reply.status === 200) names = assertOk(reply).result as string[]
      else await sleep(50)
    }
    assert.ok(names !== undefined, 'the service serves again after the restart')
    const present = new Set(names)
    lost += acknowledged[writer]!.filter((name) => !present.has(name)).length
  }
  const total = acknowledged.reduce((sum, names) => sum + names.length, 0)
  t.diagnostic(`appendfsync ${fsync}: ${total} writes acknowledged before the SIGKILL, ${lost} lost after the restart; ${refused} refused with 503 around the kill`)
  assert.ok(total > 100, `enough writes acknowledged to mean something (${total})`)
  return { acknowledged: total, lost, refused }
}

describe('durability across a SIGKILL of Redis with an append-only file', () => {
  test('appendfsync always: no acknowledged write is lost', { timeout: 60_000 }, async (t) => {
    const { lost } = await killedUnderLoad(t, 'always')
    assert.equal(lost, 0)
  })

  test('appendfsync everysec: no acknowledged write is lost to a process kill either (fsync guards against a machine crash, not this)', { timeout: 60_000 }, async (t) => {
    const { lost } = await killedUnderLoad(t, 'everysec')
    assert.equal(lost, 0)
  })
})
