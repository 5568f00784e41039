import assert from 'node:assert/strict'
import { Writable } from 'node:stream'
import { describe, test, type TestContext } from 'node:test'
import type { InjectOptions } from 'fastify'
import { pino } from 'pino'
import { loggerOptions } from '../../src/app.ts'
import { SignJWT } from 'jose'
import { BACKCHANNEL_LOGOUT_EVENT } from '../../src/logout-token.ts'
import { build, mintUst, TEST_AUDIENCE, TEST_ISSUER, TEST_KEYS, TEST_SECRET, testConfig } from '../helper.ts'

const SECRET_VALUE = 'hunter2-card-4111111111111111'
const PLAIN_VALUE = 'plain-value-7c3e9a'

/** A stream that keeps everything written to it. */
function memoryStream () {
  const chunks: string[] = []
  const stream = new Writable({
    write (chunk: Buffer | string, _encoding, callback) {
      chunks.push(chunk.toString())
      callback()
    }
  })
  return { stream, text: () => chunks.join('') }
}

interface Scenario {
  /** Everything that must not appear in the logs. */
  secrets: string[]
  /** The cid of every request made. */
  cids: string[]
}

type LoggedApp = Awaited<ReturnType<typeof build>>

/** Requests that carry tokens and values in every place a client can put them. */
async function runRequests (app: LoggedApp): Promise<Scenario> {
  const ust = await mintUst({ sub: 'alice' })
  const target = await mintUst({ sub: 'alice' })
  const cids: string[] = []
  const inject = async (options: InjectOptions, expected: number) => {
    const response = await app.inject(options)
    assert.equal(response.statusCode, expected, response.body)
    cids.push(String(response.headers['x-cid']))
    return response
  }
  const bearer = { authorization: `Bearer ${ust}` }
  await inject({ method: 'PUT', url: '/sso/session/attr', headers: bearer, payload: { current_app: 'CRM', target_ust: target, name: 'card', value: SECRET_VALUE, encrypt: true } }, 200)
  await inject({ method: 'PUT', url: '/sso/session/attr', payload: { current_app: 'CRM', current_ust: ust, target_ust: target, name: 'theme', value: PLAIN_VALUE } }, 200)
  const got = await inject({ method: 'GET', url: `/sso/session/attr?current_app=CRM&name=card&target_ust=${target}`, headers: bearer }, 200)
  assert.equal(got.json<{ value: string }>().value, SECRET_VALUE)
  const raw = await inject({ method: 'GET', url: `/zato/sso/session/attr?current_app=CRM&name=card&decrypt=false&target_ust=${target}`, headers: bearer }, 200)
  const ciphertext = raw.json<{ value: string }>().value
  assert.match(ciphertext, /^gcm1\./)
  await inject({ method: 'GET', url: `/sso/session/attr?current_app=CRM&data=card&data=theme&target_ust=${target}`, headers: bearer }, 200)
  await inject({ method: 'DELETE', url: '/zato/sso/session/attr', payload: { current_app: 'CRM', current_ust: ust, target_ust: target, name: 'theme' } }, 200)
  // Rejected requests log their reason: it must not carry the offending input either.
  await inject({ method: 'GET', url: `/sso/session/attr?current_app=CRM&name=card&current_ust=${ust}` }, 400)
  await inject({ method: 'POST', url: '/sso/session/attr', headers: bearer, payload: { current_app: 'CRM', target_ust: target, name: 'card', value: SECRET_VALUE } }, 409)
  await inject({ method: 'PUT', url: '/sso/session/attr', headers: { authorization: `Bearer ${ust}x` }, payload: { current_app: 'CRM', name: 'x', value: SECRET_VALUE } }, 401)
  await inject({ method: 'PUT', url: '/sso/session/attr', headers: bearer, payload: { current_app: 'CRM', name: 'x', value: SECRET_VALUE, colour: PLAIN_VALUE } }, 400)
  await inject({ method: 'GET', url: `/nope?target_ust=${target}`, headers: bearer }, 404)
  // Session end and back-channel logout: the logout token is a credential too.
  const logoutToken = await new SignJWT({ events: { [BACKCHANNEL_LOGOUT_EVENT]: {} }, jti: 'log-test-jti', sub: 'alice' })
    .setProtectedHeader({ alg: 'HS256' }).setIssuer(TEST_ISSUER).setAudience(TEST_AUDIENCE).setIssuedAt().sign(new TextEncoder().encode(TEST_SECRET))
  const form = { 'content-type': 'application/x-www-form-urlencoded' }
  await inject({ method: 'POST', url: '/sso/backchannel-logout', headers: form, payload: `logout_token=${logoutToken}x` }, 400)
  await inject({ method: 'DELETE', url: '/sso/session', headers: bearer, payload: { current_app: 'CRM', target_ust: target } }, 200)
  await inject({ method: 'POST', url: '/sso/backchannel-logout', headers: form, payload: `logout_token=${logoutToken}` }, 200)
  await inject({ method: 'POST', url: '/sso/backchannel-logout', headers: form, payload: `logout_token=${logoutToken}` }, 400)

  const keyMaterial = TEST_KEYS.split(',').map((entry) => entry.split(':')[1]!)
  const secrets = [
    ust, target, `${ust}x`, logoutToken, logoutToken.split('.')[2]!,
    // A token's signature alone is enough to be a leak.
    ust.split('.')[2]!, target.split('.')[2]!,
    SECRET_VALUE, PLAIN_VALUE, ciphertext, ciphertext.split('.')[3]!,
    TEST_SECRET, ...keyMaterial,
    ...keyMaterial.map((key) => Buffer.from(key, 'base64url').toString('hex')),
    ...keyMaterial.map((key) => Buffer.from(key, 'base64url').toString('base64'))
  ]
  return { secrets, cids }
}

function assertClean (log: string, { secrets, cids }: Scenario): void {
  assert.ok(log.length > 0, 'something was logged')
  for (const secret of secrets) {
    assert.equal(log.includes(secret), false, `the log contains ${secret.slice(0, 12)}...`)
  }
  assert.doesNotMatch(log, /eyJ[A-Za-z0-9_-]{10,}/, 'no JWT-looking string in the logs')
  assert.doesNotMatch(log, /gcm1\./, 'no ciphertext in the logs')
  for (const cid of cids) assert.ok(log.includes(cid), `cid ${cid} is in the logs`)
}

function parsedLines (log: string): Array<Record<string, unknown>> {
  return log.trim().split('\n').map((line) => JSON.parse(line) as Record<string, unknown>)
}

async function scenario (t: TestContext, how: 'logger-options' | 'logger-instance') {
  const config = testConfig({ LOG_LEVEL: 'info' })
  const { stream, text } = memoryStream()
  const app = how === 'logger-options'
    ? await build(t, { LOG_LEVEL: 'info' }, { logger: { ...loggerOptions(config), stream } })
    : await build(t, { LOG_LEVEL: 'info' }, { loggerInstance: pino(loggerOptions(config), stream) })
  return { app, text }
}

describe('request logs', () => {
  for (const how of ['logger-options', 'logger-instance'] as const) {
    test(`carry the cid but no UST, value or key material (${how}, level info)`, async (t) => {
      const { app, text } = await scenario(t, how)
      const run = await runRequests(app)
      assertClean(text(), run)
    })
  }

  test('log each request at info with the cid under "cid", the method and a URL without its query string', async (t) => {
    const { app, text } = await scenario(t, 'logger-options')
    const { cids } = await runRequests(app)
    const lines = parsedLines(text())
    for (const cid of cids) {
      const mine = lines.filter((line) => line.cid === cid)
      assert.ok(mine.length >= 2, `incoming and completed lines for ${cid}`)
      assert.ok(mine.every((line) => typeof line.level === 'number' && line.level >= 30), 'logged at info or above')
    }
    const urls = lines
      .map((line) => (line.req as { url?: string } | undefined)?.url)
      .filter((url): url is string => url !== undefined)
    assert.ok(urls.length >= cids.length, 'every incoming request logs its URL')
    assert.ok(urls.some((url) => url === '/sso/session/attr?[redacted]'), JSON.stringify(urls))
    for (const url of urls) assert.doesNotMatch(url, /target_ust=|current_ust=|name=card/)
    const completed = lines.filter((line) => line.res !== undefined)
    assert.ok(completed.some((line) => (line.res as { statusCode?: number }).statusCode === 409))
  })

  test('an unexpected error is logged with its detail (but still no secrets), and the cid', async (t) => {
    const config = testConfig({ LOG_LEVEL: 'info' })
    const { stream, text } = memoryStream()
    const app = await build(t, { LOG_LEVEL: 'info' }, { logger: { ...loggerOptions(config), stream } })
    app.attributes.names = async () => { throw new Error('disk on fire') }
    const ust = await mintUst()
    const response = await app.inject({ method: 'GET', url: '/sso/session/attr/names?current_app=CRM', headers: { authorization: `Bearer ${ust}` } })
    assert.equal(response.statusCode, 500)
    assert.doesNotMatch(response.body, /disk on fire/)
    const log = text()
    assert.match(log, /disk on fire/)
    assert.ok(log.includes(String(response.headers['x-cid'])))
    assert.equal(log.includes(ust), false)
  })
})
