import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { describe, test } from 'node:test'
import { OPENAPI_PATH, renderOpenapi } from '../scripts/openapi.ts'
import { build } from './helper.ts'

describe('openapi.yaml', () => {
  test('is what the route schemas generate (run npm run openapi when this fails)', async () => {
    assert.equal(readFileSync(OPENAPI_PATH, 'utf8'), await renderOpenapi())
  })

  test('is generated the same way twice', async () => {
    assert.equal(await renderOpenapi(), await renderOpenapi())
  })

  test('is OpenAPI 3.1 with every attribute operation, once, and the bearer scheme', async (t) => {
    const app = await build(t)
    const document = app.swagger() as unknown as {
      openapi: string
      paths: Record<string, Record<string, { operationId?: string, security?: unknown[] }>>
      components: { securitySchemes: Record<string, { type: string, scheme: string }> }
      'x-aliases': Array<{ path: string, of: string, methods: string[] }>
    }
    assert.match(document.openapi, /^3\.1\./)
    const bearer = document.components.securitySchemes.bearerAuth
    assert.ok(bearer !== undefined, 'components.securitySchemes.bearerAuth')
    assert.equal(bearer.type, 'http')
    assert.equal(bearer.scheme, 'bearer')
    const expected: Record<string, string[]> = {
      '/sso/session/attr': ['delete', 'get', 'patch', 'post', 'put'],
      '/sso/session/attr/exists': ['get'],
      '/sso/session/attr/names': ['get']
    }
    for (const [path, methods] of Object.entries(expected)) {
      const item = document.paths[path]
      assert.ok(item !== undefined, `${path} is documented`)
      assert.deepEqual(Object.keys(item).sort(), methods, path)
      for (const method of methods) {
        const bodyless = method === 'get' || method === 'delete'
        assert.deepEqual(item[method]!.security, bodyless ? [{ bearerAuth: [] }] : [{ bearerAuth: [] }, {}], `${method} ${path} names bearerAuth`)
      }
      assert.equal(document.paths[`/zato${path}`], undefined, `/zato${path} is not documented a second time`)
      assert.deepEqual(document['x-aliases'].find((alias) => alias.of === path), { path: `/zato${path}`, of: path, methods }, `/zato${path} is listed as an alias`)
    }
  })

  test('is what a service on another configuration serves at /openapi.json', async (t) => {
    const app = await build(t)
    assert.equal(app.swagger({ yaml: true }), readFileSync(OPENAPI_PATH, 'utf8'))
    const served = await app.inject({ method: 'GET', url: '/openapi.json' })
    assert.equal(served.statusCode, 200)
    assert.deepEqual(served.json(), JSON.parse(JSON.stringify(app.swagger())))
  })
})
