import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import type { TestContext } from 'node:test'
import { setTimeout as sleep } from 'node:timers/promises'
import type { Redis } from 'ioredis'
import { compareEventIds } from '../../src/events/event-log.ts'
import type { AttributeEvent } from '../../src/events/types.ts'
import type { RedisStore } from '../../src/store/redis-store.ts'
import { SUBSCRIBER_CONNECTION_NAME } from '../../src/store/redis-topology.ts'
import { sessionOwner, userOwner, type Owner } from '../../src/store/types.ts'

// Two service instances on one Redis (or one Cluster): writes through A's store reach event
// subscribers on B, and killing B's subscriber connections mid-stream loses and repeats
// nothing (the feed replaces them and replays), nor does a subscriber that leaves and comes
// back with `since`. Run by events-two-instances.test.ts (one server) and
// events-two-instances-cluster.test.ts (3 masters).

export const ROUNDS = 120

/** Kills B's subscriber connections on every node; returns how many there were. */
export async function killSubscribers (nodes: Redis[]): Promise<number> {
  let killed = 0
  for (const node of nodes) {
    const list = String(await node.client('LIST'))
    for (const line of list.split('\n')) {
      if (!line.includes(` name=${SUBSCRIBER_CONNECTION_NAME} `)) continue
      const id = /\bid=(\d+)/.exec(line)?.[1]
      if (id !== undefined) killed += Number(await node.client('KILL', 'ID', id))
    }
  }
  return killed
}

interface Seen {
  events: AttributeEvent[]
  resyncs: number
}

export async function twoInstances (t: TestContext, openStore: (prefix: string) => RedisStore, nodes: () => Redis[]): Promise<void> {
  const prefix = `ev-${randomBytes(4).toString('hex')}:`
  const a = openStore(prefix)
  const b = openStore(prefix)
  const feed = b.createEventFeed()
  t.after(async () => {
    await feed.close()
    await a.close()
    await b.close()
  })
  // Several owners, so that on a Cluster they are spread over the masters.
  const owners: Owner[] = [
    ...Array.from({ length: 4 }, () => sessionOwner(randomBytes(16).toString('base64url').slice(0, 22))),
    ...Array.from({ length: 2 }, () => userOwner(randomBytes(16).toString('base64url').slice(0, 22)))
  ]
  const steady = new Map<Owner, Seen>()
  for (const owner of owners) {
    const seen: Seen = { events: [], resyncs: 0 }
    steady.set(owner, seen)
    await feed.subscribe(owner, { onEvent: (event) => { seen.events.push(event) }, onResync: () => { seen.resyncs++ } })
  }
  // A subscriber that leaves halfway and comes back with the last id it saw.
  const roaming: Seen = { events: [], resyncs: 0 }
  const roamer = owners[0]!
  let away = await feed.subscribe(roamer, { onEvent: (event) => { roaming.events.push(event) } })

  let killed = 0
  let replayed = 0
  for (let round = 1; round <= ROUNDS; round++) {
    await Promise.all(owners.map(async (owner) => await a.write(owner, 'set', [{ name: 'n', value: { kind: 'plain', plain: String(round) }, expiry: { kind: 'keep' } }])))
    if (round === 40 || round === 80) killed += await killSubscribers(nodes())
    if (round === 60) {
      away.close()
      await sleep(20)
      const since = roaming.events.at(-1)!.id
      await a.write(roamer, 'set', [{ name: 'other', value: { kind: 'plain', plain: '0' }, expiry: { kind: 'keep' } }])
      away = await feed.subscribe(roamer, { since, onEvent: (event) => { roaming.events.push(event) } })
      assert.equal(away.resync, false)
      replayed = away.replayed
    }
    await sleep(2)
  }
  t.after(() => { away.close() })
  t.diagnostic(`subscriber connections killed: ${killed}; the roaming subscriber replayed ${replayed} on its return`)
  assert.ok(killed >= 2, `killed ${killed}`)
  assert.ok(replayed >= 1, 'the write made while it was away')

  const deadline = Date.now() + 10_000
  const expected = (owner: Owner) => ROUNDS + (owner === roamer ? 1 : 0)
  while (Date.now() < deadline && owners.some((owner) => steady.get(owner)!.events.length < expected(owner))) await sleep(20)
  await sleep(100)
  let lost = 0
  let duplicated = 0
  for (const owner of owners) {
    const seen = steady.get(owner)!
    const versions = seen.events.filter((event) => event.name === 'n').map((event) => event.version)
    lost += ROUNDS - new Set(versions).size
    duplicated += versions.length - new Set(versions).size
    assert.deepEqual(versions, Array.from({ length: ROUNDS }, (_, index) => index + 1), `${owner.scope} ${owner.id}: every version once, in order`)
    assert.equal(seen.resyncs, 0)
    for (let index = 1; index < seen.events.length; index++) assert.ok(compareEventIds(seen.events[index - 1]!.id, seen.events[index]!.id) < 0)
  }
  const roamed = roaming.events.filter((event) => event.name === 'n').map((event) => event.version)
  assert.deepEqual(roamed, Array.from({ length: ROUNDS }, (_, index) => index + 1), 'the roaming subscriber: every version once')
  t.diagnostic(`events lost: ${lost}, duplicated: ${duplicated}, over ${owners.length} owners x ${ROUNDS} writes`)
}
