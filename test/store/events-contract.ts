import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { describe, test, type TestContext } from 'node:test'
import { setTimeout as sleep } from 'node:timers/promises'
import { createEventFeed } from '../../src/events/feed.ts'
import type { AttributeEvent, EventFeed, EventSubscription } from '../../src/events/types.ts'
import { compareEventIds, EVENTS_RETAINED, EVENTS_TRIM_STEP } from '../../src/events/event-log.ts'
import {
  PreconditionFailed, SessionEndedError, sessionOwner, userOwner,
  type Owner, type Store, type StoreLimits, type WriteItem
} from '../../src/store/types.ts'

// Change events (issue 16), part of the store contract (contract.ts runs it for every store):
// what each change records, that refused and repeated calls record nothing, and that a feed
// replays from `since` and then goes live without gap or duplicate.

type OpenStore = (t: TestContext, overrides?: Partial<StoreLimits>) => Promise<Store>

function newId (): string {
  return randomBytes(16).toString('base64url').slice(0, 22)
}

function set (name: string, value: unknown, extra: Partial<WriteItem> = {}): WriteItem {
  return { name, value: { kind: 'plain', plain: JSON.stringify(value) }, expiry: { kind: 'keep' }, ...extra }
}

/** A subscription that collects what it is given. */
interface Collector {
  events: AttributeEvent[]
  resyncs: number
  subscription: EventSubscription
  /** Waits until `count` events have arrived (fails after 3 s). */
  until: (count: number) => Promise<AttributeEvent[]>
}

async function collect (t: TestContext, feed: EventFeed, owner: Owner, since?: string): Promise<Collector> {
  const events: AttributeEvent[] = []
  const collector = { events, resyncs: 0 } as Collector
  collector.subscription = await feed.subscribe(owner, {
    since,
    onEvent: (event) => { events.push(event) },
    onResync: () => { collector.resyncs++ }
  })
  t.after(() => { collector.subscription.close() })
  collector.until = async (count) => {
    const deadline = Date.now() + 3_000
    while (events.length < count && Date.now() < deadline) await sleep(5)
    assert.ok(events.length >= count, `expected ${count} events, got ${events.length}: ${JSON.stringify(events.map((event) => [event.kind, event.name]))}`)
    return events
  }
  return collector
}

/** The kind and name of each event, to compare sequences. */
function summary (events: AttributeEvent[]): string[] {
  return events.map((event) => event.name === undefined ? event.kind : `${event.kind} ${event.name}`)
}

function assertIncreasing (events: AttributeEvent[]): void {
  for (let index = 1; index < events.length; index++) {
    assert.ok(compareEventIds(events[index - 1]!.id, events[index]!.id) < 0, `ids ${events[index - 1]!.id} then ${events[index]!.id}`)
  }
}

export function eventsContract (openStore: OpenStore): void {
  async function openWithFeed (t: TestContext, overrides: Partial<StoreLimits> = {}): Promise<{ store: Store, feed: EventFeed }> {
    const store = await openStore(t, overrides)
    const feed = createEventFeed(store)
    t.after(async () => { await feed.close() })
    return { store, feed }
  }

  describe('change events', () => {
    for (const scope of ['session', 'user'] as const) {
      const newOwner = (): Owner => scope === 'session' ? sessionOwner(newId()) : userOwner(newId())

      test(`${scope}: added, changed and removed, with version, expiry, encryption and the plain value only`, async (t) => {
        const { store, feed } = await openWithFeed(t)
        const owner = newOwner()
        const seen = await collect(t, feed, owner)
        assert.equal(seen.subscription.resync, false)
        assert.equal(seen.subscription.replayed, 0)
        const [theme] = await store.write(owner, 'create', [
          set('theme', 'dark', { expiry: { kind: 'set', ms: 60_000 } }),
          { name: 'secret', value: { kind: 'cipher', cipher: 'gcm1.k.iv.ciphertext' }, expiry: { kind: 'keep' } }
        ])
        await store.write(owner, 'set', [set('theme', 'light', { expiry: { kind: 'clear' } })])
        assert.deepEqual(await store.delete(owner, ['secret', 'missing']), [true, false])
        const events = await seen.until(4)
        assert.deepEqual(summary(events), ['added theme', 'added secret', 'changed theme', 'removed secret'])
        assertIncreasing(events)
        const [added, secret, changed, removed] = events
        assert.deepEqual(added?.owner, owner)
        assert.equal(added?.version, 1)
        assert.equal(added?.expiresAt, theme?.expiresAt)
        assert.equal(added?.encrypted, false)
        assert.equal(added?.payload, '"dark"')
        assert.equal(secret?.encrypted, true)
        assert.equal(secret?.payload, undefined, 'never the ciphertext')
        assert.equal(changed?.version, 2)
        assert.equal(changed?.expiresAt, null)
        assert.equal(changed?.payload, '"light"')
        assert.equal(removed?.payload, undefined)
        for (const event of events) assert.ok(Math.abs(event.at - Date.now()) < 5_000, `at ${event.at}`)
        await sleep(30)
        assert.equal(seen.events.length, 4, 'the missing name removed nothing and announced nothing')
      })

      test(`${scope}: an attribute that expires is announced expired when the store purges it, by any call`, async (t) => {
        const { store, feed } = await openWithFeed(t)
        const owner = newOwner()
        const seen = await collect(t, feed, owner)
        await store.write(owner, 'create', [set('short', 1, { expiry: { kind: 'set', ms: 80 } }), set('long', 2)])
        await seen.until(2)
        await sleep(150)
        assert.deepEqual(await store.names(owner), ['long'])
        const events = await seen.until(3)
        assert.deepEqual(summary(events), ['added short', 'added long', 'expired short'])
        await store.write(owner, 'create', [set('short', 3)])
        assert.deepEqual(summary(await seen.until(4)).at(-1), 'added short', 'the name is free again: added, not changed')
      })

      test(`${scope}: for a watched owner, expired comes at the expiry time without any call, also for an attribute older than the subscription`, async (t) => {
        const { store, feed } = await openWithFeed(t)
        const owner = newOwner()
        const [older] = await store.write(owner, 'create', [set('older', 1, { expiry: { kind: 'set', ms: 250 } })])
        const seen = await collect(t, feed, owner)
        const [newer] = await store.write(owner, 'create', [set('newer', 2, { expiry: { kind: 'set', ms: 100 } }), set('stays', 3)])
        const events = await seen.until(4)
        assert.deepEqual(summary(events), ['added newer', 'added stays', 'expired newer', 'expired older'])
        assert.ok(events[2]!.at >= newer!.expiresAt! && events[2]!.at < newer!.expiresAt! + 1_000, `expired at ${events[2]!.at}, due ${newer!.expiresAt!}`)
        assert.ok(events[3]!.at >= older!.expiresAt! && events[3]!.at < older!.expiresAt! + 1_000, `expired at ${events[3]!.at}, due ${older!.expiresAt!}`)
      })

      test(`${scope}: refused writes and deletes record nothing`, async (t) => {
        const { store, feed } = await openWithFeed(t, { maxAttributesPerSession: 2 })
        const owner = newOwner()
        await store.write(owner, 'create', [set('a', 1)])
        const seen = await collect(t, feed, owner)
        const refused = async (call: Promise<unknown>) => { await assert.rejects(call, PreconditionFailed) }
        await refused(store.write(owner, 'create', [set('b', 1), set('a', 2)]))
        await refused(store.write(owner, 'update', [set('missing', 1)]))
        await refused(store.write(owner, 'set', [set('a', 2, { ifVersion: 7 })]))
        await refused(store.write(owner, 'create', [set('b', 1), set('c', 1)]))
        await refused(store.delete(owner, ['a'], 9))
        await store.write(owner, 'set', [set('mark', 1)])
        const events = await seen.until(1)
        await sleep(30)
        assert.deepEqual(summary(events), ['added mark'])
      })

      test(`${scope}: a repeat under the same Idempotency-Key records no second event`, async (t) => {
        const { store, feed } = await openWithFeed(t)
        const owner = newOwner()
        const seen = await collect(t, feed, owner)
        const idempotency = { key: newId(), fingerprint: 'f1', ttlMs: 60_000 }
        const first = await store.write(owner, 'set', [set('a', 1)], idempotency)
        assert.deepEqual(await store.write(owner, 'set', [set('a', 1)], idempotency), first)
        const deletion = { key: newId(), fingerprint: 'f2', ttlMs: 60_000 }
        assert.deepEqual(await store.delete(owner, ['a'], undefined, deletion), [true])
        assert.deepEqual(await store.delete(owner, ['a'], undefined, deletion), [true])
        await store.write(owner, 'set', [set('mark', 1)])
        const events = await seen.until(3)
        await sleep(30)
        assert.deepEqual(summary(events), ['added a', 'removed a', 'added mark'])
      })

      test(`${scope}: replay from since, then live: each event once, in order, and the seam holds under concurrent writes`, async (t) => {
        const { store, feed } = await openWithFeed(t)
        const owner = newOwner()
        const first = await collect(t, feed, owner)
        for (let round = 0; round < 6; round++) await store.write(owner, 'set', [set('n', round)])
        const seenFirst = await first.until(6)
        first.subscription.close()
        // While writes go on, subscribe from the second event: 4 replayed, then everything after.
        const writes = (async () => { for (let round = 6; round < 30; round++) await store.write(owner, 'set', [set('n', round)]) })()
        const again = await collect(t, feed, owner, seenFirst[1]!.id)
        await writes
        const events = await again.until(28)
        await sleep(30)
        assert.equal(again.subscription.resync, false)
        assert.ok(again.subscription.replayed >= 4, `replayed ${again.subscription.replayed}`)
        assert.deepEqual(events.map((event) => event.version), Array.from({ length: 28 }, (_, index) => index + 3), 'versions 3..30, none lost, none twice')
        assertIncreasing(events)
        // A replayed event carries the value only while it is still the attribute's version.
        assert.equal(events[0]!.payload, undefined, 'superseded')
        assert.equal(events.at(-1)!.payload, '29')
        const fromLast = await collect(t, feed, owner, events.at(-1)!.id)
        assert.equal(fromLast.subscription.replayed, 0)
        assert.equal(fromLast.subscription.resync, false)
        const replayedLast = await collect(t, feed, owner, events.at(-2)!.id)
        assert.deepEqual((await replayedLast.until(1)).map((event) => event.payload), ['29'], 'the current version replays with its value')
      })

      test(`${scope}: since older than the window, unknown or malformed: resync, and live from there`, async (t) => {
        const { store, feed } = await openWithFeed(t, { maxAttributesPerSession: 10 })
        const owner = newOwner()
        const names = Array.from({ length: 10 }, (_, index) => `a${index}`)
        const seen = await collect(t, feed, owner)
        const total = EVENTS_RETAINED + EVENTS_TRIM_STEP + 10
        for (let round = 0; round < total / 10; round++) await store.write(owner, 'set', names.map((name) => set(name, round)))
        const events = await seen.until(total)
        const old = await collect(t, feed, owner, events[0]!.id)
        assert.equal(old.subscription.resync, true)
        assert.equal(old.subscription.replayed, 0)
        const kept = await collect(t, feed, owner, events[total - EVENTS_RETAINED]!.id)
        assert.equal(kept.subscription.resync, false)
        assert.equal(kept.subscription.replayed, EVENTS_RETAINED - 1)
        for (const since of ['1-1', `${Date.now() + 86_400_000}-1`, 'not-an-id']) {
          assert.equal((await collect(t, feed, owner, since)).subscription.resync, true, since)
        }
        const unknown = await collect(t, feed, newOwner(), events[0]!.id)
        assert.equal(unknown.subscription.resync, true, 'an owner with no events kept')
        await store.write(owner, 'set', [set('a0', 'live')])
        assert.deepEqual((await old.until(1)).map((event) => event.payload), ['"live"'], 'after a resync, live events follow')
      })
    }

    test('session: ended once, when the session ends; the last id before it replays it', async (t) => {
      const { store, feed } = await openWithFeed(t)
      const owner = sessionOwner(newId())
      await store.write(owner, 'create', [set('a', 1)])
      const seen = await collect(t, feed, owner)
      await store.write(owner, 'set', [set('a', 2)])
      await store.endSession(owner.id, 60_000)
      await store.endSession(owner.id, 60_000)
      await assert.rejects(store.write(owner, 'set', [set('a', 3)]), SessionEndedError)
      const events = await seen.until(2)
      await sleep(30)
      assert.deepEqual(summary(events), ['changed a', 'ended'])
      assert.equal(events[1]!.name, undefined)
      const late = await collect(t, feed, owner, events[0]!.id)
      assert.deepEqual(summary(await late.until(1)), ['ended'])
      assert.equal((await collect(t, feed, owner, '1-1')).subscription.resync, true)
    })

    test('session: a logout by sub ends each indexed session with ended', async (t) => {
      const { store, feed } = await openWithFeed(t)
      const userId = newId()
      const sessions = [newId(), newId()]
      const seen = await Promise.all(sessions.map(async (id) => await collect(t, feed, sessionOwner(id))))
      for (const id of sessions) await store.indexSession(userId, id, Date.now() - 1_000, Date.now() + 60_000)
      await store.write(sessionOwner(sessions[0]!), 'create', [set('a', 1)])
      assert.equal(await store.endUserSessions(userId, 60_000), 2)
      assert.deepEqual(summary(await seen[0]!.until(2)), ['added a', 'ended'])
      assert.deepEqual(summary(await seen[1]!.until(1)), ['ended'], 'a session without attributes too')
    })

    test('user: erasing the user\'s attributes removes each one', async (t) => {
      const { store, feed } = await openWithFeed(t)
      const userId = newId()
      await store.write(userOwner(userId), 'create', [set('a', 1), set('b', 2)])
      const seen = await collect(t, feed, userOwner(userId))
      assert.equal(await store.eraseUserAttributes(userId), 2)
      const events = await seen.until(2)
      assert.deepEqual(summary(events).sort(), ['removed a', 'removed b'])
      assert.equal(await store.eraseUserAttributes(userId), 0)
      await sleep(30)
      assert.equal(seen.events.length, 2, 'erasing nothing announces nothing')
    })

    test('several subscriptions to one owner each get every event once; a closed one gets no more', async (t) => {
      const { store, feed } = await openWithFeed(t)
      const owner = sessionOwner(newId())
      const one = await collect(t, feed, owner)
      const two = await collect(t, feed, owner)
      await store.write(owner, 'set', [set('a', 1)])
      await one.until(1)
      await two.until(1)
      one.subscription.close()
      await store.write(owner, 'set', [set('a', 2)])
      assert.deepEqual((await two.until(2)).map((event) => event.version), [1, 2])
      await sleep(30)
      assert.equal(one.events.length, 1)
    })
  })
}
