import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import { build, mintUst } from './helper.ts'

describe('smoke', () => {
  test('PUT then GET a value through the canonical path', async (t) => {
    const app = await build(t)
    const ust = await mintUst()
    const put = await app.inject({ method: 'PUT', url: '/sso/session/attr', headers: { authorization: `Bearer ${ust}` }, payload: { current_app: 'CRM', name: 'theme', value: 'dark' } })
    assert.equal(put.statusCode, 200, put.body)
    const get = await app.inject({ method: 'GET', url: '/sso/session/attr?current_app=CRM&name=theme', headers: { authorization: `Bearer ${ust}` } })
    assert.equal(get.statusCode, 200, get.body)
    assert.equal(get.json().value, 'dark')
    assert.equal(get.json().version, 1)
  })
})
