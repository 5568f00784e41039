import assert from 'node:assert/strict'
import { randomUUID } from 'node:crypto'
import { createRequire } from 'node:module'
import type { TestContext } from 'node:test'
import { setTimeout as sleep } from 'node:timers/promises'
import { sessionIdOf } from '../../src/ust.ts'
import { mintUst, TEST_ISSUER } from '../helper.ts'
import { assertError, assertOk, call, type Reply } from './http.ts'

// What the topology suites share: the API walked through once over HTTP, and a steady load of
// writes and reads across many sessions that records every answer, for the failover tests.

const P = '/sso/session/attr'

export interface Session {
  sid: string
  ust: string
  /** The id the service derives from the token (its keys' hash tag). */
  id: string
}

export async function sessions (count: number): Promise<Session[]> {
  return await Promise.all(Array.from({ length: count }, async () => {
    const sid = randomUUID()
    return { sid, ust: await mintUst({ sid }), id: sessionIdOf(TEST_ISSUER, sid) }
  }))
}

// ioredis computes cluster slots with cluster-key-slot; the tests use the same function.
export const slotOf = createRequire(import.meta.url)('cluster-key-slot') as (key: string) => number

/** Every operation once, checked: what a topology must serve exactly like a single Redis. */
export async function walkThroughApi (base: string, ust: string): Promise<void> {
  const put = assertOk(await call(base, 'PUT', P, { ust, body: { current_app: 'CRM', name: 'theme', value: 'dark' } }), 'PUT')
  assert.equal(put.version, 1)
  const got = assertOk(await call(base, 'GET', `${P}?current_app=CRM&name=theme`, { ust }), 'GET')
  assert.equal(got.value, 'dark')
  assert.equal(assertOk(await call(base, 'PATCH', P, { ust, body: { current_app: 'CRM', name: 'theme', value: 'light', if_version: 1 } }), 'PATCH').version, 2)
  assertError(await call(base, 'PATCH', P, { ust, body: { current_app: 'CRM', name: 'theme', value: 'x', if_version: 1 } }), 409, 'E011005', 'stale if_version')
  assertError(await call(base, 'POST', P, { ust, body: { current_app: 'CRM', name: 'theme', value: 'x' } }), 409, 'E009001', 'create of an existing name')
  const batch = assertOk(await call(base, 'PUT', P, {
    ust,
    body: { current_app: 'CRM', expiration: 600, data: [{ name: 'a', value: [1, 2] }, { name: 'b', value: { k: 'v' }, encrypt: true }, { name: 'c', value: null, expiration: null }] }
  }), 'batch PUT')
  assert.deepEqual(Object.keys(batch.result as object).sort(), ['a', 'b', 'c'])
  const many = assertOk(await call(base, 'GET', `${P}?current_app=CRM&data=a&data=b&data=missing`, { ust }), 'batch GET').result as Record<string, { found: boolean, value?: unknown, is_encrypted?: boolean }>
  assert.deepEqual(many.a?.value, [1, 2])
  assert.deepEqual(many.b?.value, { k: 'v' })
  assert.equal(many.b?.is_encrypted, true)
  assert.equal(many.missing?.found, false)
  assert.deepEqual(assertOk(await call(base, 'GET', `${P}/exists?current_app=CRM&data=a&data=zz`, { ust }), 'exists').result, { a: true, zz: false })
  assert.deepEqual(assertOk(await call(base, 'GET', `${P}/names?current_app=CRM`, { ust }), 'names').result, ['a', 'b', 'c', 'theme'])
  assert.equal(assertOk(await call(base, 'DELETE', `${P}?current_app=CRM&name=a`, { ust }), 'DELETE').deleted, true)
  assert.deepEqual(assertOk(await call(base, 'GET', `${P}/names?current_app=CRM`, { ust }), 'names after DELETE').result, ['b', 'c', 'theme'])
  assert.equal(assertOk(await call(base, 'GET', '/readyz'), '/readyz').store, 'redis')
}

/**
 * Two instances on the same data: each write is read through the other at once, and
 * if_version updates raced through both let exactly one win every time.
 */
export async function checkTwoInstances (one: string, two: string): Promise<void> {
  const all = await sessions(12)
  for (const [index, { ust }] of all.entries()) {
    const [writer, reader] = index % 2 === 0 ? [one, two] : [two, one]
    assertOk(await call(writer, 'PUT', P, { ust, body: { current_app: 'CRM', name: 'x', value: index } }), 'PUT')
    const got = assertOk(await call(reader, 'GET', `${P}?current_app=CRM&name=x`, { ust }), 'GET through the other instance')
    assert.equal(got.value, index)
    assert.equal(got.version, 1)
  }
  for (const [index, { ust }] of all.entries()) {
    const replies = await Promise.all([one, two].map(async (base, from) => await call(base, 'PATCH', P, { ust, body: { current_app: 'CRM', name: 'x', value: `from ${from}`, if_version: 1 } })))
    assert.equal(replies.filter((reply) => reply.status === 200).length, 1, `session ${index}: ${replies.map((reply) => reply.text).join(' / ')}`)
    assertError(replies.find((reply) => reply.status !== 200)!, 409, 'E011005', 'the loser of the race')
    const winner = replies.findIndex((reply) => reply.status === 200)
    const seen = assertOk(await call(index % 2 === 0 ? two : one, 'GET', `${P}?current_app=CRM&name=x`, { ust }))
    assert.equal(seen.version, 2)
    assert.equal(seen.value, `from ${winner}`)
  }
  const { ust } = all[0]!
  assertError(await call(two, 'DELETE', `${P}?current_app=CRM&name=x&if_version=1`, { ust }), 409, 'E011005', 'delete with the old version')
  assert.equal(assertOk(await call(one, 'DELETE', `${P}?current_app=CRM&name=x&if_version=2`, { ust })).deleted, true)
  assert.equal(assertOk(await call(two, 'GET', `${P}?current_app=CRM&name=x`, { ust })).found, false)
}

export interface Answer {
  session: number
  method: 'PUT' | 'GET'
  /** performance.now() at send and at the end of the answer. */
  sentAt: number
  doneAt: number
  reply: Reply
}

export interface Load {
  answers: Answer[]
  stop: () => Promise<Answer[]>
}

/**
 * Workers that each write then read one session after another until stopped; every answer is
 * kept. A failed request is followed by a 20 ms pause (as a client backing off would).
 */
export function steadyLoad (base: string, all: Session[], workers = 6): Load {
  const answers: Answer[] = []
  const stop = new AbortController()
  const worker = async (index: number) => {
    for (let round = 0; !stop.signal.aborted; round++) {
      const session = (index + round * workers) % all.length
      const { ust } = all[session]!
      const method = round % 2 === 0 ? 'PUT' : 'GET'
      const sentAt = performance.now()
      const reply = method === 'PUT'
        ? await call(base, 'PUT', P, { ust, body: { current_app: 'CRM', name: 'load', value: round } })
        : await call(base, 'GET', `${P}?current_app=CRM&name=load`, { ust })
      answers.push({ session, method, sentAt, doneAt: performance.now(), reply })
      if (reply.status !== 200) await sleep(20)
    }
  }
  const running = Promise.all(Array.from({ length: workers }, async (_, index) => { await worker(index) }))
  return {
    answers,
    stop: async () => {
      stop.abort()
      await running
      return answers
    }
  }
}

export interface FailoverFigures {
  requests: number
  failed: number
  /** From the first failed request's send to the last failed request's answer (0: none failed). */
  windowMs: number
  /** The slowest answer of the run, failed or not. */
  slowestMs: number
}

/**
 * Checks the answers of a load run through a failover: each one a 200 or a 503 E011003 within
 * `boundMs`, failures only after the fault, and successes again before the end.
 */
export function failoverFigures (t: TestContext, answers: Answer[], faultAt: number, boundMs: number): FailoverFigures {
  const failed = answers.filter((answer) => answer.reply.status !== 200)
  for (const answer of failed) {
    assertError(answer.reply, 503, 'E011003', `${answer.method} on session ${answer.session} during the failover`)
    assert.equal(answer.reply.headers['retry-after'], '1')
    assert.ok(answer.doneAt >= faultAt - 50, `a request failed ${Math.round(faultAt - answer.doneAt)} ms before the fault`)
  }
  for (const answer of answers.filter((candidate) => candidate.reply.status === 200)) assertOk(answer.reply, `${answer.method} on session ${answer.session}`)
  const slowestMs = Math.max(...answers.map((answer) => answer.reply.ms))
  assert.ok(slowestMs < boundMs, `a request took ${slowestMs.toFixed(0)} ms (bound ${boundMs} ms)`)
  const windowMs = failed.length === 0 ? 0 : Math.max(...failed.map((answer) => answer.doneAt)) - Math.min(...failed.map((answer) => answer.sentAt))
  const lastFailure = Math.max(...failed.map((answer) => answer.doneAt), faultAt)
  assert.ok(answers.some((answer) => answer.sentAt > lastFailure && answer.reply.status === 200), 'requests succeed again after the failover')
  t.diagnostic(`${answers.length} requests, ${failed.length} answered 503 E011003 over a window of ${windowMs.toFixed(0)} ms; slowest answer ${slowestMs.toFixed(0)} ms (bound ${boundMs} ms)`)
  return { requests: answers.length, failed: failed.length, windowMs, slowestMs }
}

/**
 * The first `count` requests to an instance that sat idle through a failover, spread over the
 * sessions: every one must answer 200 (the instance learnt of the promotion by itself).
 */
export async function checkIdleInstance (t: TestContext, base: string, all: Session[], count = 200): Promise<void> {
  const replies = await Promise.all(Array.from({ length: count }, async (_, index) =>
    await call(base, 'GET', `${P}?current_app=CRM&name=kept`, { ust: all[index % all.length]!.ust })))
  const failures = replies.filter((reply) => reply.status !== 200)
  t.diagnostic(`idle instance after the failover: ${replies.length - failures.length} of ${replies.length} answered 200`)
  assert.deepEqual(failures.map((reply) => reply.text), [], 'the idle instance answered every request')
  assert.equal(assertOk(await call(base, 'GET', '/readyz')).store, 'redis')
}
