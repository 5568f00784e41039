import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import { BatchedRateCounter } from '../../src/rate-counter.ts'
import { StoreUnavailableError } from '../../src/errors.ts'
import { MemoryStore } from '../../src/store/memory-store.ts'

const LIMITS = { sessionIdleTtlMs: 60_000, sessionMaxTtlMs: 120_000, maxAttributesPerSession: 10 }

describe('BatchedRateCounter', () => {
  test('counts at once without the store, sends the counts in one batch, and learns the other instances\' counts', async (t) => {
    const shared = new MemoryStore(LIMITS)
    t.after(() => shared.close())
    let calls = 0
    const counting = { countHit: async (key: string, windowMs: number, count?: number) => { calls++; return await shared.countHit(key, windowMs, count) } }
    const one = new BatchedRateCounter(counting, { syncMs: 1000 })
    const two = new BatchedRateCounter(counting, { syncMs: 1000 })
    t.after(() => { one.close(); two.close() })
    assert.deepEqual([1, 2, 3].map(() => one.hit('u:alice', 60_000).current), [1, 2, 3])
    assert.equal(calls, 0, 'no store call on the request path')
    await one.flush()
    assert.equal(calls, 1, 'three requests, one store call')
    assert.equal((await shared.countHit('u:alice', 60_000, 0)).current, 3)
    assert.equal(two.hit('u:alice', 60_000).current, 1, 'two has not heard of one yet')
    await two.flush()
    assert.equal(two.hit('u:alice', 60_000).current, 5, 'three from one, one from two, this one')
    assert.equal(one.hit('bob', 60_000).current, 1, 'keys are counted apart')
  })

  test('a failed send is kept and sent with the next batch', async (t) => {
    const shared = new MemoryStore(LIMITS)
    t.after(() => shared.close())
    let down = true
    const flaky = { countHit: async (key: string, windowMs: number, count?: number) => { if (down) throw new StoreUnavailableError(); return await shared.countHit(key, windowMs, count) } }
    const counter = new BatchedRateCounter(flaky, { syncMs: 1000 })
    t.after(() => counter.close())
    counter.hit('k', 60_000)
    counter.hit('k', 60_000)
    await counter.flush()
    down = false
    assert.equal(counter.hit('k', 60_000).current, 3)
    await counter.flush()
    assert.equal((await shared.countHit('k', 60_000, 0)).current, 3)
  })

  test('a window ends: counting starts again', async (t) => {
    let now = 1_000_000
    const counter = new BatchedRateCounter({ countHit: async () => ({ current: 0, ttlMs: 0 }) }, { syncMs: 1000, now: () => now })
    t.after(() => counter.close())
    counter.hit('k', 500)
    assert.equal(counter.hit('k', 500).current, 2)
    now += 501
    assert.deepEqual(counter.hit('k', 500), { current: 1, ttlMs: 500 })
  })

  test('sends on its own every syncMs', async (t) => {
    const shared = new MemoryStore(LIMITS)
    t.after(() => shared.close())
    const counter = new BatchedRateCounter(shared, { syncMs: 20 })
    t.after(() => counter.close())
    counter.hit('auto', 60_000)
    await new Promise((resolve) => setTimeout(resolve, 150))
    assert.equal((await shared.countHit('auto', 60_000, 0)).current, 1)
  })
})
