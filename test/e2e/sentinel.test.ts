import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { after, before, describe, test } from 'node:test'
import { setTimeout as sleep } from 'node:timers/promises'
import type { Config } from '../../src/config.ts'
import { RedisSentinelSet, SENTINEL_DOWN_AFTER_MS, SENTINEL_MASTER_NAME } from '../fixtures/sentinel.ts'
import { mintUst } from '../helper.ts'
import { assertOk, call, listen } from './http.ts'
import { checkIdleInstance, failoverFigures, sessions, steadyLoad, walkThroughApi } from './load.ts'

// The service over HTTP on a Sentinel-managed primary (primary, replica, 3 Sentinels): the API,
// and the primary killed under load (the Sentinels promote the replica; the service finds it
// through them and serves again without a restart). The failover test runs last.

const COMMAND_TIMEOUT_MS = 500
const P = '/sso/session/attr'

let set: RedisSentinelSet
before(async () => { set = await RedisSentinelSet.start() })
after(async () => { await set.close() })

function sentinelConfig (overrides: Partial<Config> = {}): Partial<Config> {
  return {
    SSO_STORE: 'redis',
    REDIS_SENTINELS: set.seeds,
    REDIS_SENTINEL_NAME: SENTINEL_MASTER_NAME,
    REDIS_COMMAND_TIMEOUT_MS: COMMAND_TIMEOUT_MS,
    SSO_KEY_PREFIX: `e2e-s-${randomBytes(4).toString('hex')}:`,
    ...overrides
  }
}

describe('the service on a Sentinel-managed primary', () => {
  test('the whole API over HTTP', { timeout: 30_000 }, async (t) => {
    const { base } = await listen(t, sentinelConfig())
    await walkThroughApi(base, await mintUst())
  })

  test('the primary killed under load: the replica is promoted and the service serves again without a restart; an idle instance serves its first requests after it without an error', { timeout: 45_000 }, async (t) => {
    const { base } = await listen(t, sentinelConfig())
    const idle = await listen(t, sentinelConfig())
    const all = await sessions(20)
    for (const { ust } of all) assertOk(await call(base, 'PUT', P, { ust, body: { current_app: 'CRM', name: 'kept', value: 1 } }), 'PUT before the fault')
    for (const { ust } of all) assertOk(await call(idle.base, 'GET', `${P}?current_app=CRM&name=kept`, { ust }), 'GET through the idle instance before the fault')

    const load = steadyLoad(base, all)
    await sleep(500)
    const faultAt = performance.now()
    const killed = await set.killPrimary()
    const promoted = await set.waitPromoted(killed)
    const promotedMs = performance.now() - faultAt
    await sleep(1500)
    const answers = await load.stop()

    const figures = failoverFigures(t, answers, faultAt, COMMAND_TIMEOUT_MS + 1000)
    t.diagnostic(`primary :${killed} killed; Sentinels named :${promoted} after ${promotedMs.toFixed(0)} ms (down-after ${SENTINEL_DOWN_AFTER_MS} ms)`)
    assert.ok(figures.failed > 0, 'the kill did make requests fail')
    assert.ok(figures.windowMs < 5000, `failed-request window ${figures.windowMs.toFixed(0)} ms (target under 5 s)`)
    for (const { ust } of all) assert.equal(assertOk(await call(base, 'GET', `${P}?current_app=CRM&name=kept`, { ust }), 'GET after the failover').value, 1)
    assert.equal(assertOk(await call(base, 'GET', '/readyz')).store, 'redis')
    await checkIdleInstance(t, idle.base, all)
  })
})
