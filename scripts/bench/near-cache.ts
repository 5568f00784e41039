import { setTimeout as sleep } from 'node:timers/promises'
import type { Redis } from 'ioredis'
import type { RoundStats } from './load.ts'
import { redisCpuSeconds } from './measure.ts'
import { fmt, median } from './numbers.ts'
import { APP, ATTR_PATH, VALUE_BYTES, okCheck, type Reply, type Scenario } from './scenarios.ts'

// The near cache's rows (issue 15, target 3): GET single on one hot session, once on the service
// as it runs by default and once on a second service process with SSO_NEAR_CACHE=on (same
// core, same Redis), each compared with the GET floor of the same round.

/** The environment of the second service process. */
export const NEAR_CACHE_ENV = { SSO_NEAR_CACHE: 'on' } as const

export function nearCacheScenarios (hotToken: string): Scenario[] {
  const path = `${ATTR_PATH}?current_app=${APP}&name=plain`
  const check = (reply: Reply) => okCheck(reply) ??
    (reply.body.found !== true || typeof reply.body.value !== 'string' || reply.body.value.length !== VALUE_BYTES - 2 ? `unexpected body ${JSON.stringify(reply.body).slice(0, 300)}` : undefined)
  const hot = { method: 'GET' as const, path, tokens: [hotToken, hotToken], rotate: false, items: 1, check }
  return [
    { key: 'get-hot', label: 'GET single, one hot session', target: 'service', ...hot },
    { key: 'get-hot-near', label: 'GET single, one hot session, near cache', target: 'near', ...hot }
  ]
}

/**
 * Redis' CPU per second with every process up and no load (its own cron, the services'
 * background work such as the near cache's heartbeats): what a round pays whatever it drives.
 */
export async function idleRedisCpuUsPerSecond (admin: Redis, seconds = 3): Promise<number> {
  const before = await redisCpuSeconds(admin)
  await sleep(seconds * 1000)
  return ((await redisCpuSeconds(admin) - before) * 1e6) / seconds
}

const pairedRatio = (a: RoundStats[] | undefined, b: RoundStats[] | undefined) =>
  a === undefined || b === undefined ? Number.NaN : median(a.map((stats, i) => stats.rps / (b[i]?.rps ?? Number.NaN)))

/** The report's line on target 3: both rows against the floor, and Redis' CPU and commands per cached GET. */
export function nearCacheNote (rounds: Map<string, RoundStats[]>, idleRedisUsPerSecond = Number.NaN): string {
  const near = rounds.get('get-hot-near')
  if (near === undefined) return '- Near cache: not run.'
  const floor = rounds.get('floor-get')
  const ofFloor = pairedRatio(near, floor)
  const uncachedOfFloor = pairedRatio(rounds.get('get-hot'), floor)
  const redisCpuUs = median(near.map((s) => s.redisCpuUs))
  // A round of `requests / rps` seconds paid that much idle work, spread over its requests.
  const netRedisCpuUs = median(near.map((s) => s.redisCpuUs - idleRedisUsPerSecond / s.rps))
  const commands = median(near.map((s) => s.commandsPerRequest))
  return `- Near cache (SSO_NEAR_CACHE=on, a second service process on the service's core): GET single on one hot session is **${fmt(ofFloor, 2)} of the GET floor** ` +
    `(target ≥ 1.0; per round ${near.map((s, i) => fmt(s.rps / (floor?.[i]?.rps ?? Number.NaN), 2)).join(' / ')}), against ${fmt(uncachedOfFloor, 2)} for the same session without it; ` +
    `Redis CPU **${fmt(redisCpuUs, 2)} µs per cached GET** (target ≤ 2; \`INFO cpu\` delta over the round ÷ requests), ` +
    `${Number.isFinite(netRedisCpuUs) ? `${fmt(netRedisCpuUs, 2)} µs without what an idle Redis spends in the same time (${fmt(idleRedisUsPerSecond)} µs/s measured before the rounds)` : 'idle Redis CPU not measured'}; ` +
    `${fmt(commands, 3)} Redis commands per GET ` +
    `(renewals, fills after them, heartbeats); service CPU ${fmt(median(near.map((s) => s.serverCpuUs)))} µs per GET against ${fmt(median((rounds.get('get-hot') ?? []).map((s) => s.serverCpuUs)))} without.`
}
