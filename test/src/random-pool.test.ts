import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import { randomBytesPooled, randomHex } from '../../src/random-pool.ts'

describe('random pool', () => {
  test('randomHex: lowercase hex of the asked size, never the same twice, across many pool refills', () => {
    const seen = new Set<string>()
    for (let i = 0; i < 5000; i++) {
      const hex = randomHex(12)
      assert.match(hex, /^[0-9a-f]{24}$/)
      seen.add(hex)
    }
    assert.equal(seen.size, 5000)
    assert.match(randomHex(1), /^[0-9a-f]{2}$/)
    assert.match(randomHex(5000), /^[0-9a-f]{10000}$/)
  })

  test('randomBytesPooled: the asked size, distinct slices, and bytes handed out do not change on a refill', () => {
    const kept: Array<[Buffer, Buffer]> = []
    const seen = new Set<string>()
    for (let i = 0; i < 5000; i++) {
      const bytes = randomBytesPooled(12)
      assert.equal(bytes.length, 12)
      seen.add(bytes.toString('hex'))
      if (i % 500 === 0) kept.push([bytes, Buffer.from(bytes)])
    }
    assert.equal(seen.size, 5000)
    for (const [view, copy] of kept) assert.deepEqual(view, copy)
    assert.equal(randomBytesPooled(3000).length, 3000)
  })

  test('the bytes look uniform: every byte value turns up, none far more often than the others', () => {
    const counts = new Array<number>(256).fill(0)
    for (let i = 0; i < 4096; i++) for (const byte of randomBytesPooled(64)) counts[byte]!++
    // 1024 expected per value; a fixed or patterned source would put some at 0 or far above.
    assert.ok(Math.min(...counts) > 800, `min ${Math.min(...counts)}`)
    assert.ok(Math.max(...counts) < 1250, `max ${Math.max(...counts)}`)
  })
})
