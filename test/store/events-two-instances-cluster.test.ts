import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { after, before, test } from 'node:test'
import { setTimeout as sleep } from 'node:timers/promises'
import type { Redis } from 'ioredis'
import { keySlot } from '../../src/events/redis-feed.ts'
import type { AttributeEvent } from '../../src/events/types.ts'
import { RedisStore } from '../../src/store/redis-store.ts'
import { sessionOwner } from '../../src/store/types.ts'
import { RedisCluster } from '../fixtures/cluster.ts'
import { LIMITS } from './contract.ts'
import { twoInstances } from './events-instances.ts'

let cluster: RedisCluster
before(async () => { cluster = await RedisCluster.start() })
after(async () => { await cluster.close() })

test('two instances on a 3-master Cluster: A\'s writes reach B\'s subscribers on every master; killed subscriber connections lose and repeat nothing', async (t) => {
  const masters: Redis[] = []
  for (const role of await cluster.roles()) if (role.role === 'master') masters.push(cluster.nodeClient(role.port))
  t.after(() => { for (const master of masters) master.disconnect() })
  await twoInstances(t, (keyPrefix) => new RedisStore({
    topology: { kind: 'cluster', nodes: cluster.startupNodes },
    keyPrefix,
    commandTimeoutMs: 2_000,
    connectTimeoutMs: 2_000,
    ...LIMITS
  }), () => masters)
})

/** Moves a slot, with its keys, to another master, as `redis-cli --cluster reshard` does. */
async function migrateSlot (slot: number, toPort: number): Promise<void> {
  const roles = await cluster.roles()
  const masters = roles.filter((role) => role.role === 'master' && !role.failed)
  const source = masters.find((role) => role.slots.some(([from, to]) => slot >= from && slot <= to))!
  const target = masters.find((role) => role.port === toPort)!
  const from = cluster.nodeClient(source.port)
  const to = cluster.nodeClient(target.port)
  try {
    await to.cluster('SETSLOT', slot, 'IMPORTING', source.id)
    await from.cluster('SETSLOT', slot, 'MIGRATING', target.id)
    for (;;) {
      const keys = await from.cluster('GETKEYSINSLOT', slot, 100) as string[]
      if (keys.length === 0) break
      await from.migrate('127.0.0.1', target.port, '', 0, 5_000, 'KEYS', ...keys)
    }
    for (const master of masters) {
      const client = cluster.nodeClient(master.port)
      await client.cluster('SETSLOT', slot, 'NODE', target.id).finally(() => { client.disconnect() })
    }
  } finally {
    from.disconnect()
    to.disconnect()
  }
}

test('a slot migrated to another master: the subscription moves with it and misses nothing', async (t) => {
  const open = (keyPrefix: string) => new RedisStore({
    topology: { kind: 'cluster', nodes: cluster.startupNodes },
    keyPrefix,
    commandTimeoutMs: 2_000,
    connectTimeoutMs: 1_000,
    ...LIMITS
  })
  const prefix = `mv-${Date.now()}:`
  const a = open(prefix)
  const b = open(prefix)
  const feed = b.createEventFeed()
  t.after(async () => {
    await feed.close()
    await a.close()
    await b.close()
  })
  const owner = sessionOwner(randomBytes(16).toString('base64url').slice(0, 22))
  const slot = keySlot(b.eventChannelOf(owner))
  const events: AttributeEvent[] = []
  let resyncs = 0
  await feed.subscribe(owner, { onEvent: (event) => { events.push(event) }, onResync: () => { resyncs++ } })
  const write = async (value: number) => {
    const deadline = Date.now() + 10_000
    for (;;) {
      try {
        return await a.write(owner, 'set', [{ name: 'n', value: { kind: 'plain', plain: String(value) }, expiry: { kind: 'keep' } }])
      } catch (error) {
        if (Date.now() > deadline) throw error
        await sleep(50)
      }
    }
  }
  await write(1)
  const oldPort = await cluster.masterOf(slot)
  const newPort = (await cluster.roles()).find((role) => role.role === 'master' && !role.failed && role.port !== oldPort)!.port
  await migrateSlot(slot, newPort)
  // Written on the new master at once: before the feed has moved its subscription (replayed), and after.
  await write(2)
  await sleep(1_500)
  await write(3)
  const deadline = Date.now() + 5_000
  while (events.length < 3 && Date.now() < deadline) await sleep(20)
  t.diagnostic(`slot ${slot} moved from ${oldPort} to ${newPort}; events: ${events.map((event) => event.version).join(', ')}`)
  assert.equal(await cluster.masterOf(slot), newPort)
  assert.deepEqual(events.map((event) => event.version), [1, 2, 3])
  assert.equal(resyncs, 0)
})

test('a failover of the channel\'s master: the subscription follows the slot to the promoted replica and misses nothing', async (t) => {
  const open = (keyPrefix: string, minReplicasAck = 0) => new RedisStore({
    topology: { kind: 'cluster', nodes: cluster.startupNodes },
    keyPrefix,
    commandTimeoutMs: 2_000,
    connectTimeoutMs: 1_000,
    minReplicasAck,
    ...LIMITS
  })
  const prefix = `fo-${Date.now()}:`
  // The first write waits for the replica, so that it is not lost with the master; the promoted
  // replica has none left, so the writes after the failover do not wait.
  const first = open(prefix, 1)
  const a = open(prefix)
  const b = open(prefix)
  const feed = b.createEventFeed()
  t.after(async () => {
    await feed.close()
    await first.close()
    await a.close()
    await b.close()
  })
  const owner = sessionOwner(randomBytes(16).toString('base64url').slice(0, 22))
  const events: AttributeEvent[] = []
  let resyncs = 0
  await feed.subscribe(owner, { onEvent: (event) => { events.push(event) }, onResync: () => { resyncs++ } })
  const write = async (value: number, store = a) => await store.write(owner, 'set', [{ name: 'n', value: { kind: 'plain', plain: String(value) }, expiry: { kind: 'keep' } }])
  await write(1, first)
  const oldPort = await cluster.killMasterOf(keySlot(b.eventChannelOf(owner)))
  const newPort = await cluster.waitPromoted(keySlot(b.eventChannelOf(owner)), oldPort)
  const deadline = Date.now() + 15_000
  for (let value = 2; value <= 3; value++) {
    for (;;) {
      try {
        await write(value)
        break
      } catch (error) {
        if (Date.now() > deadline) throw error
        await sleep(100)
      }
    }
  }
  while (events.length < 3 && Date.now() < deadline) await sleep(20)
  t.diagnostic(`master ${oldPort} killed, ${newPort} promoted; events: ${events.map((event) => event.version).join(', ')}`)
  assert.deepEqual(events.map((event) => event.version), [1, 2, 3])
  assert.equal(resyncs, 0)
})
