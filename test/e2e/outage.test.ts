import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'
import { setTimeout as sleep } from 'node:timers/promises'
import { RedisServer } from '../fixtures/redis.ts'
import { mintUst } from '../helper.ts'
import { assertError, assertOk, call, listen, rawJson, type Reply } from './http.ts'

// Redis goes away under a running service (killed, then frozen with SIGSTOP): every request
// answers 503 E011003 within a bounded time, and the service recovers on its own when Redis
// is back, without a restart of the app.

const COMMAND_TIMEOUT_MS = 500
const BOUND_MS = 2000
const P = '/sso/session/attr'

let redis: RedisServer
before(async () => { redis = await RedisServer.start() })
after(async () => { await redis.close() })

function assertUnavailable (reply: Reply, what: string, boundMs = BOUND_MS): void {
  assertError(reply, 503, 'E011003', what)
  assert.equal(reply.headers['retry-after'], '1', `${what}: Retry-After`)
  assert.ok(reply.ms < boundMs, `${what}: answered in ${reply.ms.toFixed(0)} ms, bound ${boundMs} ms`)
}

/** Polls a write until it succeeds; returns how long that took. */
async function untilRecovered (base: string, ust: string, limitMs: number): Promise<number> {
  const started = performance.now()
  let last: Reply | undefined
  while (performance.now() - started < limitMs) {
    last = await call(base, 'PUT', P, { ust, body: { current_app: 'CRM', name: 'probe', value: Date.now() } })
    if (last.status === 200) return performance.now() - started
    assertUnavailable(last, 'while waiting for recovery')
    await sleep(50)
  }
  assert.fail(`no recovery within ${limitMs} ms; last answer ${last?.status} ${last?.text}`)
}

describe('Redis outage under a running service', () => {
  test('Redis killed mid-run: 503 E011003 fast, /readyz 503, then recovery by itself after restart', { timeout: 40_000 }, async (t) => {
    const { base, port } = await listen(t, { SSO_STORE: 'redis', REDIS_URL: redis.url, REDIS_COMMAND_TIMEOUT_MS: COMMAND_TIMEOUT_MS })
    const ust = await mintUst()
    assertOk(await call(base, 'PUT', P, { ust, body: { current_app: 'CRM', name: 'before', value: 1 } }), 'PUT before the outage')
    assert.equal(assertOk(await call(base, 'GET', '/readyz')).store, 'redis')

    // Writers keep going while Redis is killed under them: each answer is a 200 or a fast 503.
    const stop = new AbortController()
    const answers: Reply[] = []
    const writer = async (id: number) => {
      for (let i = 0; !stop.signal.aborted; i++) {
        const reply = await call(base, 'PUT', P, { ust, body: { current_app: 'CRM', name: `w${id}`, value: i } })
        answers.push(reply)
      }
    }
    const writers = Promise.all(Array.from({ length: 8 }, (_, id) => writer(id)))
    await sleep(200)
    const stoppedAt = performance.now()
    await redis.stop()
    await sleep(1500)
    stop.abort()
    await writers
    const failed = answers.filter((reply) => reply.status !== 200)
    assert.ok(answers.length - failed.length > 0, 'writes succeeded before the kill')
    assert.ok(failed.length > 0, 'writes failed after the kill')
    for (const reply of failed) assertUnavailable(reply, 'a write during the kill')
    const slowest = Math.max(...answers.map((reply) => reply.ms))
    assert.ok(slowest < BOUND_MS, `slowest answer around the kill: ${slowest.toFixed(0)} ms`)

    // Every operation while Redis is down, through both prefixes and a GET with a body, all
    // at once: none waits behind another.
    const downTimes: number[] = []
    const down = async (reply: Promise<Reply>, what: string) => {
      const answer = await reply
      assertUnavailable(answer, what)
      downTimes.push(answer.ms)
    }
    await Promise.all([
      down(call(base, 'PUT', P, { ust, body: { current_app: 'CRM', name: 'x', value: 1 } }), 'PUT'),
      down(call(base, 'POST', P, { ust, body: { current_app: 'CRM', name: 'y', value: 1 } }), 'POST'),
      down(call(base, 'PATCH', P, { ust, body: { current_app: 'CRM', name: 'before', value: 2 } }), 'PATCH'),
      down(call(base, 'GET', `${P}?current_app=CRM&name=before`, { ust }), 'GET'),
      down(call(base, 'GET', `${P}/exists?current_app=CRM&name=before`, { ust }), 'exists'),
      down(call(base, 'GET', `${P}/names?current_app=CRM`, { ust }), 'names'),
      down(call(base, 'DELETE', `${P}?current_app=CRM&name=before`, { ust }), 'DELETE'),
      down(rawJson(port, 'GET', '/zato/sso/session/attr', { current_app: 'CRM', current_ust: ust, name: 'before' }), 'Zato GET with a body'),
      down(call(base, 'GET', '/readyz'), '/readyz'),
      ...Array.from({ length: 10 }, async (_, i) => await down(call(base, 'GET', `${P}?current_app=CRM&name=n${i}`, { ust }), `parallel GET ${i}`))
    ])
    // And one after another, on a connection that is still down.
    await down(call(base, 'GET', '/readyz'), '/readyz again')
    assertOk(await call(base, 'GET', '/healthz'), 'liveness does not depend on Redis')
    t.diagnostic(`503 while Redis was down: max ${Math.max(...downTimes).toFixed(0)} ms, median ${downTimes.sort((a, b) => a - b)[Math.floor(downTimes.length / 2)]!.toFixed(0)} ms over ${downTimes.length} requests; slowest answer around the kill ${slowest.toFixed(0)} ms; ${failed.length}/${answers.length} writes refused`)

    await redis.restart()
    const recoveredIn = await untilRecovered(base, ust, 5000)
    assert.equal(assertOk(await call(base, 'GET', '/readyz'), '/readyz after recovery').store, 'redis')
    // The restarted Redis is empty, and none of the writes answered 503 while it was down
    // (x, y, w0..w7) reached it later: a refused request stores nothing.
    assert.deepEqual(assertOk(await call(base, 'GET', `${P}/names?current_app=CRM`, { ust })).result, ['probe'], 'writes refused with 503 were replayed on reconnection')
    t.diagnostic(`recovered ${recoveredIn.toFixed(0)} ms after redis-server was back (${(performance.now() - stoppedAt).toFixed(0)} ms after the kill)`)
  })

  test('Redis frozen with SIGSTOP: 503 within the command timeout plus a margin, never a hang', { timeout: 40_000 }, async (t) => {
    const { base } = await listen(t, { SSO_STORE: 'redis', REDIS_URL: redis.url, REDIS_COMMAND_TIMEOUT_MS: COMMAND_TIMEOUT_MS })
    const ust = await mintUst()
    assertOk(await call(base, 'PUT', P, { ust, body: { current_app: 'CRM', name: 'kept', value: 'v' } }), 'PUT before the freeze')

    redis.pause()
    t.after(() => redis.resume())
    const bound = COMMAND_TIMEOUT_MS + 400
    const replies = await Promise.all([
      call(base, 'PUT', P, { ust, body: { current_app: 'CRM', name: 'x', value: 1 } }),
      call(base, 'GET', `${P}?current_app=CRM&name=kept`, { ust }),
      call(base, 'GET', `${P}/names?current_app=CRM`, { ust }),
      call(base, 'DELETE', `${P}?current_app=CRM&name=kept`, { ust }),
      call(base, 'GET', '/readyz')
    ])
    for (const reply of replies) assertUnavailable(reply, 'while Redis is frozen', bound)
    for (const reply of replies) assert.ok(reply.ms >= COMMAND_TIMEOUT_MS - 50, `waited for the command timeout (${reply.ms.toFixed(0)} ms)`)
    const sequential = await call(base, 'GET', `${P}?current_app=CRM&name=kept`, { ust })
    assertUnavailable(sequential, 'a second request while frozen', bound)
    const times = [...replies, sequential].map((reply) => reply.ms)

    redis.resume()
    const recoveredIn = await untilRecovered(base, ust, 5000)
    // Nothing of what timed out was applied after the fact by a surprise: the DELETE may
    // have reached Redis before the timeout fired, so only the value of `kept` is checked.
    const kept = assertOk(await call(base, 'GET', `${P}?current_app=CRM&name=kept`, { ust }))
    if (kept.found === true) assert.equal(kept.value, 'v')
    assert.equal(assertOk(await call(base, 'GET', '/readyz')).store, 'redis')
    t.diagnostic(`503 while frozen: ${Math.min(...times).toFixed(0)}-${Math.max(...times).toFixed(0)} ms (command timeout ${COMMAND_TIMEOUT_MS} ms); recovered ${recoveredIn.toFixed(0)} ms after SIGCONT`)
  })
})
