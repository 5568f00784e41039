import assert from 'node:assert/strict'
import { randomUUID } from 'node:crypto'
import { describe, test } from 'node:test'
import type { App } from '../../src/app.ts'
import { sessionOwner } from '../../src/store/types.ts'
import { sessionIdOf } from '../../src/ust.ts'
import { build, mintUst, TEST_ISSUER } from '../helper.ts'

// A key given twice in one JSON object is refused on every route, both prefixes and every content
// type a route parses, before anything else happens: JSON.parse alone would keep the last one.

const ROUTES: Array<{ method: 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE', path: string }> = [
  { method: 'POST', path: '/sso/session/attr' }, { method: 'PATCH', path: '/sso/session/attr' }, { method: 'PUT', path: '/sso/session/attr' },
  { method: 'GET', path: '/sso/session/attr' }, { method: 'DELETE', path: '/sso/session/attr' },
  { method: 'GET', path: '/sso/session/attr/exists' }, { method: 'GET', path: '/sso/session/attr/names' }, { method: 'DELETE', path: '/sso/session' }
]
const ALL_ROUTES = [...ROUTES, ...ROUTES.map((route) => ({ ...route, path: `/zato${route.path}` }))]

async function session () {
  const sid = randomUUID()
  return { ust: await mintUst({ sid }), sessionId: sessionIdOf(TEST_ISSUER, sid) }
}

async function put (app: App, payload: string, contentType = 'application/json', url = '/sso/session/attr') {
  const response = await app.inject({ method: 'PUT', url, payload, headers: { 'content-type': contentType } })
  return { status: response.statusCode, body: response.json<{ status: string, sub_status?: string[], details?: Array<{ path: string }> }>() }
}

describe('duplicate keys in a JSON body', () => {
  test('every route and prefix answers 400 E008002 with the pointer of the repeated key', async (t) => {
    const app = await build(t)
    const { ust } = await session()
    for (const { method, path } of ALL_ROUTES) {
      const payload = `{"current_app":"CRM","current_app":"Portal","current_ust":${JSON.stringify(ust)},"name":"a"}`
      const response = await app.inject({ method, url: path, payload, headers: { 'content-type': 'application/json' } })
      assert.equal(response.statusCode, 400, `${method} ${path}: ${response.body}`)
      const body = response.json<{ status: string, sub_status: string[], details: Array<{ path: string }> }>()
      assert.equal(body.status, 'error')
      assert.deepEqual(body.sub_status, ['E008002'], `${method} ${path}`)
      assert.deepEqual(body.details.map((detail) => detail.path), ['/current_app'], `${method} ${path}`)
    }
  })

  test('{"encrypt":true,"encrypt":false} stores nothing (JSON.parse alone stored the value in clear)', async (t) => {
    const app = await build(t)
    const alice = await session()
    for (const url of ['/sso/session/attr', '/zato/sso/session/attr']) {
      const payload = `{"current_app":"CRM","current_ust":${JSON.stringify(alice.ust)},"name":"secret","value":"s3cr3t","encrypt":true,"encrypt":false}`
      const reply = await put(app, payload, 'application/json', url)
      assert.equal(reply.status, 400, url)
      assert.deepEqual(reply.body.sub_status, ['E008002'])
      assert.deepEqual(reply.body.details?.map((detail) => detail.path), ['/encrypt'])
    }
    assert.deepEqual(await app.store.names(sessionOwner(alice.sessionId)), [])
  })

  test('two current_ust keys: neither session is touched (JSON.parse alone ran the call as the second)', async (t) => {
    const app = await build(t)
    const [first, second] = [await session(), await session()]
    const payload = `{"current_app":"CRM","current_ust":${JSON.stringify(first.ust)},"current_ust":${JSON.stringify(second.ust)},"name":"a","value":1}`
    const reply = await put(app, payload)
    assert.equal(reply.status, 400)
    assert.deepEqual(reply.body.details?.map((detail) => detail.path), ['/current_ust'])
    assert.deepEqual(await app.store.names(sessionOwner(first.sessionId)), [])
    assert.deepEqual(await app.store.names(sessionOwner(second.sessionId)), [])
  })

  test('in a batch item and in a value, with the full pointer; the Zato paths\' other content types too', async (t) => {
    const app = await build(t)
    const alice = await session()
    const token = JSON.stringify(alice.ust)
    const item = `{"current_app":"CRM","current_ust":${token},"data":[{"name":"a","value":1},{"name":"b","value":2,"name":"c"}]}`
    const value = `{"current_app":"CRM","current_ust":${token},"name":"a","value":{"x/y":{"k":1,"k":2}}}`
    for (const [payload, pointer] of [[item, '/data/1/name'], [value, '/value/x~1y/k']] as const) {
      assert.deepEqual((await put(app, payload)).body.details?.map((detail) => detail.path), [pointer])
      for (const contentType of ['application/x-www-form-urlencoded', 'text/plain']) {
        const reply = await put(app, payload, contentType, '/zato/sso/session/attr')
        assert.equal(reply.status, 400, `${contentType} ${pointer}`)
        assert.deepEqual(reply.body.details?.map((detail) => detail.path), [pointer], contentType)
      }
    }
    assert.deepEqual(await app.store.names(sessionOwner(alice.sessionId)), [])
  })
})
