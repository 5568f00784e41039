import assert from 'node:assert/strict'
import { randomBytes, randomUUID } from 'node:crypto'
import { after, before, describe, test } from 'node:test'
import type { Cluster, Redis } from 'ioredis'
import type { Config } from '../../src/config.ts'
import { userIdOf } from '../../src/ust.ts'
import { RedisCluster } from '../fixtures/cluster.ts'
import { RedisServer } from '../fixtures/redis.ts'
import { mintUst, TEST_ISSUER } from '../helper.ts'
import { assertOk, call, listen } from './http.ts'
import { slotOf } from './load.ts'

// User attributes end to end: the service listening on a real socket, on the embedded store,
// on a real redis-server and on a real 3-master Redis Cluster. Two sessions of one user share
// the attributes; an ended session's UST is refused while the attributes stay; a super-user
// reaches another user's through target_user (Zato: user_id) and erases them with DELETE /sso/user.

const P = '/sso/user/attr'
const SUPER_USER = 'sso:super-user'

async function ust (sub: string, roles?: string[]): Promise<string> {
  return await mintUst({ sub, sid: randomUUID(), ...(roles !== undefined ? { roles } : {}) })
}

function refused (reply: { status: number, body?: { sub_status?: string[] } | undefined, text: string }, status: number, code: string): void {
  assert.equal(reply.status, status, reply.text)
  assert.deepEqual(reply.body?.sub_status, [code])
}

/** The user-attribute walk over HTTP; returns the subject whose attributes are left in the store. */
async function userAttributesOverHttp (base: string): Promise<string> {
  const sub = `u-${randomBytes(4).toString('hex')}`
  const first = await ust(sub)
  const second = await ust(sub)
  assertOk(await call(base, 'PUT', P, { ust: first, body: { current_app: 'CRM', data: [{ name: 'theme', value: 'dark', expiration: 3600 }, { name: 'card', value: '4111', encrypt: true }] } }), 'PUT batch')
  assertOk(await call(base, 'POST', P, { ust: first, body: { current_app: 'CRM', name: 'lang', value: 'fr', expiration: 3600 } }), 'POST')
  assert.equal(assertOk(await call(base, 'PATCH', P, { ust: second, body: { current_app: 'CRM', name: 'lang', value: 'de', if_version: 1 } })).version, 2)
  const card = assertOk(await call(base, 'GET', `${P}?current_app=CRM&name=card`, { ust: second }), 'GET from the other session')
  assert.deepEqual([card.value, card.is_encrypted], ['4111', true])
  assert.deepEqual(assertOk(await call(base, 'GET', `${P}/exists?current_app=CRM&data=theme&data=nope`, { ust: second })).result, { theme: true, nope: false })
  assert.deepEqual(assertOk(await call(base, 'GET', `${P}/names?current_app=CRM`, { ust: second })).result, ['card', 'lang', 'theme'])
  assert.equal(assertOk(await call(base, 'GET', `${P}?current_app=CRM&name=theme`, { ust: await ust('someone-else') })).found, false)

  // The first session ends: its UST is refused everywhere, the attributes stay for the second.
  assertOk(await call(base, 'DELETE', '/sso/session', { ust: first, body: { current_app: 'CRM' } }), 'end the first session')
  refused(await call(base, 'GET', `${P}?current_app=CRM&name=theme`, { ust: first }), 401, 'E007001')
  refused(await call(base, 'PUT', P, { ust: first, body: { current_app: 'CRM', name: 'theme', value: 'x' } }), 401, 'E007001')
  assert.equal(assertOk(await call(base, 'GET', `${P}?current_app=CRM&name=theme`, { ust: second })).value, 'dark')

  // A super-user: target_user here, user_id on the Zato path; anyone else: 403.
  const root = await ust('root', [SUPER_USER])
  assert.equal(assertOk(await call(base, 'GET', `${P}?current_app=CRM&target_user=${sub}&name=lang`, { ust: root })).value, 'de')
  assertOk(await call(base, 'DELETE', `/zato${P}?current_app=CRM&user_id=${sub}&name=lang`, { ust: root }), 'Zato DELETE')
  refused(await call(base, 'GET', `${P}?current_app=CRM&target_user=${sub}&name=theme`, { ust: await ust('mallory') }), 403, 'E005001')
  assert.deepEqual(assertOk(await call(base, 'GET', `${P}/names?current_app=CRM`, { ust: second })).result, ['card', 'theme'])
  return sub
}

async function eraseOverHttp (base: string, sub: string): Promise<void> {
  const root = await ust('root', [SUPER_USER])
  refused(await call(base, 'DELETE', '/sso/user', { ust: await ust(sub), body: { current_app: 'CRM' } }), 403, 'E005001')
  const erased = assertOk(await call(base, 'DELETE', '/sso/user', { ust: root, body: { current_app: 'CRM', target_user: sub } }))
  assert.equal((erased as { erased?: number }).erased, 2)
  assert.deepEqual(assertOk(await call(base, 'GET', `${P}/names?current_app=CRM`, { ust: await ust(sub) })).result, [])
}

describe('user attributes over a real socket', () => {
  test('on the embedded store', async (t) => {
    const { base } = await listen(t, { SSO_STORE: 'memory' })
    await eraseOverHttp(base, await userAttributesOverHttp(base))
  })

  describe('on a real redis-server', () => {
    let redis: RedisServer
    before(async () => { redis = await RedisServer.start() })
    after(async () => { await redis.close() })

    test('keys in the user\'s slot, each with the user idle TTL; erased by DELETE /sso/user', async (t) => {
      const prefix = `e2e-u-${randomBytes(4).toString('hex')}:`
      const { base } = await listen(t, { SSO_STORE: 'redis', REDIS_URL: redis.url, SSO_KEY_PREFIX: prefix, SSO_USER_ATTR_IDLE_TTL: 600 })
      const sub = await userAttributesOverHttp(base)
      const client = redis.client()
      t.after(() => { client.disconnect() })
      await checkUserKeys(client, prefix, sub, 600_000)
      await eraseOverHttp(base, sub)
      assert.equal(await client.exists(`${prefix}{u:${userIdOf(TEST_ISSUER, sub)}}:a`, `${prefix}{u:${userIdOf(TEST_ISSUER, sub)}}:x`), 0)
    })
  })

  describe('on a real Redis Cluster', () => {
    let cluster: RedisCluster
    before(async () => { cluster = await RedisCluster.start() })
    after(async () => { await cluster.close() })

    test('the same walk; the user\'s keys share one slot', { timeout: 30_000 }, async (t) => {
      const prefix = `e2e-uc-${randomBytes(4).toString('hex')}:`
      const config: Partial<Config> = { SSO_STORE: 'redis', REDIS_CLUSTER_NODES: cluster.seeds, REDIS_COMMAND_TIMEOUT_MS: 1000, SSO_KEY_PREFIX: prefix }
      const { base } = await listen(t, config)
      const deadline = Date.now() + 10_000
      while ((await call(base, 'GET', '/readyz')).status !== 200 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 50))
      const sub = await userAttributesOverHttp(base)
      const client = cluster.client()
      t.after(() => { client.disconnect() })
      await checkUserKeys(client, prefix, sub, 400 * 86_400_000)
      await eraseOverHttp(base, sub)
    })
  })
})

/** Both attribute keys of the user exist, in the user's hash slot, with a TTL within the idle window. */
async function checkUserKeys (client: Redis | Cluster, prefix: string, sub: string, idleMs: number): Promise<void> {
  const tag = `u:${userIdOf(TEST_ISSUER, sub)}`
  for (const key of [`${prefix}{${tag}}:a`, `${prefix}{${tag}}:x`]) {
    assert.equal(slotOf(key), slotOf(tag), key)
    const ttl = await client.pttl(key)
    assert.ok(ttl > idleMs - 60_000 && ttl <= idleMs, `${key}: PTTL ${ttl}`)
  }
}
