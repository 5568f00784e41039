import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { performance } from 'node:perf_hooks'
import { describe, test, type TestContext } from 'node:test'
import { setImmediate as yieldToIo, setTimeout as sleep } from 'node:timers/promises'
import type { Redis } from 'ioredis'
import { NEAR_CACHE_CONNECTION, NearCacheStore, type NearCacheOptions } from '../../src/store/near-cache.ts'
import { RedisStore, type RedisStoreOptions } from '../../src/store/redis-store.ts'
import { SessionEndedError, sessionOwner, type Owner, type StoreLimits, type WriteItem } from '../../src/store/types.ts'
import { LIMITS, newSessionId } from './contract.ts'

// The near cache's consistency scenarios (issue 15), the same on one Redis and on a Cluster:
// two instances (A writes, B reads, each a NearCacheStore of its own over the same keys).

export interface NearCacheRig {
  /** Where the store connects. */
  connection: Pick<RedisStoreOptions, 'url' | 'topology'>
  /** A plain client on the server (the master) that holds `key`. */
  nodeOf: (key: string) => Promise<Redis>
  /** Something that drops every connection of the server that holds `key`, as a restart or failover does, and waits until it serves again. */
  disrupt?: (key: string) => Promise<void>
}

export const NEAR_OPTIONS: NearCacheOptions = { maxOwners: 1000, maxBytes: 1 << 24, renewIntervalMs: 10_000, maxStalenessMs: 1000 }

export function nearStore (rig: NearCacheRig, limits: StoreLimits, prefix: string, options: Partial<NearCacheOptions> = {}, redisOptions: Partial<RedisStoreOptions> = {}): NearCacheStore {
  const redis = new RedisStore({ ...rig.connection, keyPrefix: prefix, commandTimeoutMs: 2_000, connectTimeoutMs: 2_000, ...limits, ...redisOptions })
  return new NearCacheStore(redis, { ...NEAR_OPTIONS, ...options }, limits)
}

const plain = (name: string, value: unknown, expiry: WriteItem['expiry'] = { kind: 'keep' }): WriteItem =>
  ({ name, value: { kind: 'plain', plain: JSON.stringify(value) }, expiry })

async function redisTimeMs (client: Redis): Promise<number> {
  const [seconds, micros] = await client.time()
  return Number(seconds) * 1000 + Math.floor(Number(micros) / 1000)
}

async function until (what: string, check: () => boolean, timeoutMs = 3000): Promise<void> {
  const deadline = performance.now() + timeoutMs
  while (!check()) {
    if (performance.now() > deadline) throw new Error(`${what}: not within ${timeoutMs} ms`)
    await sleep(5)
  }
}

/** A call retried for a few seconds while the store answers 503 (a failover in progress). */
async function retrying<T> (call: () => Promise<T>): Promise<T> {
  for (let attempt = 0; ; attempt++) {
    try {
      return await call()
    } catch (error) {
      if (attempt >= 50) throw error
      await sleep(100)
    }
  }
}

/** CLIENT KILL of the near cache's connections of one role on a server; returns how many. */
async function killTracking (node: Redis, role: 'reader' | 'invalidations'): Promise<number> {
  const list = await node.client('LIST') as string
  const ids = list.split('\n').filter((line) => line.includes(` name=${NEAR_CACHE_CONNECTION}-${role} `)).map((line) => /\bid=(\d+)/.exec(line)![1]!)
  for (const id of ids) await node.client('KILL', 'ID', id)
  return ids.length
}

export function nearCacheScenarios (name: string, rig: () => NearCacheRig): void {
  /** Instances A and B over the same keys, and a session B is tracking. */
  async function pair (t: TestContext, limits: Partial<StoreLimits> = {}, options: Partial<NearCacheOptions> = {}): Promise<{ a: NearCacheStore, b: NearCacheStore, owner: Owner, attrs: string }> {
    const prefix = `nc-${randomBytes(6).toString('hex')}:`
    const a = nearStore(rig(), { ...LIMITS, ...limits }, prefix, options)
    const b = nearStore(rig(), { ...LIMITS, ...limits }, prefix, options)
    t.after(async () => { await Promise.all([a.close(), b.close()]) })
    const owner = sessionOwner(newSessionId())
    const attrs = b.inner.keysOf(owner)[0]!
    await Promise.all([a.tracking.whenReady(attrs), b.tracking.whenReady(attrs)])
    return { a, b, owner, attrs }
  }

  async function payloadOn (store: NearCacheStore, owner: Owner, attribute = 'x'): Promise<string | undefined> {
    return (await store.get(owner, [attribute]))[0]?.payload
  }

  describe(`near cache on ${name}`, () => {
    test('writes on A, reads on B in a tight loop: no stale read once the invalidation is in', async (t) => {
      const { a, b, owner } = await pair(t)
      await a.write(owner, 'set', [plain('x', 0)])
      // B reads first, so that its connection tracks the keys and A's first write invalidates them.
      assert.equal(await payloadOn(b, owner), '0')
      const rounds = 200
      let staleBeforeInvalidation = 0
      let staleAfter = 0
      const windowsMs: number[] = []
      for (let round = 1; round <= rounds; round++) {
        const invalidationsBefore = b.stats.invalidations
        // A read on B races the write (a fill in flight while the invalidation comes, half the time).
        const racing = round % 2 === 0 ? b.get(owner, ['x']) : Promise.resolve([])
        await a.write(owner, 'set', [plain('x', round)])
        const answeredAt = performance.now()
        await racing
        // Reads on B between A's answer and the arrival of B's invalidation may be stale.
        while (b.stats.invalidations === invalidationsBefore && performance.now() - answeredAt < 1000) {
          if (await payloadOn(b, owner) !== String(round)) staleBeforeInvalidation++
          await yieldToIo()
        }
        windowsMs.push(performance.now() - answeredAt)
        // Every invalidation sent before this point has arrived: from here on, no stale read.
        await b.tracking.sync()
        for (let read = 0; read < 3; read++) if (await payloadOn(b, owner) !== String(round)) staleAfter++
      }
      windowsMs.sort((x, y) => x - y)
      const rtt = await (async () => { const node = await rig().nodeOf(b.inner.keysOf(owner)[0]!); const start = performance.now(); await node.ping(); return performance.now() - start })()
      t.diagnostic(`${rounds} writes on A: stale reads on B after A's answer and before B's invalidation arrived: ${staleBeforeInvalidation}; after it: ${staleAfter}; ` +
        `invalidation arrived after A's answer within p50 ${windowsMs[rounds >> 1]!.toFixed(2)} ms, max ${windowsMs[rounds - 1]!.toFixed(2)} ms (a PING round trip: ${rtt.toFixed(2)} ms); ` +
        `B: ${JSON.stringify(b.stats)}`)
      assert.equal(staleAfter, 0)
      assert.ok(windowsMs[rounds - 1]! < 1000, 'every invalidation arrived')
      assert.ok(b.stats.hits > rounds, `B answered from memory (${b.stats.hits} hits)`)
      assert.equal(b.stats.flushes, 0)
    })

    test('A reads its own writes at once (invalidated locally, not only by Redis)', async (t) => {
      const { a, owner } = await pair(t)
      for (let round = 0; round < 100; round++) {
        await a.write(owner, 'set', [plain('x', round)])
        assert.equal(await payloadOn(a, owner), String(round))
        assert.equal(await payloadOn(a, owner), String(round))
      }
      await a.delete(owner, ['x'])
      assert.deepEqual(await a.get(owner, ['x']), [null])
      t.diagnostic(`A: ${JSON.stringify(a.stats)}`)
    })

    test('concurrent misses of one attribute send one fill; a write answered meanwhile is not hidden by it', async (t) => {
      const { a, b, owner } = await pair(t)
      await a.write(owner, 'set', [plain('x', 1)])
      const fills = b.stats.fills
      const reads = await Promise.all(Array.from({ length: 50 }, async () => await payloadOn(b, owner)))
      assert.deepEqual(new Set(reads), new Set(['1']))
      assert.equal(b.stats.fills - fills, 1)
      // A read that starts after B's own write was answered never joins a fill sent before it.
      for (let round = 2; round < 50; round++) {
        const before = b.get(owner, ['x'])
        await b.write(owner, 'set', [plain('x', round)])
        assert.equal(await payloadOn(b, owner), String(round))
        await before
      }
    })

    for (const role of ['invalidations', 'reader'] as const) {
      test(`a killed tracking connection (${role}) flushes the cache; changes meanwhile are seen; tracking resumes`, async (t) => {
        const { a, b, owner, attrs } = await pair(t)
        await a.write(owner, 'set', [plain('x', 'before')])
        assert.equal(await payloadOn(b, owner), '"before"')
        assert.equal(await payloadOn(b, owner), '"before"')
        const hits = b.stats.hits
        assert.ok(hits > 0)
        const flushes = b.stats.flushes
        const node = await rig().nodeOf(attrs)
        assert.ok(await killTracking(node, role) >= 2, 'A\'s and B\'s connections were there')
        await until('B flushed', () => b.stats.flushes > flushes)
        // The invalidation of this write has nowhere to go on B: B must not answer from memory.
        await a.write(owner, 'set', [plain('x', 'while-down')])
        assert.equal(await payloadOn(b, owner), '"while-down"')
        await b.tracking.whenReady(attrs)
        assert.equal(await payloadOn(b, owner), '"while-down"')
        assert.equal(await payloadOn(b, owner), '"while-down"')
        assert.ok(b.stats.hits > hits, 'B answers from memory again')
        await a.write(owner, 'set', [plain('x', 'after')])
        await b.tracking.sync()
        assert.equal(await payloadOn(b, owner), '"after"')
      })
    }

    test('FLUSHALL (an invalidation of everything) and a disrupted server flush the cache', async (t) => {
      const { a, b, owner, attrs } = await pair(t)
      await a.write(owner, 'set', [plain('x', 1)])
      assert.equal(await payloadOn(b, owner), '1')
      assert.equal(await payloadOn(b, owner), '1')
      let flushes = b.stats.flushes
      await (await rig().nodeOf(attrs)).flushall()
      await b.tracking.sync()
      assert.ok(b.stats.flushes > flushes)
      assert.deepEqual(await b.get(owner, ['x']), [null])
      await a.write(owner, 'set', [plain('x', 1)])
      await b.tracking.sync()
      assert.equal(await payloadOn(b, owner), '1')
      assert.equal(await payloadOn(b, owner), '1')
      flushes = b.stats.flushes
      const disrupt = rig().disrupt
      if (disrupt === undefined) return
      await disrupt(attrs)
      await until('B flushed', () => b.stats.flushes > flushes, 10_000)
      // Whatever Redis holds now (nothing after a restart, the replica's copy after a failover), B says the same.
      const node = await rig().nodeOf(attrs)
      const stored = await node.hget(attrs, 'x')
      const read = await retrying(async () => await b.get(owner, ['x']))
      assert.equal(read[0]?.payload ?? null, stored === null ? null : stored.slice(stored.lastIndexOf(':') + 1))
      await b.tracking.whenReady(attrs, 10_000)
      await a.tracking.whenReady(attrs, 10_000)
      await retrying(async () => await a.write(owner, 'set', [plain('x', 2)]))
      await b.tracking.sync()
      assert.equal(await payloadOn(b, owner), '2')
      assert.equal(await payloadOn(b, owner), '2')
    })

    test('an attribute read from memory expires at the exact millisecond, on Redis\' clock', async (t) => {
      const { a, b, owner, attrs } = await pair(t)
      const [written] = await a.write(owner, 'set', [plain('x', 'soon', { kind: 'set', ms: 400 }), plain('y', 'stays')])
      const expiresAt = written!.expiresAt!
      const node = await rig().nodeOf(attrs)
      let servedBefore = 0
      let after = 0
      const hitsBefore = b.stats.hits
      for (;;) {
        const now = await redisTimeMs(node)
        const [x, y] = await b.get(owner, ['x', 'y'])
        assert.equal(y?.payload, '"stays"')
        if (now >= expiresAt) {
          assert.equal(x, null, `read ${now - expiresAt} ms after the expiry (Redis time) still returned the attribute`)
          if (++after >= 20) break
        } else if (x !== null) {
          servedBefore++
        }
      }
      t.diagnostic(`reads that returned the attribute before its expiry: ${servedBefore}, from memory: ${b.stats.hits - hitsBefore} reads in all`)
      assert.ok(b.stats.hits - hitsBefore > 10, 'B answered from memory until close to the expiry')
    })

    test('logout: a session ended on A is refused on B and on A', async (t) => {
      const { a, b, owner } = await pair(t)
      await a.write(owner, 'set', [plain('x', 1)])
      assert.equal(await payloadOn(a, owner), '1')
      assert.equal(await payloadOn(b, owner), '1')
      assert.equal(await payloadOn(b, owner), '1')
      await a.endSession(owner.id, 60_000)
      await assert.rejects(a.get(owner, ['x']), SessionEndedError)
      await b.tracking.sync()
      await assert.rejects(b.get(owner, ['x']), SessionEndedError)
    })

    test('logout by sub on A: every session of the user is refused on A as soon as it answers', async (t) => {
      const { a, b, owner } = await pair(t)
      const userId = newSessionId()
      await a.write(owner, 'set', [plain('x', 1)])
      await a.indexSession(userId, owner.id, Date.now() - 1000, Date.now() + 60_000)
      assert.equal(await payloadOn(a, owner), '1')
      assert.equal(await payloadOn(a, owner), '1')
      assert.equal(await payloadOn(b, owner), '1')
      assert.equal(await a.endUserSessions(userId, 60_000), 1)
      await assert.rejects(a.get(owner, ['x']), SessionEndedError)
      await b.tracking.sync()
      await assert.rejects(b.get(owner, ['x']), SessionEndedError)
    })

    test('reads from memory renew the idle window, coalesced', async (t) => {
      const idle = 1200
      const { a, b, owner, attrs } = await pair(t, { sessionIdleTtlMs: idle }, { renewIntervalMs: 200 })
      await a.write(owner, 'set', [plain('x', 1)])
      const node = await rig().nodeOf(attrs)
      const scripts = async () => Number(/cmdstat_evalsha:calls=(\d+)/.exec(await node.info('commandstats'))?.[1] ?? 0)
      const before = await scripts()
      const started = performance.now()
      let reads = 0
      while (performance.now() - started < 1800) {
        assert.equal(await payloadOn(b, owner), '1')
        reads++
        await sleep(2)
      }
      // Heartbeats were answered all along (1.8 s > SSO_NEAR_CACHE_MAX_STALENESS_MS): every read was B's to answer.
      assert.equal(b.stats.bypassed, 0)
      // Past the first idle window: only B's renewals kept the session.
      assert.ok(await node.pttl(attrs) > idle - 500, 'the idle window was renewed')
      const renewals = await scripts() - before
      t.diagnostic(`${reads} reads on B in 1.8 s: ${renewals} scripts run on the server (renewals, at most one per 200 ms)`)
      assert.ok(renewals <= 1800 / 200 + 3, `${renewals} scripts`)
      assert.ok(renewals >= 3, `${renewals} scripts`)
    })
  })
}
