import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { randomBytes, randomUUID } from 'node:crypto'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, test, type TestContext } from 'node:test'
import { fileURLToPath } from 'node:url'
import type { Cluster } from 'ioredis'
import type { App } from '../../src/app.ts'
import { parseEncryptionKeys } from '../../src/config.ts'
import { rekey } from '../../src/rekey.ts'
import { sessionIdOf } from '../../src/ust.ts'
import { ValueCipher } from '../../src/value-cipher.ts'
import { RedisCluster } from '../fixtures/cluster.ts'
import { build, mintUst, RUN_TYPESCRIPT, TEST_ISSUER } from '../helper.ts'

// rekey on a real 3-master Redis Cluster: sessions spread over every master, each master
// scanned, the conditional writes routed to the slot's master.

const KEY = {
  k1: `k1:${Buffer.alloc(32, 1).toString('base64url')}`,
  k2: `k2:${Buffer.alloc(32, 2).toString('base64url')}`
}
const SESSIONS = 30

let cluster: RedisCluster
let inspect: Cluster
before(async () => {
  cluster = await RedisCluster.start()
  inspect = cluster.client()
})
after(async () => {
  inspect.disconnect()
  await cluster.close()
})

async function service (t: TestContext, prefix: string, keys: string): Promise<App> {
  return await build(t, { SSO_STORE: 'redis', REDIS_CLUSTER_NODES: cluster.seeds, SSO_KEY_PREFIX: prefix, SSO_ENCRYPTION_KEYS: keys })
}

interface Session { ust: string, sessionId: string }

/** Sessions with one encrypted and one plain value each, written under k1. */
async function seed (t: TestContext, prefix: string): Promise<Session[]> {
  const app = await service(t, prefix, KEY.k1)
  const sessions: Session[] = []
  for (let i = 0; i < SESSIONS; i++) {
    const sid = randomUUID()
    const session = { ust: await mintUst({ sid, sub: `user-${sid}` }), sessionId: sessionIdOf(TEST_ISSUER, sid) }
    sessions.push(session)
    const reply = await app.inject({
      method: 'PUT',
      url: '/sso/session/attr',
      headers: { authorization: `Bearer ${session.ust}` },
      payload: { current_app: 'CRM', data: [{ name: 'secret', value: `s${i}`, encrypt: true }, { name: 'plain', value: i }] }
    })
    assert.equal(reply.statusCode, 200, reply.body)
  }
  return sessions
}

/** How many of the prefix's attribute hashes each master holds. */
async function hashesPerMaster (prefix: string): Promise<number[]> {
  return await Promise.all(inspect.nodes('master').map(async (node) => (await node.keys(`${prefix}*:a`)).length))
}

async function readAll (app: App, sessions: Session[]): Promise<unknown[]> {
  return await Promise.all(sessions.map(async (session) => {
    const reply = await app.inject({
      method: 'GET',
      url: '/sso/session/attr?current_app=CRM&data=secret&data=plain',
      headers: { authorization: `Bearer ${session.ust}` }
    })
    assert.equal(reply.statusCode, 200, reply.body)
    const result = reply.json<{ result: Record<string, { value: unknown }> }>().result
    return [result.secret!.value, result.plain!.value]
  }))
}

describe('rekey on a Redis Cluster', () => {
  test('scans every master: after rekey every value reads back with only the new key', async (t) => {
    const prefix = `rkc-${randomBytes(4).toString('hex')}:`
    const sessions = await seed(t, prefix)
    const spread = await hashesPerMaster(prefix)
    assert.equal(spread.length, 3)
    assert.ok(spread.every((count) => count > 0), `sessions on every master: ${spread.join(', ')}`)

    await inspect.connect().catch(() => {})
    const report = await rekey({ client: inspect, keyPrefix: prefix, cipher: new ValueCipher(parseEncryptionKeys(`${KEY.k2},${KEY.k1}`)) })
    assert.deepEqual(
      { nodes: report.nodes, sessions: report.sessions, encrypted: report.encrypted, rekeyed: report.rekeyed, failed: report.failed },
      { nodes: 3, sessions: SESSIONS, encrypted: SESSIONS, rekeyed: SESSIONS, failed: 0 }
    )
    const expected = sessions.map((_, i) => [`s${i}`, i])
    assert.deepEqual(await readAll(await service(t, prefix, KEY.k2), sessions), expected)
  })

  test('sso-attrs rekey takes REDIS_CLUSTER_NODES from the environment', async (t) => {
    const prefix = `rkc-${randomBytes(4).toString('hex')}:`
    const sessions = await seed(t, prefix)
    const devDir = mkdtempSync(join(tmpdir(), 'sso-attrs-rekey-cluster-'))
    t.after(() => rmSync(devDir, { recursive: true, force: true }))
    const env: NodeJS.ProcessEnv = {}
    for (const [name, value] of Object.entries(process.env)) {
      if (!/^(SSO_|REDIS_)/.test(name) && !['NODE_ENV', 'NODE_OPTIONS', 'NODE_TEST_CONTEXT'].includes(name)) env[name] = value
    }
    const run = await new Promise<{ code: number | null, stdout: string, stderr: string }>((resolve) => {
      execFile(process.execPath, [...RUN_TYPESCRIPT, 'src/cli.ts', 'rekey'], {
        cwd: fileURLToPath(new URL('../..', import.meta.url)),
        env: { ...env, SSO_DEV_DIR: devDir, SSO_STORE: 'redis', REDIS_CLUSTER_NODES: cluster.seeds, SSO_KEY_PREFIX: prefix, SSO_ENCRYPTION_KEYS: `${KEY.k2},${KEY.k1}` },
        timeout: 60_000
      }, (error, stdout, stderr) => resolve({ code: error === null ? 0 : typeof error.code === 'number' ? error.code : null, stdout, stderr }))
    })
    assert.equal(run.code, 0, run.stderr)
    assert.match(run.stdout, new RegExp(`^rekey: ${SESSIONS} sessions scanned, ${SESSIONS} encrypted values: ${SESSIONS} re-encrypted,`, 'm'))
    assert.deepEqual(await readAll(await service(t, prefix, KEY.k2), sessions), sessions.map((_, i) => [`s${i}`, i]))
  })
})
