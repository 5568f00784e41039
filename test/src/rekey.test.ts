import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { randomBytes, randomUUID } from 'node:crypto'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, test, type TestContext } from 'node:test'
import { fileURLToPath } from 'node:url'
import { setTimeout as sleep } from 'node:timers/promises'
import { Redis } from 'ioredis'
import type { App } from '../../src/app.ts'
import { parseEncryptionKeys } from '../../src/config.ts'
import { sessionOwner } from '../../src/store/types.ts'
import { formatReport, rekey, type RekeyOptions, type RekeyReport } from '../../src/rekey.ts'
import { sessionIdOf, userIdOf } from '../../src/ust.ts'
import { ValueCipher } from '../../src/value-cipher.ts'
import { freePort, RedisServer } from '../fixtures/redis.ts'
import { build, mintUst, RUN_TYPESCRIPT, TEST_ISSUER } from '../helper.ts'

// Key rotation end to end against a real redis-server: values written under one key,
// re-encrypted by rekey while clients keep writing, then read back through the service with
// the old key removed.

const KEY = {
  k0: `k0:${Buffer.alloc(32, 3).toString('base64url')}`,
  k1: `k1:${Buffer.alloc(32, 1).toString('base64url')}`,
  k2: `k2:${Buffer.alloc(32, 2).toString('base64url')}`
}

let redis: RedisServer
let raw: Redis

before(async () => {
  redis = await RedisServer.start()
  raw = redis.client()
})

after(async () => {
  raw.disconnect()
  await redis.close()
})

function uniquePrefix (): string {
  return `rk-${randomBytes(5).toString('hex')}:`
}

/** The service on the shared Redis, with these encryption keys (first encrypts). */
async function service (t: TestContext, prefix: string, keys: string): Promise<App> {
  return await build(t, { SSO_STORE: 'redis', REDIS_URL: redis.url, SSO_KEY_PREFIX: prefix, SSO_ENCRYPTION_KEYS: keys })
}

interface Session { ust: string, sessionId: string }

async function newSession (): Promise<Session> {
  const sid = randomUUID()
  // A user of its own per session: no test comes near a per-caller rate limit.
  return { ust: await mintUst({ sid, sub: `user-${sid}` }), sessionId: sessionIdOf(TEST_ISSUER, sid) }
}

type Body = Record<string, unknown>
interface Reply { statusCode: number, body: Body }

async function call (app: App, session: Session, method: 'GET' | 'PUT' | 'PATCH' | 'DELETE', body: Body): Promise<Reply> {
  const response = await app.inject({
    method,
    url: '/sso/session/attr',
    headers: { authorization: `Bearer ${session.ust}`, 'content-type': 'application/json' },
    payload: JSON.stringify({ current_app: 'CRM', ...body })
  })
  return { statusCode: response.statusCode, body: response.json<Body>() }
}

async function ok (app: App, session: Session, method: 'GET' | 'PUT' | 'PATCH' | 'DELETE', body: Body): Promise<Body> {
  const reply = await call(app, session, method, body)
  assert.equal(reply.statusCode, 200, JSON.stringify(reply.body))
  return reply.body
}

function cipher (keys: string): ValueCipher {
  return new ValueCipher(parseEncryptionKeys(keys))
}

/** rekey on its own connection, as the command runs it. */
async function runRekey (prefix: string, keys: string, options: Partial<RekeyOptions> = {}): Promise<RekeyReport> {
  const client = new Redis(redis.url)
  try {
    return await rekey({ client, keyPrefix: prefix, cipher: cipher(keys), ...options })
  } finally {
    client.disconnect()
  }
}

/** Every record stored under a prefix, straight from Redis. */
async function records (prefix: string): Promise<Map<string, string>> {
  const all = new Map<string, string>()
  for (const key of await raw.keys(`${prefix}*:a`)) {
    for (const [name, record] of Object.entries(await raw.hgetall(key))) all.set(`${key} ${name}`, record)
  }
  return all
}

/** The key ids of every encrypted record under a prefix. */
async function kidsInUse (prefix: string): Promise<Set<string>> {
  const kids = new Set<string>()
  for (const record of (await records(prefix)).values()) {
    const match = /:e:gcm1\.([^.]+)\./.exec(record)
    if (match !== null) kids.add(match[1]!)
  }
  return kids
}

function hashKey (prefix: string, session: Session): string {
  return `${prefix}{${session.sessionId}}:a`
}

describe('rekey', () => {
  test('user attributes are re-encrypted too, under their user binding; session and user values read back with the old key removed', async (t) => {
    const prefix = uniquePrefix()
    const before = await service(t, prefix, KEY.k1)
    const session = await newSession()
    const sub = `user-${randomUUID()}`
    const userUst = await mintUst({ sid: randomUUID(), sub })
    const userCall = async (app: App, method: 'GET' | 'PUT', body: Body) => await app.inject({
      method, url: '/sso/user/attr', headers: { authorization: `Bearer ${userUst}`, 'content-type': 'application/json' }, payload: JSON.stringify({ current_app: 'CRM', ...body })
    })
    assert.equal((await userCall(before, 'PUT', { data: [{ name: 'card', value: '4111', encrypt: true }, { name: 'theme', value: 'dark' }] })).statusCode, 200)
    await ok(before, session, 'PUT', { name: 'secret', value: 's', encrypt: true })
    const userHash = `${prefix}{u:${userIdOf(TEST_ISSUER, sub)}}:a`
    const versionBefore = (await raw.hget(userHash, 'card'))!.split(':')[0]

    const report = await runRekey(prefix, `${KEY.k2},${KEY.k1}`)
    assert.deepEqual([report.sessions, report.users, report.encrypted, report.rekeyed, report.failed], [1, 1, 2, 2, 0])
    assert.match(formatReport(report), /^1 sessions and 1 users scanned, 2 encrypted values: 2 re-encrypted/)
    assert.deepEqual([...await kidsInUse(prefix)], ['k2'])
    assert.equal((await raw.hget(userHash, 'card'))!.split(':')[0], versionBefore, 'the version is kept')

    const after = await service(t, prefix, KEY.k2)
    const card = await userCall(after, 'GET', { name: 'card' })
    assert.equal(card.statusCode, 200, card.body)
    assert.equal(card.json<Body>().value, '4111')
    assert.equal((await ok(after, session, 'GET', { name: 'secret' })).value, 's')
  })

  test('after rekey the old key can be removed: every value reads back, versions and times unchanged', async (t) => {
    const prefix = uniquePrefix()
    const before = await service(t, prefix, KEY.k1)
    const sessions: Session[] = []
    for (let i = 0; i < 12; i++) {
      const session = await newSession()
      sessions.push(session)
      await ok(before, session, 'PUT', {
        data: [
          { name: 'secret', value: { n: i, text: 'ünïcode ✓' }, encrypt: true },
          { name: 'expiring', value: `token-${i}`, encrypt: true, expiration: 3600 },
          { name: 'plain', value: [i, 'clear'] }
        ]
      })
    }
    const names = { data: ['secret', 'expiring', 'plain'] }
    const expected = await Promise.all(sessions.map(async (session) => (await ok(before, session, 'GET', names)).result))

    // Without rekey, removing k1 makes its values unreadable: what the rest of the test undoes.
    const tooEarly = await service(t, prefix, KEY.k2)
    const refused = await call(tooEarly, sessions[0]!, 'GET', { name: 'secret' })
    assert.equal(refused.statusCode, 422)
    assert.deepEqual(refused.body.sub_status, ['E011006', 'E011004'])
    const ttlBefore = await raw.pttl(hashKey(prefix, sessions[0]!))

    const report = await runRekey(prefix, `${KEY.k2},${KEY.k1}`)
    assert.deepEqual(
      { sessions: report.sessions, encrypted: report.encrypted, rekeyed: report.rekeyed, current: report.current, skipped: report.skipped, failed: report.failed, byKid: report.byKid },
      { sessions: 12, encrypted: 24, rekeyed: 24, current: 0, skipped: 0, failed: 0, byKid: { k1: 24 } }
    )
    assert.deepEqual([...await kidsInUse(prefix)], ['k2'])
    assert.ok(await raw.pttl(hashKey(prefix, sessions[0]!)) <= ttlBefore, 'rekey does not renew a session')

    const onlyNew = await service(t, prefix, KEY.k2)
    for (const [index, session] of sessions.entries()) {
      assert.deepEqual((await ok(onlyNew, session, 'GET', names)).result, expected[index], `session ${index}`)
    }

    const again = await runRekey(prefix, KEY.k2)
    assert.equal(again.rekeyed, 0)
    assert.equal(again.current, 24)
    assert.deepEqual(again.byKid, {})
  })

  test('rekey records no change event: a subscriber of a rekeyed session sees only the next write', async (t) => {
    const prefix = uniquePrefix()
    const app = await service(t, prefix, KEY.k1)
    const session = await newSession()
    await ok(app, session, 'PUT', { data: [{ name: 'secret', value: 's', encrypt: true }, { name: 'plain', value: 1 }] })
    const events: string[] = []
    const subscription = await app.eventFeed.subscribe(sessionOwner(session.sessionId), { onEvent: (event) => { events.push(`${event.kind} ${event.name ?? ''}`) } })
    t.after(() => { subscription.close() })
    assert.equal((await runRekey(prefix, `${KEY.k2},${KEY.k1}`)).rekeyed, 1)
    await ok(app, session, 'PUT', { name: 'mark', value: 1 })
    for (let waited = 0; events.length < 1 && waited < 2_000; waited += 10) await sleep(10)
    await sleep(50)
    assert.deepEqual(events, ['added mark'])
  })

  test('a client write between rekey\'s read and its write is never lost', async (t) => {
    const prefix = uniquePrefix()
    const before = await service(t, prefix, KEY.k1)
    const rotated = await service(t, prefix, `${KEY.k2},${KEY.k1}`)
    const session = await newSession()
    await ok(before, session, 'PUT', {
      encrypt: true,
      data: [{ name: 'rewritten', value: 'A1' }, { name: 'expiry-only', value: 'B1' }, { name: 'deleted', value: 'C1' }, { name: 'untouched', value: 'D1' }]
    })
    let interfered = 0
    const report = await runRekey(prefix, `${KEY.k2},${KEY.k1}`, {
      afterRead: async () => {
        if (interfered++ > 0) return
        await ok(rotated, session, 'PUT', { name: 'rewritten', value: 'A2' })
        // An expiry-only update keeps the stored ciphertext, still under k1: rekey must retry it.
        await ok(rotated, session, 'PATCH', { name: 'expiry-only', expiration: 600 })
        await ok(rotated, session, 'DELETE', { name: 'deleted' })
      }
    })
    assert.equal(interfered, 1)
    assert.deepEqual(
      { encrypted: report.encrypted, rekeyed: report.rekeyed, skipped: report.skipped, failed: report.failed },
      { encrypted: 4, rekeyed: 2, skipped: 2, failed: 0 }
    )

    const onlyNew = await service(t, prefix, KEY.k2)
    const result = (await ok(onlyNew, session, 'GET', { data: ['rewritten', 'expiry-only', 'deleted', 'untouched'] })).result as Record<string, Body>
    assert.equal(result.rewritten!.value, 'A2')
    assert.equal(result.rewritten!.version, 2)
    assert.equal(result['expiry-only']!.value, 'B1')
    assert.equal(result['expiry-only']!.version, 2)
    const expiresIn = Date.parse(String(result['expiry-only']!.expiration_time)) - Date.now()
    assert.ok(expiresIn > 590_000 && expiresIn <= 600_000, `the client's expiry stayed: ${expiresIn} ms`)
    assert.deepEqual(result.deleted, { found: false })
    assert.equal(result.untouched!.value, 'D1')
    assert.equal(result.untouched!.version, 1)
  })

  test('clients writing all through a rekey lose nothing', async (t) => {
    const prefix = uniquePrefix()
    const before = await service(t, prefix, KEY.k1)
    const rotated = await service(t, prefix, `${KEY.k2},${KEY.k1}`)
    const sessions = await Promise.all(Array.from({ length: 40 }, async () => await newSession()))
    await Promise.all(sessions.map(async (session) => await ok(before, session, 'PUT', { name: 'counter', value: 0, encrypt: true })))
    const ROUNDS = 12
    const writers = Promise.all(sessions.map(async (session) => {
      for (let n = 1; n <= ROUNDS; n++) {
        await ok(rotated, session, 'PUT', { name: 'counter', value: n })
        await ok(rotated, session, 'PATCH', { name: 'counter', expiration: 600 + n })
      }
    }))
    const [report] = await Promise.all([runRekey(prefix, `${KEY.k2},${KEY.k1}`, { concurrency: 4, scanCount: 5 }), writers])
    assert.equal(report.failed, 0, JSON.stringify(report.failures))
    assert.equal(report.sessions, 40)
    assert.deepEqual([...await kidsInUse(prefix)], ['k2'])
    const onlyNew = await service(t, prefix, KEY.k2)
    for (const session of sessions) {
      const attribute = await ok(onlyNew, session, 'GET', { name: 'counter' })
      assert.equal(attribute.value, ROUNDS)
      assert.equal(attribute.version, 1 + 2 * ROUNDS)
    }
  })

  test('a value under a key that is not configured, or that does not authenticate, fails and is left as it is', async (t) => {
    const prefix = uniquePrefix()
    const lost = await newSession()
    await ok(await service(t, prefix, KEY.k0), lost, 'PUT', { name: 'x', value: 'under k0', encrypt: true })
    const fine = await newSession()
    await ok(await service(t, prefix, KEY.k1), fine, 'PUT', { data: [{ name: 'y', value: 'under k1', encrypt: true }, { name: 'z', value: 'also', encrypt: true }] })
    // A ciphertext moved to another name no longer authenticates.
    await raw.hset(hashKey(prefix, fine), 'z', String(await raw.hget(hashKey(prefix, fine), 'y')))
    const stored = await records(prefix)

    const report = await runRekey(prefix, `${KEY.k2},${KEY.k1}`)
    assert.equal(report.rekeyed, 1)
    assert.equal(report.failed, 2)
    assert.deepEqual(report.byKid, { k0: 1, k1: 2 })
    const reasons = new Map(report.failures.map((failure) => [`${failure.session} ${failure.name}`, failure.reason]))
    assert.match(reasons.get(`${lost.sessionId} x`) ?? '', /^E011004: .*"k0"/)
    assert.match(reasons.get(`${fine.sessionId} z`) ?? '', /^E011006/)
    const now = await records(prefix)
    assert.equal(now.get(`${hashKey(prefix, lost)} x`), stored.get(`${hashKey(prefix, lost)} x`))
    assert.equal(now.get(`${hashKey(prefix, fine)} z`), stored.get(`${hashKey(prefix, fine)} z`))
    assert.notEqual(now.get(`${hashKey(prefix, fine)} y`), stored.get(`${hashKey(prefix, fine)} y`))
  })

  test('a dry run counts and writes nothing', async (t) => {
    const prefix = uniquePrefix()
    const session = await newSession()
    await ok(await service(t, prefix, KEY.k1), session, 'PUT', { data: [{ name: 'a', value: 1, encrypt: true }, { name: 'b', value: 2 }] })
    const stored = await records(prefix)
    const report = await runRekey(prefix, `${KEY.k2},${KEY.k1}`, { dryRun: true })
    assert.equal(report.dryRun, true)
    assert.equal(report.rekeyed, 1)
    assert.deepEqual(report.byKid, { k1: 1 })
    assert.deepEqual(await records(prefix), stored)
  })

  test('only the configured prefix is scanned, taken literally (no glob)', async (t) => {
    const prefix = `rk[x]*${randomBytes(3).toString('hex')}:`
    // What the prefix would match as a glob: tx...
    const lookalike = `rkx-other-${prefix.slice(6)}`
    const mine = await newSession()
    const theirs = await newSession()
    await ok(await service(t, prefix, KEY.k1), mine, 'PUT', { name: 'a', value: 1, encrypt: true })
    await ok(await service(t, lookalike, KEY.k1), theirs, 'PUT', { name: 'a', value: 1, encrypt: true })
    const others = await records(lookalike)
    const report = await runRekey(prefix, `${KEY.k2},${KEY.k1}`)
    assert.equal(report.sessions, 1)
    assert.equal(report.rekeyed, 1)
    assert.deepEqual(await records(lookalike), others)
  })

  test('an aborted run stops before the next page and says so', async (t) => {
    const prefix = uniquePrefix()
    await ok(await service(t, prefix, KEY.k1), await newSession(), 'PUT', { name: 'a', value: 1, encrypt: true })
    const controller = new AbortController()
    controller.abort()
    const report = await runRekey(prefix, `${KEY.k2},${KEY.k1}`, { signal: controller.signal })
    assert.equal(report.aborted, true)
    assert.equal(report.rekeyed, 0)
    assert.deepEqual([...await kidsInUse(prefix)], ['k1'])
  })

  test('progress is reported after each session, and counts only grow', async (t) => {
    const prefix = uniquePrefix()
    const app = await service(t, prefix, KEY.k1)
    for (let i = 0; i < 5; i++) await ok(app, await newSession(), 'PUT', { name: 'a', value: i, encrypt: true })
    const seen: number[] = []
    await runRekey(prefix, `${KEY.k2},${KEY.k1}`, { concurrency: 1, onProgress: (report) => seen.push(report.sessions) })
    assert.deepEqual(seen, [1, 2, 3, 4, 5])
  })
})

describe('reading values under a removed key', () => {
  test('get answers 422 E011006 + E011004 naming the item; a batch fails whole with a detail per item; decrypt=false still works', async (t) => {
    const prefix = uniquePrefix()
    const session = await newSession()
    await ok(await service(t, prefix, KEY.k1), session, 'PUT', { name: 'old', value: 'under k1', encrypt: true })
    const app = await service(t, prefix, KEY.k2)
    await ok(app, session, 'PUT', { data: [{ name: 'new', value: 'under k2', encrypt: true }, { name: 'plain', value: 'clear' }] })

    const single = await call(app, session, 'GET', { name: 'old' })
    assert.equal(single.statusCode, 422)
    assert.deepEqual(single.body.sub_status, ['E011006', 'E011004'])
    assert.match(String(single.body.message), /"k1"/)

    const batch = await call(app, session, 'GET', { data: ['plain', 'old', 'new'] })
    assert.equal(batch.statusCode, 422)
    assert.deepEqual(batch.body.sub_status, ['E011006', 'E011004'])
    assert.deepEqual((batch.body.details as Array<{ path: string }>).map((detail) => detail.path), ['/data/1'])
    assert.doesNotMatch(JSON.stringify(batch.body), /under k|clear/)

    const stored = (await ok(app, session, 'GET', { data: ['old', 'new'], decrypt: false })).result as Record<string, Body>
    assert.match(String(stored.old!.value), /^gcm1\.k1\./)
  })

  test('a value that does not authenticate is 422 E011006 alone, without E011004', async (t) => {
    const prefix = uniquePrefix()
    const session = await newSession()
    const app = await service(t, prefix, KEY.k1)
    await ok(app, session, 'PUT', { data: [{ name: 'a', value: 'x', encrypt: true }, { name: 'b', value: 'y', encrypt: true }] })
    await raw.hset(hashKey(prefix, session), 'b', String(await raw.hget(hashKey(prefix, session), 'a')))
    const reply = await call(app, session, 'GET', { name: 'b' })
    assert.equal(reply.statusCode, 422)
    assert.deepEqual(reply.body.sub_status, ['E011006'])
  })
})

describe('writes after a rotation', () => {
  test('a value write and an encrypt: true update use the active key; an expiry-only update keeps the ciphertext', async (t) => {
    const prefix = uniquePrefix()
    const session = await newSession()
    await ok(await service(t, prefix, KEY.k1), session, 'PUT', {
      encrypt: true, data: [{ name: 'valued', value: 1 }, { name: 'flagged', value: 2 }, { name: 'expiry', value: 3 }]
    })
    const app = await service(t, prefix, `${KEY.k2},${KEY.k1}`)
    await ok(app, session, 'PUT', { name: 'valued', value: 10 })
    await ok(app, session, 'PATCH', { name: 'flagged', encrypt: true, expiration: 60 })
    await ok(app, session, 'PATCH', { name: 'expiry', expiration: 60 })
    const kidOf = async (name: string) => ValueCipher.kidOf(String(await raw.hget(hashKey(prefix, session), name)).replace(/^(?:[^:]*:){5}/, ''))
    assert.equal(await kidOf('valued'), 'k2')
    assert.equal(await kidOf('flagged'), 'k2')
    assert.equal(await kidOf('expiry'), 'k1')
    const result = (await ok(app, session, 'GET', { data: ['valued', 'flagged', 'expiry'] })).result as Record<string, Body>
    assert.deepEqual([result.valued!.value, result.flagged!.value, result.expiry!.value], [10, 2, 3])
    assert.deepEqual([result.valued!.is_encrypted, result.flagged!.is_encrypted, result.expiry!.is_encrypted], [true, true, true])
  })
})

describe('sso-attrs rekey (command line)', () => {
  const ROOT = fileURLToPath(new URL('../..', import.meta.url))
  let devDir: string
  before(() => { devDir = mkdtempSync(join(tmpdir(), 'sso-attrs-rekey-')) })
  after(() => { rmSync(devDir, { recursive: true, force: true }) })

  interface Run { code: number | null, stdout: string, stderr: string }

  async function cli (args: string[], settings: Record<string, string>): Promise<Run> {
    const env: NodeJS.ProcessEnv = {}
    for (const [name, value] of Object.entries(process.env)) {
      if (/^(SSO_|REDIS_)/.test(name) || ['NODE_ENV', 'NODE_OPTIONS', 'NODE_TEST_CONTEXT'].includes(name)) continue
      env[name] = value
    }
    return await new Promise((resolve) => {
      execFile(process.execPath, [...RUN_TYPESCRIPT, 'src/cli.ts', 'rekey', ...args], { cwd: ROOT, env: { ...env, SSO_DEV_DIR: devDir, ...settings }, timeout: 30_000 }, (error, stdout, stderr) => {
        resolve({ code: error === null ? 0 : typeof error.code === 'number' ? error.code : null, stdout, stderr })
      })
    })
  }

  test('dry run, run, dry run again: counts on stdout and exit codes that say whether old keys are still used', async (t) => {
    const prefix = uniquePrefix()
    const app = await service(t, prefix, KEY.k1)
    for (let i = 0; i < 3; i++) await ok(app, await newSession(), 'PUT', { data: [{ name: 'a', value: i, encrypt: true }, { name: 'b', value: i }] })
    const settings = { SSO_STORE: 'redis', REDIS_URL: redis.url, SSO_KEY_PREFIX: prefix, SSO_ENCRYPTION_KEYS: `${KEY.k2},${KEY.k1}` }

    const dry = await cli(['--dry-run'], settings)
    assert.equal(dry.code, 1, dry.stderr)
    assert.match(dry.stdout, /^rekey \(dry run\): 3 sessions scanned, 3 encrypted values: 3 to re-encrypt, 0 already under "k2"/m)
    assert.match(dry.stdout, /values read under older keys: k1: 3/)
    assert.deepEqual([...await kidsInUse(prefix)], ['k1'])

    const run = await cli([], settings)
    assert.equal(run.code, 0, run.stderr)
    assert.match(run.stdout, /^rekey: 3 sessions scanned, 3 encrypted values: 3 re-encrypted, 0 already under "k2", 0 skipped \(changed concurrently\), 0 expired, 0 failed$/m)
    assert.equal(run.stderr, '', 'no progress line when stderr is not a terminal')
    assert.doesNotMatch(run.stdout + run.stderr, new RegExp(KEY.k1.slice(3) + '|' + KEY.k2.slice(3)))
    assert.deepEqual([...await kidsInUse(prefix)], ['k2'])

    const check = await cli(['--dry-run', '--json'], { ...settings, SSO_ENCRYPTION_KEYS: KEY.k2 })
    assert.equal(check.code, 0, check.stderr)
    const report = JSON.parse(check.stdout) as RekeyReport
    assert.deepEqual({ rekeyed: report.rekeyed, current: report.current, failed: report.failed }, { rekeyed: 0, current: 3, failed: 0 })
  })

  test('failures are listed on stderr and exit 1', async (t) => {
    const prefix = uniquePrefix()
    const session = await newSession()
    await ok(await service(t, prefix, KEY.k0), session, 'PUT', { name: 'lost', value: 1, encrypt: true })
    const run = await cli([], { SSO_STORE: 'redis', REDIS_URL: redis.url, SSO_KEY_PREFIX: prefix, SSO_ENCRYPTION_KEYS: `${KEY.k2},${KEY.k1}` })
    assert.equal(run.code, 1)
    assert.match(run.stderr, new RegExp(`session ${session.sessionId}, attribute "lost": E011004`))
    assert.match(run.stdout, /1 failed$/m)
  })

  test('the embedded store is refused (78), an unreachable Redis is 69', async () => {
    const memory = await cli([], { SSO_STORE: 'memory', SSO_ENCRYPTION_KEYS: KEY.k1 })
    assert.equal(memory.code, 78)
    assert.match(memory.stderr, /rekey works on Redis/)
    const port = await freePort()
    const down = await cli([], { SSO_STORE: 'redis', REDIS_URL: `redis://127.0.0.1:${port}`, SSO_ENCRYPTION_KEYS: KEY.k1, REDIS_CONNECT_TIMEOUT_MS: '200' })
    assert.equal(down.code, 69, down.stderr)
    assert.match(down.stderr, /Redis failed/)
  })
})
