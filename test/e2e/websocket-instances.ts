import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import type { AddressInfo } from 'node:net'
import type { TestContext } from 'node:test'
import { setTimeout as sleep } from 'node:timers/promises'
import type { App } from '../../src/app.ts'
import type { Config } from '../../src/config.ts'
import { compareEventIds } from '../../src/events/event-log.ts'
import { build, mintUst } from '../helper.ts'
import { RpcClient } from './ws-client.ts'

// Two service instances (two apps on real sockets) on one store: REST writes through A reach a
// WebSocket subscriber on B; B's connection is killed mid-stream twice (the client's socket
// terminated, then every socket on B's server side), the subscriber comes back to B with
// `since` = the last id it saw, and the events are counted: none lost, none duplicated. A
// logout through A then ends B's connection and another's subscription to that session. Run by
// websocket-two-instances.test.ts (one Redis) and websocket-two-instances-cluster.test.ts.

/** Writes in the stream; the kills come after the 30th and the 60th. */
export const WRITES = 90
const KILLS = [30, 60]
/** Writes made while the subscriber is away, before it comes back with `since`. */
const AWAY = 5

interface Instance {
  app: App
  ws: string
  http: string
}

async function listen (t: TestContext, config: Partial<Config>): Promise<Instance> {
  const app = await build(t, config)
  await app.listen({ port: 0, host: '127.0.0.1' })
  const { port } = app.server.address() as AddressInfo
  return { app, ws: `ws://127.0.0.1:${port}/api/current?app=CRM`, http: `http://127.0.0.1:${port}` }
}

async function open (t: TestContext, instance: Instance, ust: string): Promise<RpcClient> {
  const client = await RpcClient.open(instance.ws, { headers: { authorization: `Bearer ${ust}` } })
  t.after(() => client.close())
  return client
}

interface Delivered {
  id: string
  msg: string
  version: number | undefined
}

/** The `collection_update`s of attribute `n` on a connection with one subscription, in order of arrival. */
function collect (client: RpcClient): Delivered[] {
  const delivered: Delivered[] = []
  client.socket.on('message', (data) => {
    const message = JSON.parse(data.toString()) as { method?: string, params?: { id: string, msg: string, fields: { name?: string, version?: number } } }
    const params = message.params
    if (message.method !== 'collection_update' || params === undefined || params.fields.name !== 'n') return
    delivered.push({ id: params.id, msg: params.msg, version: params.fields.version })
  })
  return delivered
}

async function write (instance: Instance, ust: string, body: Record<string, unknown>, method = 'PUT', path = '/sso/session/attr'): Promise<number> {
  const response = await fetch(`${instance.http}${path}`, {
    method,
    headers: { authorization: `Bearer ${ust}`, 'content-type': 'application/json' },
    body: JSON.stringify(body)
  })
  await response.arrayBuffer()
  return response.status
}

export interface StreamCounts {
  writes: number
  delivered: number
  lost: number
  duplicated: number
  replayed: number[]
}

export async function twoInstances (t: TestContext, shared: Partial<Config>): Promise<StreamCounts> {
  const config = { ...shared, SSO_KEY_PREFIX: `wsi-${randomBytes(4).toString('hex')}:` }
  const a = await listen(t, config)
  const b = await listen(t, config)
  const ust = await mintUst({ sub: 'nina' })

  let client = await open(t, b, ust)
  const segments: Delivered[][] = [collect(client)]
  await client.result('core.subscribe', ['session.attr'])
  const replayed: number[] = []
  let lastSeen = ''
  let lastVersion = 0

  for (let version = 1; version <= WRITES; version++) {
    assert.equal(await write(a, ust, { current_app: 'CRM', name: 'n', value: version }), 200)
    const kill = KILLS.indexOf(version)
    if (kill !== -1) {
      // What this connection delivered up to the kill is all it will ever deliver.
      const segment = [...segments.at(-1)!]
      segments[segments.length - 1] = segment
      assert.ok(segment.length > 0, 'events arrived before the kill')
      lastSeen = segment.at(-1)!.id
      lastVersion = segment.at(-1)!.version!
      const closed = client.closed
      if (kill === 0) client.socket.terminate()
      else for (const socket of b.app.websocketServer.clients) socket.terminate()
      await closed
    }
    if (KILLS.includes(version - AWAY)) {
      client = await open(t, b, ust)
      segments.push(collect(client))
      const resumed = await client.result('core.subscribe', ['session.attr', { since: lastSeen }])
      assert.equal(resumed.resync, false)
      // Exactly the writes after the last event seen: every write so far was acknowledged.
      assert.equal(resumed.replayed, version - lastVersion, `replayed after version ${lastVersion}`)
      replayed.push(resumed.replayed as number)
    }
  }
  const last = segments.at(-1)!
  const deadline = Date.now() + 10_000
  while (Date.now() < deadline && last.at(-1)?.version !== WRITES) await sleep(10)
  await sleep(50)

  const all = segments.flat()
  const versions = all.map((event) => event.version!)
  const distinct = new Set(versions).size
  const counts: StreamCounts = { writes: WRITES, delivered: all.length, lost: WRITES - distinct, duplicated: versions.length - distinct, replayed }
  t.diagnostic(`${WRITES} REST writes through A, B's subscriber killed twice and back with since: ${JSON.stringify(counts)}`)
  assert.deepEqual(versions, Array.from({ length: WRITES }, (_, index) => index + 1), 'every version once, in order')
  assert.deepEqual(all.map((event) => event.msg), ['added', ...Array<string>(WRITES - 1).fill('changed')])
  for (let index = 1; index < all.length; index++) assert.ok(compareEventIds(all[index - 1]!.id, all[index]!.id) < 0, 'ids increase')

  // A WebSocket write through A reaches B as well; B reads what A wrote.
  const onA = await open(t, a, ust)
  await onA.result('session.attr.set', ['n', 'over the socket'])
  assert.equal((await client.notification('collection_update', (params) => (params.fields as { value?: unknown }).value === 'over the socket')).msg, 'changed')
  assert.equal((await client.result('session.attr.get', ['n'])).value, 'over the socket')

  // A logout through A: B learns it from the feed's `ended` only (its own lifecycle did nothing).
  const admin = await open(t, b, await mintUst({ sub: 'root', roles: ['sso:super-user'] }))
  const watched = (await admin.result('core.subscribe', ['session.attr', { target_ust: ust }])).id as string
  assert.equal(await write(a, ust, {}, 'DELETE', '/sso/session?current_app=CRM'), 200)
  assert.deepEqual(await client.notification('connection_closing'), { code: 4003, reason: 'session ended' })
  assert.deepEqual(await client.closed, { code: 4003, reason: 'session ended' })
  assert.equal((await admin.notification('collection_update', (params) => params.subscription === watched)).msg, 'ended')
  assert.equal((await admin.notification('notify_unsubscribed')).subscription, watched)
  assert.equal(await admin.result('core.ping'), 'pong')
  // Connections of that session on A closed by A's own lifecycle; B's registry let it go too.
  assert.deepEqual(await onA.closed, { code: 4003, reason: 'session ended' })
  assert.equal(b.app.rpc!.connections.all.size, 1)
  return counts
}
