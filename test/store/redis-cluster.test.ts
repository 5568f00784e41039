import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { after, before, describe, test, type TestContext } from 'node:test'
import { StoreUnavailableError } from '../../src/errors.ts'
import { RedisStore, type RedisStoreOptions } from '../../src/store/redis-store.ts'
import { mastersOf } from '../../src/store/redis-topology.ts'
import { PreconditionFailed, sessionOwner, type StoreLimits } from '../../src/store/types.ts'
import { RedisCluster } from '../fixtures/cluster.ts'
import { LIMITS, newSessionId, storeContract } from './contract.ts'

// The store on a real 3-master, 3-replica Redis Cluster: the whole contract, scripts on every
// master, and the durability option. One cluster for the file; every store its own prefix.

let cluster: RedisCluster
before(async () => { cluster = await RedisCluster.start() })
after(async () => { await cluster.close() })

function clusterStore (limits: StoreLimits, options: Partial<RedisStoreOptions> = {}): RedisStore {
  return new RedisStore({
    topology: { kind: 'cluster', nodes: cluster.startupNodes },
    keyPrefix: `c-${randomBytes(6).toString('hex')}:`,
    commandTimeoutMs: 2_000,
    connectTimeoutMs: 2_000,
    ...limits,
    ...options
  })
}

function open (t: TestContext, options: Partial<RedisStoreOptions> = {}): RedisStore {
  const store = clusterStore(LIMITS, options)
  t.after(async () => { await store.close() })
  return store
}

storeContract('redis cluster', async (limits) => {
  const store = clusterStore(limits)
  return { store, cleanup: async () => { await store.close() } }
})

const plain = (name: string, value: unknown) => ({ name, value: { kind: 'plain' as const, plain: JSON.stringify(value) }, expiry: { kind: 'keep' as const } })

describe('RedisStore on a Redis Cluster', () => {
  test('sessions spread over all 3 masters, each session\'s keys on one node, every key with a TTL', async (t) => {
    const prefix = `c-${randomBytes(6).toString('hex')}:`
    const store = open(t, { keyPrefix: prefix })
    const sessions = Array.from({ length: 60 }, () => newSessionId())
    for (const sid of sessions) await store.write(sessionOwner(sid), 'set', [plain('a', 1), { ...plain('b', 2), expiry: { kind: 'set', ms: 60_000 } }])
    await store.ping()
    const masters = mastersOf(store.redis)
    assert.equal(masters.length, 3)
    const perMaster: number[] = []
    for (const master of masters) {
      const keys = await master.keys(`${prefix}*`)
      perMaster.push(keys.length)
      for (const key of keys) assert.ok(await master.pttl(key) > 0, `${key} has no TTL`)
      // A session's three keys are all here or all elsewhere.
      const bySession = new Map<string, number>()
      for (const key of keys) {
        const sid = /\{([^}]+)\}/.exec(key)![1]!
        bySession.set(sid, (bySession.get(sid) ?? 0) + 1)
      }
      for (const [sid, count] of bySession) assert.equal(count, 3, `session ${sid} has ${count} keys on ${master.options.port}`)
    }
    t.diagnostic(`keys per master: ${perMaster.join(', ')}`)
    assert.ok(perMaster.every((count) => count > 0), `every master holds sessions: ${perMaster.join(', ')}`)
    assert.equal(perMaster.reduce((sum, count) => sum + count, 0), sessions.length * 3)
    for (const sid of sessions.slice(0, 10)) assert.deepEqual(await store.names(sessionOwner(sid)), ['a', 'b'])
  })

  test('readiness pings the cluster state', async (t) => {
    const store = open(t)
    await store.ping()
  })

  test('SSO_REDIS_MIN_REPLICAS_ACK=1: writes and deletes wait for the replica and succeed', async (t) => {
    const store = open(t, { minReplicasAck: 1 })
    const sids = Array.from({ length: 20 }, () => newSessionId())
    for (const sid of sids) {
      assert.deepEqual(await store.write(sessionOwner(sid), 'create', [plain('a', sid)]), [{ name: 'a', version: 1, expiresAt: null }])
    }
    // A refused write needs no acknowledgement and keeps its own error.
    await assert.rejects(store.write(sessionOwner(sids[0]!), 'create', [plain('a', 1)]), (error: Error & { code?: string }) => error.code === 'E009001')
    assert.deepEqual(await store.delete(sessionOwner(sids[1]!), ['a']), [true])
    assert.deepEqual(await store.get(sessionOwner(sids[1]!), ['a']), [null])
    assert.equal((await store.get(sessionOwner(sids[2]!), ['a']))[0]?.payload, JSON.stringify(sids[2]))
  })

  test('SSO_REDIS_MIN_REPLICAS_ACK above the replicas there are: 503 E011003 within the command timeout', async (t) => {
    const commandTimeoutMs = 600
    const store = open(t, { minReplicasAck: 2, commandTimeoutMs })
    const sid = newSessionId()
    // The writer connection up first (an update of nothing is refused before any WAIT): what is
    // timed is the WAIT, not the connection's set-up on a loaded machine.
    // On a loaded machine the set-up alone can outlast the short command timeout, so the warm-up
    // is retried until the refusal comes back (a store that never connects still fails here).
    const warmUpUntil = performance.now() + 10_000
    for (;;) {
      const outcome = await store.write(sessionOwner(newSessionId()), 'update', [plain('warm-up', 1)]).then(() => 'stored', (error: unknown) => error)
      if (outcome instanceof PreconditionFailed) break
      if (!(outcome instanceof StoreUnavailableError) || performance.now() > warmUpUntil) assert.fail(`warm-up: ${String(outcome)}`)
    }
    const started = performance.now()
    await assert.rejects(store.write(sessionOwner(sid), 'set', [plain('a', 1)]), (error: unknown) => {
      assert.ok(error instanceof StoreUnavailableError, String(error))
      assert.match(String((error.cause as Error).message), /1 of 2 replicas acknowledged/)
      return true
    })
    const ms = performance.now() - started
    t.diagnostic(`refused after ${ms.toFixed(0)} ms (WAIT timeout ${commandTimeoutMs / 2} ms)`)
    assert.ok(ms < commandTimeoutMs + 300, `took ${ms.toFixed(0)} ms`)
    // Reads do not queue behind the writer connection's WAIT: a read sent after a write that
    // waits for replicas answers first.
    const pending = store.write(sessionOwner(newSessionId()), 'set', [plain('b', 1)]).then(() => 'write', () => 'write')
    const first = await Promise.race([pending, store.get(sessionOwner(sid), ['a']).then(() => 'read')])
    assert.equal(first, 'read')
    await pending
  })
})
