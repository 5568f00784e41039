import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { createRequire } from 'node:module'
import { after, before, describe, test, type TestContext } from 'node:test'
import { setTimeout as sleep } from 'node:timers/promises'
import type { Redis } from 'ioredis'
import { StoreUnavailableError } from '../../src/errors.ts'
import { EVENTS_RETAINED, EVENTS_TRIM_STEP } from '../../src/events/event-log.ts'
import { RedisStore, type RedisStoreOptions } from '../../src/store/redis-store.ts'
import { PreconditionFailed, sessionOwner, userOwner, type StoreLimits } from '../../src/store/types.ts'
import { RedisServer } from '../fixtures/redis.ts'
import { LIMITS, newSessionId, storeContract } from './contract.ts'

// One redis-server for the whole file; every store gets its own key prefix, so tests never
// see each other's keys. The tests that stop or pause the server run last.

let redis: RedisServer

before(async () => {
  redis = await RedisServer.start()
})

after(async () => {
  await redis.close()
})

function uniquePrefix (): string {
  return `t-${randomBytes(6).toString('hex')}:`
}

function makeRedisStore (limits: StoreLimits, options: Partial<RedisStoreOptions> = {}): RedisStore {
  return new RedisStore({
    url: redis.url,
    keyPrefix: uniquePrefix(),
    commandTimeoutMs: 2_000,
    connectTimeoutMs: 2_000,
    ...limits,
    ...options
  })
}

async function openStore (t: TestContext, limits: Partial<StoreLimits> = {}, options: Partial<RedisStoreOptions> = {}): Promise<{ store: RedisStore, prefix: string }> {
  const prefix = options.keyPrefix ?? uniquePrefix()
  const store = makeRedisStore({ ...LIMITS, ...limits }, { ...options, keyPrefix: prefix })
  t.after(async () => { await store.close() })
  return { store, prefix }
}

function inspector (t: TestContext): Redis {
  const client = redis.client()
  t.after(() => { client.disconnect() })
  return client
}

storeContract('redis', async (limits) => {
  const store = makeRedisStore(limits)
  return { store, cleanup: async () => { await store.close() } }
})

// ioredis routes cluster commands with cluster-key-slot; load it the same way when present.
type SlotOf = (key: string) => number
function loadSlotOf (): SlotOf | undefined {
  try {
    return createRequire(import.meta.url)('cluster-key-slot') as SlotOf
  } catch {
    return undefined
  }
}

async function commandCalls (client: Redis): Promise<Map<string, number>> {
  const info = await client.info('commandstats')
  const calls = new Map<string, number>()
  for (const match of info.matchAll(/^cmdstat_([^:]+):calls=(\d+)/gm)) calls.set(match[1]!, Number(match[2]))
  return calls
}

/**
 * Records the commands clients send (MONITOR), leaving out those scripts run inside Redis:
 * INFO commandstats counts both, MONITOR tags script commands with the source "lua".
 */
async function recordClientCommands (t: TestContext, inspect: Redis): Promise<() => Promise<string[]>> {
  const monitor = await inspect.monitor()
  monitor.on('error', () => {})
  t.after(() => { monitor.disconnect() })
  const seen: string[] = []
  const marker = `end-of-recording-${randomBytes(4).toString('hex')}`
  let markerSeen: () => void = () => {}
  const done = new Promise<void>((resolve) => { markerSeen = resolve })
  monitor.on('monitor', (_time: string, args: string[], source: string) => {
    if (args[0]?.toLowerCase() === 'echo' && args[1] === marker) markerSeen()
    else if (source !== 'lua') seen.push(args[0]?.toLowerCase() ?? '')
  })
  return async () => {
    await inspect.echo(marker)
    await done
    monitor.disconnect()
    return seen
  }
}

describe('RedisStore on a real redis-server', () => {
  test('every key the store creates carries a TTL within the idle window', async (t) => {
    const idle = 5_000
    const { store, prefix } = await openStore(t, { sessionIdleTtlMs: idle, sessionMaxTtlMs: 60_000, maxAttributesPerSession: 20 })
    const client = inspector(t)
    const sid = newSessionId()
    const other = newSessionId()
    const keysHaveTtl = async (expectedCount: number): Promise<void> => {
      const keys = await client.keys(`${prefix}*`)
      assert.equal(keys.length, expectedCount, `keys: ${keys.join(', ')}`)
      for (const key of keys) {
        const ttl = await client.pttl(key)
        assert.ok(ttl > 0 && ttl <= idle, `${key} has PTTL ${ttl}`)
      }
    }
    await store.write(sessionOwner(sid), 'create', [
      { name: 'a', value: { kind: 'plain', plain: '1' }, expiry: { kind: 'set', ms: 60_000 } },
      { name: 'b', value: { kind: 'cipher', cipher: 'C' }, expiry: { kind: 'keep' } }
    ])
    await store.write(sessionOwner(other), 'set', [{ name: 'z', value: { kind: 'plain', plain: '1' }, expiry: { kind: 'keep' } }])
    // sid: hash, expiry zset, deadline; other: hash and deadline (no expiry zset yet).
    await keysHaveTtl(5)
    await store.write(sessionOwner(other), 'update', [{ name: 'z', value: { kind: 'keep' }, expiry: { kind: 'set', ms: 30_000 } }])
    await keysHaveTtl(6)
    await store.write(sessionOwner(other), 'update', [{ name: 'z', value: { kind: 'keep' }, expiry: { kind: 'clear' } }])
    await store.delete(sessionOwner(sid), ['a'])
    await store.get(sessionOwner(sid), ['b'])
    await store.names(sessionOwner(other))
    await keysHaveTtl(4)
    await store.delete(sessionOwner(sid), ['b'])
    await store.delete(sessionOwner(other), ['z'])
    // Only the deadlines remain, still expiring.
    await keysHaveTtl(2)
    await assert.rejects(store.write(sessionOwner(sid), 'update', [{ name: 'gone', value: { kind: 'plain', plain: '1' }, expiry: { kind: 'keep' } }]), PreconditionFailed)
    await keysHaveTtl(2)
  })

  test('the keys of a session disappear from Redis once the session is idle', async (t) => {
    const idle = 300
    const { store, prefix } = await openStore(t, { sessionIdleTtlMs: idle, sessionMaxTtlMs: 60_000 })
    const client = inspector(t)
    await store.write(sessionOwner(newSessionId()), 'create', [{ name: 'a', value: { kind: 'plain', plain: '1' }, expiry: { kind: 'set', ms: 60_000 } }])
    assert.equal((await client.keys(`${prefix}*`)).length, 3)
    await sleep(idle + 200)
    assert.deepEqual(await client.keys(`${prefix}*`), [])
  })

  test('an owner\'s event list exists while the owner is watched, in its slot, with its idle TTL, and is trimmed', async (t) => {
    const idle = 400
    const { store, prefix } = await openStore(t, { sessionIdleTtlMs: idle, sessionMaxTtlMs: 60_000, maxAttributesPerSession: 50 })
    const client = inspector(t)
    const watched = sessionOwner(newSessionId())
    const unwatched = sessionOwner(newSessionId())
    const feed = store.createEventFeed()
    t.after(async () => { await feed.close() })
    const subscription = await feed.subscribe(watched, { onEvent: () => {} })
    const items = Array.from({ length: 50 }, (_, index) => ({ name: `a${index}`, value: { kind: 'plain' as const, plain: '1' }, expiry: { kind: 'keep' as const } }))
    for (let round = 0; round < 3; round++) {
      await store.write(watched, 'set', items)
      await store.write(unwatched, 'set', items)
    }
    const list = store.eventChannelOf(watched)
    assert.deepEqual((await client.keys(`${prefix}*:e`)), [list], 'no list for the owner nobody watches')
    assert.equal(/\{([^}]*)\}/.exec(list)?.[1], watched.id)
    const ttl = await client.pttl(list)
    assert.ok(ttl > 0 && ttl <= idle, `PTTL ${ttl}`)
    // 150 events: trimmed to the marker and the last EVENTS_RETAINED once past EVENTS_RETAINED + EVENTS_TRIM_STEP.
    const elements = await client.lrange(list, 0, -1)
    assert.ok(elements.length <= EVENTS_RETAINED + EVENTS_TRIM_STEP && elements.length > EVENTS_RETAINED, `${elements.length} elements`)
    assert.match(elements[0]!, /^~\d+-\d+$/)
    assert.match(elements.at(-1)!, /^\d+-\d+\|c\|3\|\|p\|a49$/)
    subscription.close()
    await sleep(idle + 200)
    assert.deepEqual(await client.keys(`${prefix}*`), [], 'gone with the session')
  })

  test('a user\'s attribute keys sit in the user\'s slot beside its index and tombstone, each with the user idle TTL', async (t) => {
    const idle = 1_500
    const { store, prefix } = await openStore(t, { userIdleTtlMs: idle })
    const client = inspector(t)
    const userId = newSessionId()
    const sid = newSessionId()
    await store.indexSession(userId, sid, Date.now() - 1000, Date.now() + 60_000)
    await store.write(userOwner(userId), 'create', [{ name: 'theme', value: { kind: 'plain', plain: '"dark"' }, expiry: { kind: 'set', ms: 60_000 } }])
    await store.endUserSessions(userId, 60_000)
    const keys = (await client.keys(`${prefix}*`)).sort()
    // The session index is gone (the logout took it); the tombstone and the attributes stay.
    // Both sides sorted: a random session id may sort after `u:`.
    assert.deepEqual(keys, [`${prefix}{${sid}}:t`, `${prefix}{u:${userId}}:a`, `${prefix}{u:${userId}}:t`, `${prefix}{u:${userId}}:x`].sort())
    for (const key of keys.filter((key) => key.includes('{u:') && !key.endsWith(':t'))) {
      const ttl = await client.pttl(key)
      // Set to the idle window (not the 60 s expiry of the attribute), however slow the machine.
      assert.ok(ttl > 0 && ttl <= idle, `${key}: ${ttl}`)
    }
    const slotOf = loadSlotOf()
    if (slotOf !== undefined) {
      assert.equal(new Set(keys.filter((key) => key.includes('{u:')).map(slotOf)).size, 1)
    }
    assert.deepEqual(await store.names(userOwner(userId)), ['theme'])
    await sleep(idle + 300)
    assert.deepEqual((await client.keys(`${prefix}{u:${userId}}:[ax]`)), [], 'gone after the idle window')
  })

  test('all keys of one session share one hash tag and one cluster slot', async (t) => {
    const { store, prefix } = await openStore(t, { maxAttributesPerSession: 20 })
    const client = inspector(t)
    const sessions = [newSessionId(), newSessionId(), newSessionId()]
    for (const sid of sessions) {
      await store.write(sessionOwner(sid), 'create', [{ name: `{${sid}}:x`, value: { kind: 'plain', plain: '1' }, expiry: { kind: 'set', ms: 60_000 } }])
    }
    const keys = await client.keys(`${prefix}*`)
    assert.equal(keys.length, 3 * sessions.length)
    const slotOf = loadSlotOf()
    if (slotOf === undefined) t.diagnostic('cluster-key-slot not importable: checking hash tags only')
    for (const sid of sessions) {
      const own = keys.filter((key) => key.startsWith(`${prefix}{${sid}}:`))
      assert.equal(own.length, 3, `keys of ${sid}: ${own.join(', ')}`)
      // The fourth key, the tombstone, exists only once the session has ended.
      assert.deepEqual(own.sort(), store.keysOf(sessionOwner(sid)).slice(0, 3).sort())
      for (const key of [...own, store.keysOf(sessionOwner(sid))[3]]) {
        // The first {...} of the key is the hash tag Redis Cluster hashes.
        assert.equal(/\{([^}]*)\}/.exec(key)?.[1], sid)
      }
      if (slotOf !== undefined) {
        const slots = new Set(own.map(slotOf))
        assert.equal(slots.size, 1, `${own.join(', ')} span slots ${[...slots].join(', ')}`)
        assert.equal([...slots][0], slotOf(sid))
      }
    }
  })

  test('each store call is exactly one Redis command, and never SCAN or KEYS', async (t) => {
    const { store } = await openStore(t, { maxAttributesPerSession: 20 })
    const client = inspector(t)
    const sid = newSessionId()
    const item = (name: string, plain: string) => ({ name, value: { kind: 'plain' as const, plain }, expiry: { kind: 'set' as const, ms: 60_000 } })
    // Warm-up: connect and send each script once (ioredis sends EVAL the first time on a
    // connection, EVALSHA after).
    await store.write(sessionOwner(sid), 'set', [item('warm', '1')])
    await store.get(sessionOwner(sid), ['warm'])
    await store.delete(sessionOwner(sid), ['warm'])
    const calls: Array<() => Promise<unknown>> = [
      async () => await store.write(sessionOwner(sid), 'create', [item('a', '1')]),
      async () => await store.write(sessionOwner(sid), 'set', [item('b', '2'), item('c', '3'), item('d', '4')]),
      async () => await store.write(sessionOwner(sid), 'set', Array.from({ length: 100 }, (_, index) => item(`n${index}`, String(index)))).catch(() => undefined),
      async () => await store.write(sessionOwner(sid), 'update', [item('a', '5')]),
      async () => await store.write(sessionOwner(sid), 'create', [item('a', '6')]).catch(() => undefined),
      async () => await store.get(sessionOwner(sid), ['a', 'b', 'missing']),
      async () => await store.exists(sessionOwner(sid), ['a', 'c']),
      async () => await store.names(sessionOwner(sid)),
      async () => await store.delete(sessionOwner(sid), ['b', 'missing']),
      async () => await store.delete(sessionOwner(sid), ['a'], 99).catch(() => undefined),
      async () => await store.get(sessionOwner(newSessionId()), ['nothing'])
    ]
    const statsBefore = await commandCalls(client)
    const stop = await recordClientCommands(t, client)
    for (const call of calls) await call()
    const sent = await stop()
    assert.deepEqual(sent, calls.map(() => 'evalsha'))
    // commandstats also counts what scripts run, so this covers SCAN/KEYS inside them too.
    const statsAfter = await commandCalls(client)
    for (const command of ['scan', 'keys', 'hscan', 'zscan', 'hgetall']) {
      assert.equal((statsAfter.get(command) ?? 0) - (statsBefore.get(command) ?? 0), 0, `${command} was used`)
    }
  })

  test('a read of a live session runs TIME, GET of its state and HMGET: no tombstone probe, no renewal within a tenth of the idle window, no zset before its earliest expiry', async (t) => {
    const idle = 60_000
    const { store, prefix } = await openStore(t, { sessionIdleTtlMs: idle, sessionMaxTtlMs: 120_000 })
    const client = inspector(t)
    const sid = newSessionId()
    const owner = sessionOwner(sid)
    await store.write(owner, 'set', [{ name: 'a', value: { kind: 'plain', plain: '1' }, expiry: { kind: 'set', ms: 30_000 } }])
    await store.get(owner, ['a'])
    const ran = async (call: () => Promise<unknown>): Promise<Record<string, number>> => {
      const before = await commandCalls(client)
      await call()
      const after = await commandCalls(client)
      return Object.fromEntries([...after].map(([name, calls]) => [name, calls - (before.get(name) ?? 0)]).filter(([name, calls]) => name !== 'info' && calls as number > 0))
    }
    assert.deepEqual(await ran(async () => await store.get(owner, ['a'])), { evalsha: 1, time: 1, get: 1, hmget: 1 })
    const state = await client.get(`${prefix}{${sid}}:m`)
    const [deadline, keysExpireAt, earliest] = state!.split(':').map(Number)
    assert.ok(keysExpireAt! <= deadline! && keysExpireAt! - Date.now() <= idle + 1_000, `state ${state}`)
    assert.ok(earliest! > Date.now() + 20_000 && earliest! <= Date.now() + 30_000, `earliest expiry in ${state}`)
    // Every key still expires when the state says.
    for (const key of [`${prefix}{${sid}}:a`, `${prefix}{${sid}}:x`, `${prefix}{${sid}}:m`]) {
      assert.ok(Math.abs(await client.pexpiretime(key) - keysExpireAt!) <= 5, key)
    }
    // A write that creates the zset (an expiry on a session that had none) gives it the same expiry.
    const other = sessionOwner(newSessionId())
    await store.write(other, 'set', [{ name: 'p', value: { kind: 'plain', plain: '1' }, expiry: { kind: 'keep' } }])
    await store.write(other, 'set', [{ name: 'q', value: { kind: 'plain', plain: '2' }, expiry: { kind: 'set', ms: 30_000 } }])
    const otherState = (await client.get(`${prefix}{${other.id}}:m`))!.split(':').map(Number)
    assert.ok(Math.abs(await client.pexpiretime(`${prefix}{${other.id}}:x`) - otherState[1]!) <= 5)
  })

  test('the earliest expiry kept in the state follows rewrites: never later than the real one, so an expired attribute is gone at once', async (t) => {
    const { store, prefix } = await openStore(t, { sessionIdleTtlMs: 60_000, sessionMaxTtlMs: 120_000 })
    const client = inspector(t)
    const owner = sessionOwner(newSessionId())
    const earliest = async (): Promise<string> => (await client.get(`${prefix}{${owner.id}}:m`))!.split(':')[2]!
    const set = async (name: string, ms: number | null) => await store.write(owner, 'set', [{ name, value: { kind: 'plain', plain: '1' }, expiry: ms === null ? { kind: 'clear' } : { kind: 'set', ms } }])
    const [long] = await set('a', 60_000)
    assert.equal(await earliest(), String(long!.expiresAt))
    // Shortened: the state follows at once.
    const [short] = await set('a', 300)
    assert.equal(await earliest(), String(short!.expiresAt))
    // Lengthened again: the state keeps the earlier time (a lower bound) until it has passed.
    const [again] = await set('a', 60_000)
    assert.equal(await earliest(), String(short!.expiresAt))
    const [soon] = await set('b', 400)
    await sleep(500)
    assert.deepEqual(await store.get(owner, ['a', 'b']).then((found) => found.map((attribute) => attribute?.name ?? null)), ['a', null])
    assert.equal(await earliest(), String(again!.expiresAt), `after the purge of b (expired at ${soon!.expiresAt}) the state holds a's expiry`)
    await set('a', null)
    await sleep(10)
    await store.get(owner, ['a'])
    assert.equal(await earliest(), String(again!.expiresAt), 'a cleared expiry leaves the lower bound until it has passed')
  })

  test('a session whose state is a bare deadline (written before the state held more) is read, renewed and rewritten in the new form', async (t) => {
    const idle = 60_000
    const { store, prefix } = await openStore(t, { sessionIdleTtlMs: idle, sessionMaxTtlMs: 120_000 })
    const client = inspector(t)
    const sid = newSessionId()
    const owner = sessionOwner(sid)
    const now = Date.now()
    const deadline = now + 100_000
    const record = (expires: number | '') => `1:${now}:${now}:${expires}:p:"v"`
    await client.hset(`${prefix}{${sid}}:a`, 'live', record(''), 'gone', record(now - 1))
    await client.zadd(`${prefix}{${sid}}:x`, now - 1, 'gone')
    await client.set(`${prefix}{${sid}}:m`, String(deadline))
    for (const key of ['a', 'x', 'm']) await client.pexpire(`${prefix}{${sid}}:${key}`, 5_000)
    assert.deepEqual(await store.names(owner), ['live'])
    const [storedDeadline, keysExpireAt, earliest] = (await client.get(`${prefix}{${sid}}:m`))!.split(':')
    assert.equal(Number(storedDeadline), deadline)
    assert.ok(Number(keysExpireAt) > Date.now() + idle - 5_000, 'renewed to the idle window')
    assert.equal(earliest, '', 'nothing left to expire')
    assert.ok(await client.pttl(`${prefix}{${sid}}:a`) > 5_000)
  })

  test('on a new connection a call is still one command (EVAL of the script)', async (t) => {
    const { store } = await openStore(t)
    const client = inspector(t)
    await store.ping()
    const stop = await recordClientCommands(t, client)
    const sid = newSessionId()
    await store.write(sessionOwner(sid), 'set', [{ name: 'a', value: { kind: 'plain', plain: '1' }, expiry: { kind: 'keep' } }])
    await store.get(sessionOwner(sid), ['a'])
    await store.get(sessionOwner(sid), ['a'])
    assert.deepEqual(await stop(), ['eval', 'eval', 'evalsha'])
  })
})

describe('RedisStore when Redis goes away', () => {
  const commandTimeout = 300
  const options = { commandTimeoutMs: commandTimeout, connectTimeoutMs: commandTimeout }

  async function timed (promise: Promise<unknown>): Promise<{ error: unknown, ms: number }> {
    const start = performance.now()
    try {
      await promise
      return { error: undefined, ms: performance.now() - start }
    } catch (error) {
      return { error, ms: performance.now() - start }
    }
  }

  async function recovered (call: () => Promise<unknown>, withinMs: number): Promise<void> {
    const deadline = Date.now() + withinMs
    for (;;) {
      try {
        await call()
        return
      } catch (error) {
        if (Date.now() > deadline) throw error
        await sleep(100)
      }
    }
  }

  function assertUnavailable (t: TestContext, result: { error: unknown, ms: number }, label: string): void {
    t.diagnostic(`${label}: failed after ${Math.round(result.ms)} ms`)
    assert.ok(result.error instanceof StoreUnavailableError, `${label}: expected StoreUnavailableError, got ${String(result.error)}`)
    assert.equal(result.error.code, 'E011003')
    assert.equal(result.error.statusCode, 503)
    // Twice the timeout would mean a call waited for another one's timeout before its own.
    assert.ok(result.ms < commandTimeout + 250, `${label}: took ${Math.round(result.ms)} ms`)
  }

  test('a hung Redis fails calls within the command timeout; they work again when it resumes', async (t) => {
    const { store } = await openStore(t, {}, options)
    const sid = newSessionId()
    await store.write(sessionOwner(sid), 'set', [{ name: 'a', value: { kind: 'plain', plain: '1' }, expiry: { kind: 'keep' } }])
    redis.pause()
    try {
      assertUnavailable(t, await timed(store.get(sessionOwner(sid), ['a'])), 'get')
      assertUnavailable(t, await timed(store.write(sessionOwner(sid), 'set', [{ name: 'b', value: { kind: 'plain', plain: '2' }, expiry: { kind: 'keep' } }])), 'write')
      assertUnavailable(t, await timed(store.ping()), 'ping')
      const burst = await Promise.all(Array.from({ length: 10 }, async (_, index) => await timed(index % 2 === 0 ? store.get(sessionOwner(sid), ['a']) : store.names(sessionOwner(sid)))))
      burst.forEach((result, index) => { assertUnavailable(t, result, `parallel call ${index}`) })
    } finally {
      redis.resume()
    }
    await recovered(async () => await store.ping(), 5_000)
    assert.equal((await store.get(sessionOwner(sid), ['a']))[0]?.payload, '1')
  })

  test('a stopped Redis fails calls with E011003 quickly; the store recovers after a restart', async (t) => {
    const { store } = await openStore(t, {}, options)
    const sid = newSessionId()
    await store.write(sessionOwner(sid), 'set', [{ name: 'a', value: { kind: 'plain', plain: '1' }, expiry: { kind: 'keep' } }])
    await redis.stop()
    try {
      assertUnavailable(t, await timed(store.get(sessionOwner(sid), ['a'])), 'get')
      assertUnavailable(t, await timed(store.write(sessionOwner(sid), 'set', [{ name: 'b', value: { kind: 'plain', plain: '2' }, expiry: { kind: 'keep' } }])), 'write')
      assertUnavailable(t, await timed(store.delete(sessionOwner(sid), ['a'])), 'delete')
      assertUnavailable(t, await timed(store.names(sessionOwner(sid))), 'names')
      // Still failing fast after a while, not queueing behind reconnection attempts.
      await sleep(1_000)
      assertUnavailable(t, await timed(store.exists(sessionOwner(sid), ['a'])), 'exists after 1 s')
    } finally {
      await redis.restart()
    }
    // The restarted server is empty and has no scripts cached: the store must load them again.
    await recovered(async () => await store.names(sessionOwner(sid)), 5_000)
    assert.deepEqual(await store.get(sessionOwner(sid), ['a']), [null])
    await store.write(sessionOwner(sid), 'create', [{ name: 'a', value: { kind: 'plain', plain: '"back"' }, expiry: { kind: 'keep' } }])
    assert.equal((await store.get(sessionOwner(sid), ['a']))[0]?.payload, '"back"')
  })
})
