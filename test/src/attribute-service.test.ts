import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import fc from 'fast-check'
import { isoTime } from '../../src/attribute-service.ts'

describe('isoTime', () => {
  test('formats exactly as Date#toISOString, from 1970 to 9999 and outside it', () => {
    const edges = [0, 1, 999, 1000, 86_399_999, 86_400_000, 951_782_400_000, 4_107_542_399_999, 253_402_300_799_999, 253_402_300_800_000, -1, -86_400_001, 8.64e15, 1.5, Date.now()]
    for (const ms of edges) assert.equal(isoTime(ms), new Date(ms).toISOString(), String(ms))
    fc.assert(fc.property(fc.integer({ min: -8.64e15, max: 8.64e15 }), (ms) => isoTime(ms) === new Date(ms).toISOString()), { numRuns: 20_000 })
    // Consecutive calls across a day boundary (the day part is cached).
    for (let ms = 1_700_006_399_990; ms < 1_700_006_400_010; ms++) assert.equal(isoTime(ms), new Date(ms).toISOString())
  })
})
