import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import { setTimeout as sleep } from 'node:timers/promises'
import { DeadlineQueue } from '../../src/store/deadlines.ts'

describe('deadline queue', () => {
  test('calls not settled in time expire, once each, and settled ones never do', async () => {
    const queue = new DeadlineQueue(40)
    const expired: string[] = []
    const first = queue.add(() => expired.push('first'))
    const second = queue.add(() => expired.push('second'))
    queue.add(() => expired.push('third'))
    queue.settle(second)
    await sleep(20)
    assert.deepEqual(expired, [])
    await sleep(60)
    assert.deepEqual(expired, ['first', 'third'])
    queue.settle(first)
    await sleep(50)
    assert.deepEqual(expired, ['first', 'third'])
    assert.equal(queue.size, 0)
    assert.equal(queue.timerDueAt, undefined)
  })

  test('settled calls leave from the head at once, so a queue answered in order stays empty', () => {
    const queue = new DeadlineQueue(1000)
    const entries = Array.from({ length: 100 }, () => queue.add(() => assert.fail('expired')))
    assert.equal(queue.size, 100)
    queue.settle(entries[1]!)
    assert.equal(queue.size, 100, 'one behind the head waits for the head')
    queue.settle(entries[0]!)
    assert.equal(queue.size, 98)
    for (const entry of entries) queue.settle(entry)
    assert.equal(queue.size, 0)
  })

  test('one timer serves every call: it is set for the oldest deadline, and moves on to the next', async () => {
    let now = 1_000
    const queue = new DeadlineQueue(30, () => now)
    const expired: number[] = []
    const a = queue.add(() => expired.push(1))
    assert.equal(queue.timerDueAt, 1_030)
    now = 1_010
    queue.add(() => expired.push(2))
    assert.equal(queue.timerDueAt, 1_030, 'a later call does not set a timer of its own')
    queue.settle(a)
    now = 1_030
    await sleep(45)
    assert.deepEqual(expired, [], 'the second call has 10 ms left when the timer fires')
    assert.equal(queue.timerDueAt, 1_040)
    now = 1_040
    await sleep(20)
    assert.deepEqual(expired, [2])
  })
})
