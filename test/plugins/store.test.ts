import assert from 'node:assert/strict'
import { randomUUID } from 'node:crypto'
import { describe, test } from 'node:test'
import { setTimeout as sleep } from 'node:timers/promises'
import type { AttributeEvent } from '../../src/events/types.ts'
import { sessionOwner } from '../../src/store/types.ts'
import { sessionIdOf } from '../../src/ust.ts'
import { RedisServer } from '../fixtures/redis.ts'
import { build, mintUst, TEST_ISSUER } from '../helper.ts'

describe('store plugin: app.eventFeed', () => {
  test('a REST write, a delete and a logout reach a subscriber of the session through app.eventFeed', async (t) => {
    const app = await build(t)
    const sid = randomUUID()
    const ust = await mintUst({ sid })
    const events: AttributeEvent[] = []
    const subscription = await app.eventFeed.subscribe(sessionOwner(sessionIdOf(TEST_ISSUER, sid)), { onEvent: (event) => { events.push(event) } })
    t.after(() => { subscription.close() })
    const headers = { authorization: `Bearer ${ust}` }
    const put = await app.inject({ method: 'PUT', url: '/sso/session/attr', headers, payload: { current_app: 'CRM', name: 'theme', value: 'dark' } })
    assert.equal(put.statusCode, 200, put.body)
    const encrypted = await app.inject({ method: 'PUT', url: '/sso/session/attr', headers, payload: { current_app: 'CRM', name: 'key', value: 'secret', encrypt: true } })
    assert.equal(encrypted.statusCode, 200, encrypted.body)
    const deleted = await app.inject({ method: 'DELETE', url: '/sso/session/attr', headers, payload: { current_app: 'CRM', name: 'theme' } })
    assert.equal(deleted.statusCode, 200, deleted.body)
    const logout = await app.inject({ method: 'DELETE', url: '/sso/session', headers, payload: { current_app: 'CRM' } })
    assert.ok(logout.statusCode < 300, logout.body)
    for (let waited = 0; events.length < 4 && waited < 2_000; waited += 10) await sleep(10)
    assert.deepEqual(events.map((event) => [event.kind, event.name]), [['added', 'theme'], ['added', 'key'], ['removed', 'theme'], ['ended', undefined]])
    assert.equal(events[0]?.payload, '"dark"')
    assert.equal(events[1]?.encrypted, true)
    assert.equal(events[1]?.payload, undefined, 'neither the value nor its ciphertext')
  })

  test('with the near cache on (SSO_NEAR_CACHE=on, on Redis), writes still reach app.eventFeed', async (t) => {
    const redis = await RedisServer.start()
    t.after(() => redis.stop())
    const app = await build(t, { REDIS_URL: redis.url, SSO_STORE: 'redis', SSO_NEAR_CACHE: 'on' })
    const sid = randomUUID()
    const headers = { authorization: `Bearer ${await mintUst({ sid })}` }
    const events: AttributeEvent[] = []
    const subscription = await app.eventFeed.subscribe(sessionOwner(sessionIdOf(TEST_ISSUER, sid)), { onEvent: (event) => { events.push(event) } })
    t.after(() => { subscription.close() })
    const put = await app.inject({ method: 'PUT', url: '/sso/session/attr', headers, payload: { current_app: 'CRM', name: 'theme', value: 'dark' } })
    assert.equal(put.statusCode, 200, put.body)
    for (let waited = 0; events.length < 1 && waited < 2_000; waited += 10) await sleep(10)
    assert.deepEqual(events.map((event) => [event.kind, event.name, event.payload]), [['added', 'theme', '"dark"']])
  })

  test('closing the app closes the feed: subscribing afterwards is refused', async () => {
    const app = await build(undefined)
    const feed = app.eventFeed
    await app.close()
    await assert.rejects(feed.subscribe(sessionOwner('x'), { onEvent: () => {} }))
  })
})
