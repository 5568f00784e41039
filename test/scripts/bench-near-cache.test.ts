import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import type { RoundStats } from '../../scripts/bench/load.ts'
import { nearCacheNote, nearCacheScenarios } from '../../scripts/bench/near-cache.ts'
import { buildScenarios, selectScenarios } from '../../scripts/bench/scenarios.ts'

// The near cache's bench rows (scripts/bench/near-cache.ts) without running a load.

const ROUND: Omit<RoundStats, 'rps' | 'redisCpuUs'> = { p50: 1, p99: 2, requests: 1000, sentRequests: 1000, failures: 0, commandsPerRequest: 0.01, commands: new Map(), serverCpuUs: 50, loadgenCpuPct: 10, serverCoreBusy: 90, loadgenCoreBusy: 50, serverCpuPct: 80, serverErrors: 0, load1: 1 }
const round = (rps: number, redisCpuUs = 0): RoundStats => ({ ...ROUND, rps, redisCpuUs })

describe('bench: near cache rows', () => {
  const scenarios = [...buildScenarios(['t0', 't1'], ['n0'], '{}'), ...nearCacheScenarios('hot')]

  test('one hot session, on the service and on the near-cache process; --only knows both', () => {
    const rows = nearCacheScenarios('hot')
    assert.deepEqual(rows.map((s) => [s.key, s.target, s.rotate, s.tokens.every((token) => token === 'hot')]), [
      ['get-hot', 'service', false, true],
      ['get-hot-near', 'near', false, true]
    ])
    assert.deepEqual(selectScenarios(scenarios, ['get-hot-near']).map((s) => s.key), ['base-get', 'base-put', 'floor-get', 'floor-put', 'get-hot-near'])
  })

  test('the note pairs each round with the floor of the same round', () => {
    const rounds = new Map<string, RoundStats[]>([
      ['floor-get', [round(1000), round(2000), round(1000)]],
      ['get-hot', [round(500), round(1000), round(600)]],
      ['get-hot-near', [round(1200, 0.5), round(2200, 0.7), round(900, 0.6)]]
    ])
    const note = nearCacheNote(rounds)
    // Per-round ratios 1.2, 1.1, 0.9: the median is 1.1 (not 4300/4000 of the sums).
    assert.match(note, /\*\*1\.10 of the GET floor\*\*/)
    assert.match(note, /per round 1\.20 \/ 1\.10 \/ 0\.90/)
    assert.match(note, /against 0\.50 for the same session without it/)
    assert.match(note, /\*\*0\.60 µs per cached GET\*\*/)
    assert.match(note, /idle Redis CPU not measured/)
    // Idle Redis at 220 µs/s: per round 0.5 - 220/1200, 0.7 - 220/2200, 0.6 - 220/900 = 0.32, 0.60, 0.36; median 0.36.
    assert.match(nearCacheNote(rounds, 220), /0\.36 µs without what an idle Redis spends in the same time \(220 µs\/s/)
    assert.equal(nearCacheNote(new Map()), '- Near cache: not run.')
  })
})
