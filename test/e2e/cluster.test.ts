import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { after, before, describe, test } from 'node:test'
import { setTimeout as sleep } from 'node:timers/promises'
import type { Config } from '../../src/config.ts'
import { CLUSTER_NODE_TIMEOUT_MS, RedisCluster } from '../fixtures/cluster.ts'
import { mintUst } from '../helper.ts'
import { assertOk, call, listen } from './http.ts'
import { checkIdleInstance, checkTwoInstances, failoverFigures, sessions, slotOf, steadyLoad, walkThroughApi } from './load.ts'

// The service over HTTP on a real 3-master, 3-replica Redis Cluster: the API, two instances
// sharing the data, and a master killed under load (its replica takes over; the service serves
// again without a restart). One cluster for the file; the failover test runs last.

const COMMAND_TIMEOUT_MS = 500
const P = '/sso/session/attr'

let cluster: RedisCluster
before(async () => { cluster = await RedisCluster.start() })
after(async () => { await cluster.close() })

function clusterConfig (overrides: Partial<Config> = {}): Partial<Config> {
  return {
    SSO_STORE: 'redis',
    REDIS_CLUSTER_NODES: cluster.seeds,
    REDIS_COMMAND_TIMEOUT_MS: COMMAND_TIMEOUT_MS,
    SSO_KEY_PREFIX: `e2e-c-${randomBytes(4).toString('hex')}:`,
    ...overrides
  }
}

async function untilReady (base: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while ((await call(base, 'GET', '/readyz')).status !== 200) {
    if (Date.now() > deadline) throw new Error(`${base} not ready within ${timeoutMs} ms`)
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
}

describe('the service on a Redis Cluster', () => {
  test('the whole API over HTTP', { timeout: 30_000 }, async (t) => {
    const { base } = await listen(t, clusterConfig())
    await walkThroughApi(base, await mintUst())
  })

  test('two instances on the cluster: a write through one is read through the other at once; if_version holds across them', { timeout: 30_000 }, async (t) => {
    const config = clusterConfig()
    const one = await listen(t, config)
    const two = await listen(t, config)
    // As a load balancer would: traffic only once each instance says it is ready (its cluster
    // client has the slot map), which on a busy machine can take longer than the command timeout.
    await untilReady(one.base)
    await untilReady(two.base)
    await checkTwoInstances(one.base, two.base)
  })

  test('a master killed under load: its replica is promoted and the service serves again without a restart; an idle instance serves its first requests after it without an error', { timeout: 45_000 }, async (t) => {
    const { base } = await listen(t, clusterConfig())
    // A second instance that served before the fault and sits idle through it, as one behind a
    // load balancer may: nothing but its own slot refresh can tell it of the promotion.
    const idle = await listen(t, clusterConfig())
    const all = await sessions(30)
    // The victim is the master of the first session's slot, so some sessions surely fail over.
    const slot = slotOf(all[0]!.id)
    const victim = await cluster.masterOf(slot)
    const roles = await cluster.roles()
    const portOf = (sessionSlot: number) => roles.find((role) => role.role === 'master' && role.slots.some(([from, to]) => sessionSlot >= from && sessionSlot <= to))?.port
    const affected = new Set(all.map((session, index) => portOf(slotOf(session.id)) === victim ? index : -1).filter((index) => index >= 0))
    assert.ok(affected.size > 0 && affected.size < all.length)
    for (const { ust } of all) assertOk(await call(base, 'PUT', P, { ust, body: { current_app: 'CRM', name: 'kept', value: 1 } }), 'PUT before the fault')
    for (const { ust } of all) assertOk(await call(idle.base, 'GET', `${P}?current_app=CRM&name=kept`, { ust }), 'GET through the idle instance before the fault')

    const load = steadyLoad(base, all)
    await sleep(500)
    const faultAt = performance.now()
    const killed = await cluster.killMasterOf(slot)
    assert.equal(killed, victim)
    const promoted = await cluster.waitPromoted(slot, killed)
    const promotedMs = performance.now() - faultAt
    await sleep(1500)
    const answers = await load.stop()

    const figures = failoverFigures(t, answers, faultAt, COMMAND_TIMEOUT_MS + 1000)
    t.diagnostic(`master :${killed} killed; replica :${promoted} took over its slots after ${promotedMs.toFixed(0)} ms (cluster-node-timeout ${CLUSTER_NODE_TIMEOUT_MS} ms)`)
    assert.ok(figures.failed > 0, 'the kill did make requests fail')
    assert.ok(figures.windowMs < 5000, `failed-request window ${figures.windowMs.toFixed(0)} ms (target under 5 s)`)
    // Only the sessions of the killed master failed: the other shards kept serving throughout.
    const failedSessions = new Set(answers.filter((answer) => answer.reply.status !== 200).map((answer) => answer.session))
    for (const session of failedSessions) assert.ok(affected.has(session), `session ${session}, on a live master, failed`)
    t.diagnostic(`${affected.size} of ${all.length} sessions on the killed master, ${failedSessions.size} of them saw a 503`)
    // Every session is served again, with what was written before the fault.
    for (const { ust } of all) assert.equal(assertOk(await call(base, 'GET', `${P}?current_app=CRM&name=kept`, { ust }), 'GET after the failover').value, 1)
    assert.equal(assertOk(await call(base, 'GET', '/readyz')).store, 'redis')

    await checkIdleInstance(t, idle.base, all)
  })
})
