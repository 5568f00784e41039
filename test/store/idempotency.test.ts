import assert from 'node:assert/strict'
import { randomBytes, randomUUID } from 'node:crypto'
import { after, before, describe, test } from 'node:test'
import { setTimeout as sleep } from 'node:timers/promises'
import { MemoryStore } from '../../src/store/memory-store.ts'
import { RedisStore } from '../../src/store/redis-store.ts'
import type { Idempotency, Owner, Store, WriteItem } from '../../src/store/types.ts'
import { RedisServer } from '../fixtures/redis.ts'

// The Idempotency-Key contract of both stores (D48), on session and user owners: a repeat gets
// the first final outcome again without writing again, another request under the key E011008,
// concurrent repeats run once, and the record lives for its TTL only.

const LIMITS = { sessionIdleTtlMs: 3_600_000, sessionMaxTtlMs: 86_400_000, maxAttributesPerSession: 100 }

let redis: RedisServer
before(async () => { redis = await RedisServer.start() })
after(async () => { await redis.close() })

const plain = (name: string, value: unknown, ifVersion?: number): WriteItem =>
  ({ name, value: { kind: 'plain', plain: JSON.stringify(value) }, expiry: { kind: 'keep' }, ifVersion })
const key = (fingerprint = 'f1', ttlMs = 60_000): Idempotency => ({ key: randomUUID(), fingerprint, ttlMs })

async function refusal (promise: Promise<unknown>): Promise<string> {
  try {
    await promise
  } catch (error) {
    return (error as { code?: string }).code ?? String(error)
  }
  assert.fail('expected a refusal')
}

const stores: Array<[string, () => Store]> = [
  ['memory store', () => new MemoryStore(LIMITS)],
  ['redis store', () => new RedisStore({ ...LIMITS, url: redis.url, keyPrefix: `idem-${randomBytes(4).toString('hex')}:`, commandTimeoutMs: 2000, connectTimeoutMs: 2000 })]
]

for (const [label, makeStore] of stores) {
  for (const scope of ['session', 'user'] as const) {
    describe(`${label}, ${scope} attributes: Idempotency-Key`, () => {
      let store: Store
      before(() => { store = makeStore() })
      after(async () => { await store.close() })
      const owner = (): Owner => ({ scope, id: randomBytes(16).toString('base64url').slice(0, 22) })

      test('a repeat gets the first outcome again and writes nothing', async () => {
        const who = owner()
        const idem = key()
        const first = await store.write(who, 'set', [plain('a', 1), plain('b', 2)], idem)
        assert.deepEqual(first.map((outcome) => outcome.version), [1, 1])
        const again = await store.write(who, 'set', [plain('a', 1), plain('b', 2)], idem)
        assert.deepEqual(again, first)
        assert.deepEqual((await store.get(who, ['a', 'b'])).map((attribute) => attribute?.version), [1, 1], 'written once')
        assert.equal((await store.write(who, 'set', [plain('a', 1)]))[0]!.version, 2, 'without a key, a write is a write')
      })

      test('the same key with another request: E011008, nothing written', async () => {
        const who = owner()
        const idem = key('f1')
        await store.write(who, 'set', [plain('a', 1)], idem)
        assert.equal(await refusal(store.write(who, 'set', [plain('a', 9)], { ...idem, fingerprint: 'f2' })), 'E011008')
        assert.equal(await refusal(store.delete(who, ['a'], undefined, { ...idem, fingerprint: 'f3' })), 'E011008')
        const [a] = await store.get(who, ['a'])
        assert.deepEqual([a?.payload, a?.version], ['1', 1])
      })

      test('a refusal is an outcome too: a repeated create of an existing name is E009001 again, even once the name is free', async () => {
        const who = owner()
        await store.write(who, 'create', [plain('a', 1)])
        const idem = key()
        assert.equal(await refusal(store.write(who, 'create', [plain('a', 2)], idem)), 'E009001')
        await store.delete(who, ['a'])
        assert.equal(await refusal(store.write(who, 'create', [plain('a', 2)], idem)), 'E009001')
        assert.deepEqual(await store.names(who), [], 'the repeat created nothing')
      })

      test('if_version: a repeat of a conditional write that was applied answers its version, not a conflict', async () => {
        const who = owner()
        await store.write(who, 'set', [plain('a', 1)])
        const idem = key()
        const [first] = await store.write(who, 'update', [plain('a', 2, 1)], idem)
        const [again] = await store.write(who, 'update', [plain('a', 2, 1)], idem)
        assert.equal(first!.version, 2)
        assert.equal(again!.version, 2)
      })

      test('deletes: a repeat answers what the first delete found', async () => {
        const who = owner()
        await store.write(who, 'set', [plain('a', 1)])
        const idem = key()
        assert.deepEqual(await store.delete(who, ['a', 'zz'], undefined, idem), [true, false])
        assert.deepEqual(await store.delete(who, ['a', 'zz'], undefined, idem), [true, false])
        assert.deepEqual(await store.delete(who, ['a']), [false])
      })

      test('concurrent repeats run once', async () => {
        const who = owner()
        const idem = key()
        const outcomes = await Promise.all(Array.from({ length: 20 }, async () => await store.write(who, 'set', [plain('n', 'x')], idem)))
        for (const outcome of outcomes) assert.equal(outcome[0]!.version, 1)
        assert.equal((await store.get(who, ['n']))[0]?.version, 1)
      })

      test('the record lives for its TTL: after it, the key is new again', async () => {
        const who = owner()
        const idem = key('f1', 50)
        await store.write(who, 'set', [plain('a', 1)], idem)
        await sleep(120)
        assert.equal((await store.write(who, 'set', [plain('a', 1)], idem))[0]!.version, 2)
      })

      if (scope === 'session') {
        test('an ended session refuses a repeat too (E007001)', async () => {
          const who = owner()
          const idem = key()
          await store.write(who, 'set', [plain('a', 1)], idem)
          await store.endSession(who.id, 60_000)
          assert.equal(await refusal(store.write(who, 'set', [plain('a', 1)], idem)), 'E007001')
        })
      }
    })
  }
}
