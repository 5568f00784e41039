import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import { BatchedRateCounter } from '../../src/rate-counter.ts'
import { StoreUnavailableError } from '../../src/errors.ts'
import { MemoryStore } from '../../src/store/memory-store.ts'

const LIMITS = { sessionIdleTtlMs: 60_000, sessionMaxTtlMs: 120_000, maxAttributesPerSession: 10 }
const MINUTE = 60_000

async function total (store: MemoryStore, key: string): Promise<number> {
  return (await store.countHits(MINUTE, [[key, 0]])).totals[0]!
}

describe('BatchedRateCounter', () => {
  test('counts at once without the store, sends every key in one call, and learns the other instances\' counts', async (t) => {
    const shared = new MemoryStore(LIMITS)
    t.after(() => shared.close())
    const calls: Array<Array<[string, number]>> = []
    const counting = {
      countHits: async (windowMs: number, hits: Array<[string, number]>) => {
        calls.push(hits)
        return await shared.countHits(windowMs, hits)
      }
    }
    const one = new BatchedRateCounter(counting, MINUTE, { syncMs: 1000 })
    const two = new BatchedRateCounter(counting, MINUTE, { syncMs: 1000 })
    t.after(() => { one.close(); two.close() })
    assert.deepEqual([1, 2, 3].map(() => one.hit('u:alice').current), [1, 2, 3])
    assert.equal(one.hit('ip:10.0.0.1').current, 1, 'keys are counted apart')
    assert.equal(calls.length, 0, 'no store call on the request path')
    await one.flush()
    assert.deepEqual(calls, [[['u:alice', 3], ['ip:10.0.0.1', 1]]], 'four requests of two keys, one store call')
    assert.equal(await total(shared, 'u:alice'), 3)
    assert.equal(two.hit('u:alice').current, 1, 'two has not heard of one yet')
    await two.flush()
    assert.equal(two.hit('u:alice').current, 5, 'three from one, one from two, and this one')
    await one.flush()
    assert.equal(calls.length, 2, 'nothing new on one: no call')
  })

  test('a failed send is kept and sent with the next batch; meanwhile in-flight counts still count', async (t) => {
    const shared = new MemoryStore(LIMITS)
    t.after(() => shared.close())
    let down = true
    const flaky = {
      countHits: async (windowMs: number, hits: Array<[string, number]>) => {
        if (down) throw new StoreUnavailableError()
        return await shared.countHits(windowMs, hits)
      }
    }
    const counter = new BatchedRateCounter(flaky, MINUTE, { syncMs: 1000 })
    t.after(() => counter.close())
    counter.hit('k')
    counter.hit('k')
    const sending = counter.flush()
    assert.equal(counter.hit('k').current, 3, 'the two on their way are counted too')
    await sending
    down = false
    assert.equal(counter.hit('k').current, 4)
    await counter.flush()
    assert.equal(await total(shared, 'k'), 4)
  })

  test('windows are aligned to the epoch: counting starts again at the next one', async (t) => {
    let now = 10 * MINUTE + 1000
    const counter = new BatchedRateCounter({ countHits: async () => ({ totals: [], ttlMs: 0 }) }, MINUTE, { syncMs: 1000, now: () => now })
    t.after(() => counter.close())
    counter.hit('k')
    assert.deepEqual(counter.hit('k'), { current: 2, ttlMs: MINUTE - 1000 })
    now = 11 * MINUTE
    assert.deepEqual(counter.hit('k'), { current: 1, ttlMs: MINUTE })
  })

  test('sends on its own every syncMs', async (t) => {
    const shared = new MemoryStore(LIMITS)
    t.after(() => shared.close())
    const counter = new BatchedRateCounter(shared, MINUTE, { syncMs: 20 })
    t.after(() => counter.close())
    counter.hit('auto')
    // No flush: only the counter's own timer can send the hit. Waited for up to 3 s (a loaded CI
    // machine delays timers), not timed.
    for (let waited = 0; waited < 3000 && await total(shared, 'auto') === 0; waited += 20) await new Promise((resolve) => setTimeout(resolve, 20))
    assert.equal(await total(shared, 'auto'), 1)
  })
})
