import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'
import { sessionIdOf } from '../../src/ust.ts'
import { freePort, RedisServer } from '../fixtures/redis.ts'
import { build, mintUst, TEST_ISSUER } from '../helper.ts'

type App = Awaited<ReturnType<typeof build>>

interface Sample { name: string, labels: Record<string, string>, value: number }

/** The Prometheus text format, as a scraper reads it (HELP/TYPE comments skipped). */
function parse (text: string): Sample[] {
  const samples: Sample[] = []
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue
    const match = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line)
    assert.ok(match !== null, `a sample line: ${line}`)
    const labels: Record<string, string> = {}
    for (const [, key, value] of match[2]?.matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g) ?? []) labels[key!] = value!
    samples.push({ name: match[1]!, labels, value: Number(match[3]) })
  }
  return samples
}

/** Sum of the samples of `name` whose labels include `labels`. */
function total (text: string, name: string, labels: Record<string, string> = {}): number {
  return parse(text)
    .filter((sample) => sample.name === name && Object.entries(labels).every(([key, value]) => sample.labels[key] === value))
    .reduce((sum, sample) => sum + sample.value, 0)
}

async function scrape (app: App): Promise<string> {
  const response = await app.inject({ method: 'GET', url: '/metrics' })
  assert.equal(response.statusCode, 200)
  assert.match(String(response.headers['content-type']), /^text\/plain; version=0\.0\.4/)
  return response.body
}

const bearer = (ust: string) => ({ authorization: `Bearer ${ust}` })

describe('GET /metrics', () => {
  test('is Prometheus text with the service metrics and the process metrics, and is not in the OpenAPI document', async (t) => {
    const app = await build(t)
    const text = await scrape(app)
    for (const name of [
      'sso_attrs_http_requests_total', 'sso_attrs_http_request_duration_seconds', 'sso_attrs_store_command_duration_seconds',
      'sso_attrs_token_cache_lookups_total', 'sso_attrs_attributes_written_total', 'sso_attrs_attributes_encrypted_total',
      'sso_attrs_attributes_expiring_total', 'process_cpu_seconds_total', 'nodejs_eventloop_lag_seconds'
    ]) assert.match(text, new RegExp(`^# HELP ${name} `, 'm'), name)
    assert.equal(total(text, 'sso_attrs_token_cache_lookups_total', { result: 'hit' }), 0)
    const document = app.swagger() as { paths: Record<string, unknown> }
    assert.equal(document.paths['/metrics'], undefined)
  })

  test('counts requests by operation, status, sub_status and app, with a latency histogram', async (t) => {
    const app = await build(t)
    const ust = await mintUst()
    const put = await app.inject({ method: 'PUT', url: '/sso/session/attr', headers: bearer(ust), payload: { current_app: 'CRM', name: 'theme', value: 'dark' } })
    assert.equal(put.statusCode, 200)
    const conflict = await app.inject({ method: 'POST', url: '/sso/session/attr', headers: bearer(ust), payload: { current_app: 'CRM', name: 'theme', value: 'light' } })
    assert.equal(conflict.statusCode, 409)
    const badInput = await app.inject({ method: 'PUT', url: '/sso/session/attr', headers: bearer(ust), payload: { current_app: 'Portal', name: 'x', value: 1, expiration: 'soon' } })
    assert.equal(badInput.statusCode, 400)
    const noToken = await app.inject({ method: 'GET', url: '/sso/session/attr/names?current_app=CRM', headers: bearer('not-a-token') })
    assert.equal(noToken.statusCode, 401)
    await app.inject({ method: 'GET', url: '/no/such/route' })

    const text = await scrape(app)
    const requests = 'sso_attrs_http_requests_total'
    assert.equal(total(text, requests, { operation: 'setAttributes', status: '200', sub_status: 'none', app: 'CRM' }), 1)
    assert.equal(total(text, requests, { operation: 'createAttributes', status: '409', sub_status: 'E009001', app: 'CRM' }), 1)
    assert.equal(total(text, requests, { operation: 'setAttributes', status: '400', sub_status: 'E008002', app: 'Portal' }), 1)
    assert.equal(total(text, requests, { operation: 'attributeNames', status: '401', app: 'CRM' }), 1)
    assert.equal(total(text, requests, { operation: 'unmatched', status: '404', sub_status: 'E008001', app: 'none' }), 1)
    assert.equal(total(text, 'sso_attrs_http_request_duration_seconds_count', { operation: 'setAttributes' }), 2)
    assert.equal(total(text, 'sso_attrs_http_request_duration_seconds_bucket', { operation: 'setAttributes', status: '200', le: '+Inf' }), 1)
    assert.ok(total(text, 'sso_attrs_http_request_duration_seconds_sum', { operation: 'setAttributes', status: '200' }) > 0)
  })

  test('an app that is not configured is labelled "other", never by the name the client sent', async (t) => {
    const app = await build(t)
    const response = await app.inject({ method: 'GET', url: '/sso/session/attr/names?current_app=Unlisted-App-7f3a', headers: bearer(await mintUst()) })
    assert.equal(response.statusCode, 403)
    const text = await scrape(app)
    assert.equal(total(text, 'sso_attrs_http_requests_total', { operation: 'attributeNames', status: '403', app: 'other' }), 1)
    assert.doesNotMatch(text, /Unlisted-App-7f3a/)
  })

  test('counts attributes written, encrypted and written with an expiry', async (t) => {
    const app = await build(t)
    const ust = await mintUst()
    const batch = await app.inject({
      method: 'PUT',
      url: '/sso/session/attr',
      headers: bearer(ust),
      payload: { current_app: 'CRM', data: [{ name: 'a', value: 1, encrypt: true, expiration: 60 }, { name: 'b', value: 2 }, { name: 'c', value: 3, expiration: 60 }] }
    })
    assert.equal(batch.statusCode, 200)
    const refused = await app.inject({ method: 'POST', url: '/sso/session/attr', headers: bearer(ust), payload: { current_app: 'CRM', name: 'a', value: 9, encrypt: true } })
    assert.equal(refused.statusCode, 409)
    // Without encrypt, the encrypted "a" stays encrypted: the store asks for the ciphertext
    // (a refused call), the service retries with it. Counted as written only.
    const inherit = await app.inject({ method: 'PUT', url: '/sso/session/attr', headers: bearer(ust), payload: { current_app: 'CRM', name: 'a', value: 5 } })
    assert.equal(inherit.statusCode, 200)

    const text = await scrape(app)
    assert.equal(total(text, 'sso_attrs_attributes_written_total'), 4)
    assert.equal(total(text, 'sso_attrs_attributes_encrypted_total'), 1)
    assert.equal(total(text, 'sso_attrs_attributes_expiring_total'), 3)
    assert.equal(total(text, 'sso_attrs_store_command_duration_seconds_count', { store: 'memory', command: 'write', outcome: 'ok' }), 2)
    assert.equal(total(text, 'sso_attrs_store_command_duration_seconds_count', { store: 'memory', command: 'write', outcome: 'refused' }), 2)
    assert.equal(total(text, 'sso_attrs_store_command_duration_seconds_count', { outcome: 'error' }), 0)
  })

  test('counts token-cache misses and hits', async (t) => {
    const app = await build(t)
    const ust = await mintUst()
    for (let i = 0; i < 3; i++) {
      const response = await app.inject({ method: 'GET', url: '/sso/session/attr/names?current_app=CRM', headers: bearer(ust) })
      assert.equal(response.statusCode, 200)
    }
    const text = await scrape(app)
    assert.equal(total(text, 'sso_attrs_token_cache_lookups_total', { result: 'miss' }), 1)
    assert.equal(total(text, 'sso_attrs_token_cache_lookups_total', { result: 'hit' }), 2)
  })

  test('never shows an attribute name, a token, a subject or a session id', async (t) => {
    const app = await build(t)
    const sid = 'sid-5b0e2c1d-metrics'
    const subject = 'subject-9c41-metrics'
    const name = 'attribute-name-e1f7-metrics'
    const ust = await mintUst({ sub: subject, sid })
    const headers = bearer(ust)
    await app.inject({ method: 'PUT', url: '/sso/session/attr', headers, payload: { current_app: 'CRM', name, value: 'v', encrypt: true } })
    await app.inject({ method: 'GET', url: `/sso/session/attr?current_app=CRM&name=${name}`, headers })
    await app.inject({ method: 'PATCH', url: '/sso/session/attr', headers, payload: { current_app: 'CRM', name, value: 'w', if_version: 7 } })
    await app.inject({ method: 'DELETE', url: `/sso/session/attr?current_app=CRM&name=${name}`, headers })
    await app.inject({ method: 'GET', url: `/no/${name}/${sid}` })
    await app.inject({ method: 'PUT', url: '/zato/sso/session/attr', payload: { current_app: 'CRM', current_ust: ust, name, value: 1 } })

    const text = await scrape(app)
    assert.ok(total(text, 'sso_attrs_http_requests_total') >= 6, 'the requests were counted')
    for (const secret of [name, ust, ust.split('.')[1]!, sid, subject, sessionIdOf(TEST_ISSUER, sid)]) {
      assert.ok(!text.includes(secret), `the metrics do not contain ${secret.slice(0, 24)}`)
    }
    const labelValues = new Set(parse(text).flatMap((sample) => Object.values(sample.labels)))
    for (const value of labelValues) assert.doesNotMatch(value, /metrics|eyJ/, `label value ${value}`)
  })

  test('with METRICS_ENABLED=false there is no /metrics and no metrics object', async (t) => {
    const app = await build(t, { METRICS_ENABLED: false })
    assert.equal(app.metrics, null)
    const response = await app.inject({ method: 'GET', url: '/metrics' })
    assert.equal(response.statusCode, 404)
    assert.equal(response.json().sub_status[0], 'E008001')
  })

  test('with METRICS_PORT set, metrics are served there and not on the API port', async (t) => {
    const port = await freePort()
    const app = await build(t, { METRICS_PORT: port })
    await app.listen({ host: '127.0.0.1', port: 0 })
    const api = (app.server.address() as { port: number }).port
    assert.equal((await fetch(`http://127.0.0.1:${api}/metrics`)).status, 404)
    await fetch(`http://127.0.0.1:${api}/healthz`)

    const response = await fetch(`http://127.0.0.1:${port}/metrics`)
    assert.equal(response.status, 200)
    assert.match(String(response.headers.get('content-type')), /^text\/plain; version=0\.0\.4/)
    assert.equal(total(await response.text(), 'sso_attrs_http_requests_total', { operation: 'liveness', status: '200' }), 1)
    assert.equal((await fetch(`http://127.0.0.1:${port}/healthz`)).status, 404)
  })

  test('a METRICS_PORT that is taken fails the start', async (t) => {
    const port = await freePort()
    await build(t, { METRICS_PORT: port })
    await assert.rejects(build(t, { METRICS_PORT: port }), /EADDRINUSE/)
  })
})

describe('GET /metrics on the Redis store', () => {
  let redis: RedisServer
  before(async () => { redis = await RedisServer.start() })
  after(async () => { await redis.close() })

  test('times Redis calls by command and outcome; a Redis outage is an error outcome and a 503 E011003', async (t) => {
    const app = await build(t, { SSO_STORE: 'redis', REDIS_URL: redis.url, REDIS_COMMAND_TIMEOUT_MS: 200, REDIS_CONNECT_TIMEOUT_MS: 200 })
    const ust = await mintUst()
    const put = await app.inject({ method: 'PUT', url: '/sso/session/attr', headers: bearer(ust), payload: { current_app: 'CRM', name: 'n', value: 1 } })
    assert.equal(put.statusCode, 200)
    const get = await app.inject({ method: 'GET', url: '/sso/session/attr?current_app=CRM&name=n', headers: bearer(ust) })
    assert.equal(get.statusCode, 200)
    await redis.stop()
    const down = await app.inject({ method: 'GET', url: '/sso/session/attr?current_app=CRM&name=n', headers: bearer(ust) })
    assert.equal(down.statusCode, 503)

    const text = await scrape(app)
    const store = 'sso_attrs_store_command_duration_seconds_count'
    assert.equal(total(text, store, { store: 'redis', command: 'write', outcome: 'ok' }), 1)
    assert.equal(total(text, store, { store: 'redis', command: 'get', outcome: 'ok' }), 1)
    // The first call of the request to reach the stopped Redis fails it (a rate-limit count or the read).
    assert.equal(total(text, store, { store: 'redis', outcome: 'error' }), 1)
    assert.equal(total(text, 'sso_attrs_http_requests_total', { operation: 'getAttributes', status: '503', sub_status: 'E011003' }), 1)
    await redis.restart()
  })
})
