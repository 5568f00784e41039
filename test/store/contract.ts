import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { describe, test, type TestContext } from 'node:test'
import { setTimeout as sleep } from 'node:timers/promises'
import {
  CipherNeededError, PreconditionFailed, SessionEndedError, StaleReadError, sessionOwner, userOwner,
  type ExpiryWrite, type Owner, type Store, type StoreLimits, type StoredAttribute, type ValueWrite, type WriteItem
} from '../../src/store/types.ts'
import { eventsContract } from './events-contract.ts'

// The one contract both stores must meet (src/store/types.ts), run once per store by
// test/store/memory-store.test.ts and test/store/redis-store.test.ts. Each test opens its own
// store with the limits it needs, so timing tests use windows of a few hundred ms while the
// others get windows long enough never to end under a slow machine.

export interface StoreHandle {
  store: Store
  cleanup?: () => Promise<void>
}

export type MakeStore = (limits: StoreLimits) => Promise<StoreHandle>

export const LIMITS: StoreLimits = { sessionIdleTtlMs: 30_000, sessionMaxTtlMs: 60_000, maxAttributesPerSession: 5 }

export function newSessionId (): string {
  return randomBytes(16).toString('base64url').slice(0, 22)
}

const KEEP: ExpiryWrite = { kind: 'keep' }
const CLEAR: ExpiryWrite = { kind: 'clear' }

function plain (value: unknown): ValueWrite {
  return { kind: 'plain', plain: JSON.stringify(value) }
}

function item (name: string, value: ValueWrite, expiry: ExpiryWrite = KEEP, extra: Partial<WriteItem> = {}): WriteItem {
  return { name, value, expiry, ...extra }
}

function inMs (ms: number): ExpiryWrite {
  return { kind: 'set', ms }
}

type PreconditionCode = 'E009001' | 'E009002' | 'E011005' | 'E011001'

async function rejectsWith (promise: Promise<unknown>, code: PreconditionCode, names?: string[]): Promise<void> {
  await assert.rejects(promise, (error: unknown) => {
    assert.ok(error instanceof PreconditionFailed, `expected PreconditionFailed, got ${String(error)}`)
    assert.equal(error.code, code)
    if (names !== undefined) assert.deepEqual([...error.names].sort(), [...names].sort())
    return true
  })
}

async function one (store: Store, owner: Owner, name: string): Promise<StoredAttribute | null> {
  const [attribute] = await store.get(owner, [name])
  assert.ok(attribute !== undefined)
  return attribute
}

async function mustGet (store: Store, owner: Owner, name: string): Promise<StoredAttribute> {
  const attribute = await one(store, owner, name)
  assert.ok(attribute !== null, `attribute ${name} should exist`)
  return attribute
}

/** Registers the contract tests for one kind of store. */
export function storeContract (name: string, makeStore: MakeStore): void {
  async function openStore (t: TestContext, overrides: Partial<StoreLimits> = {}): Promise<Store> {
    const handle = await makeStore({ ...LIMITS, ...overrides })
    t.after(async () => {
      if (handle.cleanup !== undefined) await handle.cleanup()
      else await handle.store.close()
    })
    return handle.store
  }

  /** The attribute tests, the same for a session's attributes and a user's. */
  function scopeContract (scope: Owner['scope']): void {
    const newOwner = (): Owner => ({ scope, id: newSessionId() })
    // The tests' idle window and attribute limit apply to whichever scope runs.
    const open = async (t: TestContext, overrides: Partial<StoreLimits> = {}): Promise<Store> => await openStore(t, scope === 'session'
      ? overrides
      : { ...overrides, userIdleTtlMs: overrides.sessionIdleTtlMs ?? LIMITS.sessionIdleTtlMs, maxAttributesPerUser: overrides.maxAttributesPerSession ?? LIMITS.maxAttributesPerSession })

    describe('create, update and set', () => {
      test('create stores a new attribute at version 1 and reports it', async (t) => {
        const store = await open(t)
        const sid = newOwner()
        const before = Date.now()
        const outcomes = await store.write(sid, 'create', [item('theme', plain('dark'))])
        const after = Date.now()
        assert.deepEqual(outcomes, [{ name: 'theme', version: 1, expiresAt: null }])
        const stored = await mustGet(store, sid, 'theme')
        assert.equal(stored.name, 'theme')
        assert.equal(stored.payload, '"dark"')
        assert.equal(stored.encrypted, false)
        assert.equal(stored.version, 1)
        assert.equal(stored.expiresAt, null)
        assert.equal(stored.createdAt, stored.modifiedAt)
        assert.ok(stored.createdAt >= before - 5 && stored.createdAt <= after + 5, `createdAt ${stored.createdAt} not in [${before}, ${after}]`)
      })

      test('create of an existing name fails with E009001 and changes nothing', async (t) => {
        const store = await open(t)
        const sid = newOwner()
        await store.write(sid, 'create', [item('a', plain(1))])
        const before = await mustGet(store, sid, 'a')
        await rejectsWith(store.write(sid, 'create', [item('a', plain(2))]), 'E009001', ['a'])
        assert.deepEqual(await mustGet(store, sid, 'a'), before)
      })

      test('update of a missing name fails with E009002 and stores nothing', async (t) => {
        const store = await open(t)
        const sid = newOwner()
        await rejectsWith(store.write(sid, 'update', [item('missing', plain(1))]), 'E009002', ['missing'])
        assert.equal(await one(store, sid, 'missing'), null)
        assert.deepEqual(await store.names(sid), [])
        await store.write(sid, 'create', [item('other', plain(1))])
        await rejectsWith(store.write(sid, 'update', [item('missing', plain(1))]), 'E009002', ['missing'])
        assert.deepEqual(await store.names(sid), ['other'])
      })

      test('update writes falsy JSON values', async (t) => {
        const store = await open(t)
        const sid = newOwner()
        await store.write(sid, 'create', [item('v', plain('x'))])
        for (const value of [0, false, '', null]) {
          await store.write(sid, 'update', [item('v', plain(value))])
          assert.equal((await mustGet(store, sid, 'v')).payload, JSON.stringify(value))
        }
      })

      test('set creates a missing attribute and overwrites an existing one', async (t) => {
        const store = await open(t)
        const sid = newOwner()
        assert.deepEqual(await store.write(sid, 'set', [item('s', plain('one'))]), [{ name: 's', version: 1, expiresAt: null }])
        assert.equal((await mustGet(store, sid, 's')).payload, '"one"')
        assert.deepEqual(await store.write(sid, 'set', [item('s', plain('two'))]), [{ name: 's', version: 2, expiresAt: null }])
        const stored = await mustGet(store, sid, 's')
        assert.equal(stored.payload, '"two"')
        assert.equal(stored.version, 2)
      })

      test('every write adds one to the version; a deleted and re-created name starts again at 1', async (t) => {
        const store = await open(t)
        const sid = newOwner()
        const versions: number[] = []
        const record = async (mode: 'create' | 'update' | 'set', write: WriteItem): Promise<void> => {
          const [outcome] = await store.write(sid, mode, [write])
          assert.ok(outcome !== undefined)
          versions.push(outcome.version)
          assert.equal((await mustGet(store, sid, 'n')).version, outcome.version)
        }
        await record('create', item('n', plain(1)))
        await record('update', item('n', plain(2)))
        await record('set', item('n', plain(3)))
        await record('update', item('n', { kind: 'keep' }, inMs(60_000)))
        await record('set', item('n', { kind: 'cipher', cipher: 'c1' }, CLEAR))
        await record('update', item('n', { kind: 'inherit', plain: '4', cipher: 'c2' }))
        assert.deepEqual(versions, [1, 2, 3, 4, 5, 6])
        assert.deepEqual(await store.delete(sid, ['n']), [true])
        await record('create', item('n', plain(1)))
        assert.equal(versions.at(-1), 1)
      })

      test('createdAt survives updates while modifiedAt moves forward', async (t) => {
        const store = await open(t)
        const sid = newOwner()
        await store.write(sid, 'create', [item('c', plain(1))])
        const created = await mustGet(store, sid, 'c')
        await sleep(25)
        const before = Date.now()
        await store.write(sid, 'update', [item('c', plain(2))])
        const updated = await mustGet(store, sid, 'c')
        assert.equal(updated.createdAt, created.createdAt)
        assert.ok(updated.modifiedAt >= created.modifiedAt + 20, `modifiedAt ${updated.modifiedAt} should be ~25 ms after ${created.modifiedAt}`)
        assert.ok(updated.modifiedAt >= before - 5)
        await sleep(25)
        await store.write(sid, 'set', [item('c', { kind: 'keep' }, inMs(60_000))])
        const touched = await mustGet(store, sid, 'c')
        assert.equal(touched.createdAt, created.createdAt)
        assert.ok(touched.modifiedAt >= updated.modifiedAt + 20)
      })

      test('payloads and names round-trip exactly', async (t) => {
        const store = await open(t, { maxAttributesPerSession: 50 })
        const sid = newOwner()
        const payloads = [
          JSON.stringify({ a: 'b:c:1:2:p:', nested: [1, { x: null }] }),
          JSON.stringify('line one\nline two\r\n\ttab \u0000 nul'),
          JSON.stringify('ünïcödé 😀 漢字'),
          '1:2:3::e:looks-like-a-record-header',
          JSON.stringify('x'.repeat(65_536)),
          '"quoted" \\ back\\slash / \u2028 \\u0041 [1,"a"]'
        ]
        // The Redis store sends a write's items to Lua as JSON: quotes, backslashes and escapes
        // in names and payloads must come back as given, not decoded once too often.
        const names = ['plain', 'with:colons', '{braces}', 'ünïcödé 😀', 'a'.repeat(191), 'q"uo\\te\\u0041\u2028/']
        await store.write(sid, 'create', names.map((n, index) => item(n, { kind: 'plain', plain: payloads[index]! })))
        const stored = await store.get(sid, names)
        assert.deepEqual(stored.map((attribute) => attribute?.name), names)
        assert.deepEqual(stored.map((attribute) => attribute?.payload), payloads)
        await store.write(sid, 'set', [item('cipher', { kind: 'cipher', cipher: 'v1.k1:AAAA:BBBB:' })])
        assert.equal((await mustGet(store, sid, 'cipher')).payload, 'v1.k1:AAAA:BBBB:')
      })

      test('sessions are isolated from each other', async (t) => {
        const store = await open(t)
        const first = newOwner()
        const second = newOwner()
        await store.write(first, 'create', [item('shared', plain('first'))])
        await store.write(second, 'create', [item('shared', plain('second'))])
        assert.equal((await mustGet(store, first, 'shared')).payload, '"first"')
        assert.equal((await mustGet(store, second, 'shared')).payload, '"second"')
        await store.delete(first, ['shared'])
        assert.deepEqual(await store.names(first), [])
        assert.deepEqual(await store.names(second), ['shared'])
      })
    })

    describe('conditional writes', () => {
      test('ifVersion: a match writes, a mismatch fails with E011005 and changes nothing', async (t) => {
        const store = await open(t)
        const sid = newOwner()
        await store.write(sid, 'create', [item('k', plain('v1'), inMs(60_000))])
        await store.write(sid, 'update', [item('k', plain('v2'), KEEP, { ifVersion: 1 })])
        const before = await mustGet(store, sid, 'k')
        assert.equal(before.version, 2)
        for (const mode of ['update', 'set'] as const) {
          for (const ifVersion of [1, 3, 0]) {
            await rejectsWith(store.write(sid, mode, [item('k', plain('nope'), CLEAR, { ifVersion })]), 'E011005', ['k'])
          }
        }
        assert.deepEqual(await mustGet(store, sid, 'k'), before)
        assert.deepEqual(await store.write(sid, 'set', [item('k', plain('v3'), KEEP, { ifVersion: 2 })]), [{ name: 'k', version: 3, expiresAt: before.expiresAt }])
      })

      test('ifVersion on a missing attribute fails with E011005 and stores nothing', async (t) => {
        const store = await open(t)
        const sid = newOwner()
        await rejectsWith(store.write(sid, 'set', [item('ghost', plain(1), KEEP, { ifVersion: 1 })]), 'E011005', ['ghost'])
        assert.equal(await one(store, sid, 'ghost'), null)
        assert.deepEqual(await store.names(sid), [])
      })

      test('expectVersion: a mismatch throws StaleReadError and changes nothing', async (t) => {
        const store = await open(t)
        const sid = newOwner()
        await store.write(sid, 'create', [item('e', plain(1))])
        await store.write(sid, 'update', [item('e', plain(2))])
        const before = await mustGet(store, sid, 'e')
        for (const mode of ['update', 'set'] as const) {
          await assert.rejects(store.write(sid, mode, [item('e', plain(99), CLEAR, { expectVersion: 1 })]), StaleReadError)
        }
        await assert.rejects(store.write(sid, 'set', [item('new', plain(1), KEEP, { expectVersion: 1 })]), StaleReadError)
        assert.deepEqual(await mustGet(store, sid, 'e'), before)
        assert.deepEqual(await store.names(sid), ['e'])
        const [outcome] = await store.write(sid, 'update', [item('e', plain(3), KEEP, { expectVersion: 2 })])
        assert.equal(outcome?.version, 3)
      })
    })

    describe('value kinds', () => {
      test('plain is stored in clear and cipher is stored encrypted', async (t) => {
        const store = await open(t)
        const sid = newOwner()
        await store.write(sid, 'create', [item('p', plain({ a: 1 })), item('c', { kind: 'cipher', cipher: 'CIPHERTEXT' })])
        const [p, c] = await store.get(sid, ['p', 'c'])
        assert.equal(p?.payload, '{"a":1}')
        assert.equal(p?.encrypted, false)
        assert.equal(c?.payload, 'CIPHERTEXT')
        assert.equal(c?.encrypted, true)
        await store.write(sid, 'update', [item('p', { kind: 'cipher', cipher: 'NOW-SECRET' }), item('c', plain('now clear'))])
        const [p2, c2] = await store.get(sid, ['p', 'c'])
        assert.deepEqual([p2?.payload, p2?.encrypted], ['NOW-SECRET', true])
        assert.deepEqual([c2?.payload, c2?.encrypted], ['"now clear"', false])
      })

      test('inherit keeps the stored encryption state, and is plain for a new attribute', async (t) => {
        const store = await open(t)
        const sid = newOwner()
        await store.write(sid, 'create', [item('secret', { kind: 'cipher', cipher: 'C0' }), item('clear', plain(0))])
        await store.write(sid, 'set', [
          item('secret', { kind: 'inherit', plain: '1', cipher: 'C1' }),
          item('clear', { kind: 'inherit', plain: '1', cipher: 'C1' }),
          item('fresh', { kind: 'inherit', plain: '1', cipher: 'C1' })
        ])
        const [secret, clear, fresh] = await store.get(sid, ['secret', 'clear', 'fresh'])
        assert.deepEqual([secret?.payload, secret?.encrypted], ['C1', true])
        assert.deepEqual([clear?.payload, clear?.encrypted], ['1', false])
        assert.deepEqual([fresh?.payload, fresh?.encrypted], ['1', false])
        await store.write(sid, 'update', [item('secret', { kind: 'inherit', plain: '2', cipher: 'C2' })])
        const rewritten = await mustGet(store, sid, 'secret')
        assert.deepEqual([rewritten.payload, rewritten.encrypted], ['C2', true])
      })

      test('inherit without cipher writes clear and new attributes, and refuses the whole write on an encrypted one', async (t) => {
        const store = await open(t)
        const sid = newOwner()
        await store.write(sid, 'create', [item('secret', { kind: 'cipher', cipher: 'C0' }), item('clear', plain(0))])
        await store.write(sid, 'set', [item('clear', { kind: 'inherit', plain: '1' }), item('fresh', { kind: 'inherit', plain: '1' })])
        const [clear, fresh] = await store.get(sid, ['clear', 'fresh'])
        assert.deepEqual([clear?.payload, clear?.encrypted, clear?.version], ['1', false, 2])
        assert.deepEqual([fresh?.payload, fresh?.encrypted, fresh?.version], ['1', false, 1])
        await assert.rejects(store.write(sid, 'set', [item('clear', { kind: 'inherit', plain: '2' }), item('secret', { kind: 'inherit', plain: '2' })]), CipherNeededError)
        const [secret, unchanged] = await store.get(sid, ['secret', 'clear'])
        assert.deepEqual([secret?.payload, secret?.encrypted, secret?.version], ['C0', true, 1])
        assert.deepEqual([unchanged?.payload, unchanged?.version], ['1', 2])
      })

      test('keep leaves payload and encryption flag as they are and may change the expiry', async (t) => {
        const store = await open(t)
        const sid = newOwner()
        await store.write(sid, 'create', [item('s', { kind: 'cipher', cipher: 'SECRET' }), item('p', plain([1, 2]), inMs(60_000))])
        await store.write(sid, 'update', [item('s', { kind: 'keep' }, inMs(60_000)), item('p', { kind: 'keep' }, CLEAR)])
        const [s, p] = await store.get(sid, ['s', 'p'])
        assert.deepEqual([s?.payload, s?.encrypted, s?.version], ['SECRET', true, 2])
        assert.ok(s?.expiresAt !== null && s?.expiresAt !== undefined)
        assert.deepEqual([p?.payload, p?.encrypted, p?.version, p?.expiresAt], ['[1,2]', false, 2, null])
      })

      test('keep on a missing attribute fails with E009002 even under set', async (t) => {
        const store = await open(t)
        const sid = newOwner()
        await store.write(sid, 'create', [item('there', plain(1))])
        await rejectsWith(store.write(sid, 'set', [item('there', plain(2)), item('missing', { kind: 'keep' }, inMs(1000))]), 'E009002', ['missing'])
        assert.deepEqual(await store.names(sid), ['there'])
        assert.equal((await mustGet(store, sid, 'there')).payload, '1')
      })
    })

    describe('expiry', () => {
      test('set, keep and clear', async (t) => {
        const store = await open(t)
        const sid = newOwner()
        const before = Date.now()
        const [outcome] = await store.write(sid, 'create', [item('x', plain(1), inMs(5_000))])
        const after = Date.now()
        assert.ok(outcome?.expiresAt !== null && outcome?.expiresAt !== undefined)
        assert.ok(outcome.expiresAt >= before + 5_000 - 5 && outcome.expiresAt <= after + 5_000 + 5, `expiresAt ${outcome.expiresAt} not ~5 s from now`)
        assert.equal((await mustGet(store, sid, 'x')).expiresAt, outcome.expiresAt)

        await store.write(sid, 'update', [item('x', plain(2), KEEP)])
        assert.equal((await mustGet(store, sid, 'x')).expiresAt, outcome.expiresAt)
        await store.write(sid, 'set', [item('x', plain(3))])
        assert.equal((await mustGet(store, sid, 'x')).expiresAt, outcome.expiresAt)

        const [later] = await store.write(sid, 'update', [item('x', plain(4), inMs(20_000))])
        assert.ok(later?.expiresAt !== null && later?.expiresAt !== undefined && later.expiresAt >= outcome.expiresAt + 14_000)
        assert.equal((await mustGet(store, sid, 'x')).expiresAt, later.expiresAt)

        const [cleared] = await store.write(sid, 'update', [item('x', plain(5), CLEAR)])
        assert.equal(cleared?.expiresAt, null)
        assert.equal((await mustGet(store, sid, 'x')).expiresAt, null)

        const [fresh] = await store.write(sid, 'set', [item('y', plain(1), KEEP)])
        assert.equal(fresh?.expiresAt, null)
      })

      test('an expired attribute is gone at once from every operation and its name is free', async (t) => {
        const store = await open(t)
        const sid = newOwner()
        await store.write(sid, 'create', [item('short', plain('s'), inMs(200)), item('stay', plain('t'))])
        assert.deepEqual(await store.exists(sid, ['short', 'stay']), [true, true])
        assert.deepEqual(await store.names(sid), ['short', 'stay'])
        await sleep(300)
        assert.equal(await one(store, sid, 'short'), null)
        assert.deepEqual(await store.exists(sid, ['short', 'stay']), [false, true])
        assert.deepEqual(await store.names(sid), ['stay'])
        await rejectsWith(store.write(sid, 'update', [item('short', plain('u'))]), 'E009002', ['short'])
        await rejectsWith(store.write(sid, 'set', [item('short', { kind: 'keep' }, CLEAR)]), 'E009002', ['short'])
        await rejectsWith(store.write(sid, 'set', [item('short', plain('u'), KEEP, { ifVersion: 1 })]), 'E011005', ['short'])
        await rejectsWith(store.delete(sid, ['short'], 1), 'E011005', ['short'])
        assert.deepEqual(await store.delete(sid, ['short']), [false])
        const before = Date.now()
        assert.deepEqual(await store.write(sid, 'create', [item('short', plain('again'))]), [{ name: 'short', version: 1, expiresAt: null }])
        const recreated = await mustGet(store, sid, 'short')
        assert.equal(recreated.payload, '"again"')
        assert.ok(recreated.createdAt >= before - 5, 'a re-created attribute has a new creation time')
      })

      test('each expired attribute goes on its own time; a cleared expiry never fires', async (t) => {
        const store = await open(t)
        const sid = newOwner()
        await store.write(sid, 'create', [
          item('a', plain(1), inMs(150)), item('b', plain(2), inMs(450)), item('c', plain(3), inMs(150)), item('d', plain(4))
        ])
        await store.write(sid, 'update', [item('c', plain(33), CLEAR)])
        await sleep(300)
        assert.deepEqual(await store.names(sid), ['b', 'c', 'd'])
        await sleep(300)
        assert.deepEqual(await store.names(sid), ['c', 'd'])
        assert.deepEqual(await store.get(sid, ['a', 'b']), [null, null])
        assert.equal((await mustGet(store, sid, 'c')).payload, '33')
      })

      if (scope === 'session') {
        test('an expiry never reaches past the session deadline', async (t) => {
          const maxTtl = 2_000
          const store = await open(t, { sessionIdleTtlMs: 1_000, sessionMaxTtlMs: maxTtl })
          const sid = newOwner()
          const [first] = await store.write(sid, 'create', [item('first', plain(1), inMs(60_000))])
          const created = (await mustGet(store, sid, 'first')).createdAt
          assert.equal(first?.expiresAt, created + maxTtl)
          await sleep(50)
          const [second] = await store.write(sid, 'set', [item('second', plain(2), inMs(60_000)), item('first', plain(1), inMs(60_000))])
          assert.equal(second?.expiresAt, created + maxTtl)
          assert.equal((await mustGet(store, sid, 'first')).expiresAt, created + maxTtl)
          const [short] = await store.write(sid, 'update', [item('second', plain(2), inMs(100))])
          assert.ok(short?.expiresAt !== null && short?.expiresAt !== undefined && short.expiresAt < created + maxTtl - 500)
        })
      }
    })

    if (scope === 'session') {
      describe('session lifetime', () => {
        test('every kind of call renews the idle window', async (t) => {
          const idle = 700
          const step = 400
          const store = await open(t, { sessionIdleTtlMs: idle, sessionMaxTtlMs: 60_000 })
          const sid = newOwner()
          await store.write(sid, 'create', [item('a', plain(1))])
          const calls: Array<[string, () => Promise<void>]> = [
            ['exists', async () => { assert.deepEqual(await store.exists(sid, ['a']), [true]) }],
            ['names', async () => { assert.deepEqual(await store.names(sid), ['a']) }],
            ['get', async () => { assert.equal((await mustGet(store, sid, 'a')).payload, '1') }],
            ['delete', async () => { assert.deepEqual(await store.delete(sid, ['not-there']), [false]) }],
            ['write', async () => { await store.write(sid, 'set', [item('b', plain(2))]) }],
            ['exists again', async () => { assert.deepEqual(await store.exists(sid, ['a']), [true]) }]
          ]
          // Each call comes `step` after the previous one: inside the idle window, but two steps
          // are not, so each call must have renewed the window for the next one to find `a`.
          for (const [label, call] of calls) {
            await sleep(step)
            await call().catch((error: unknown) => { throw new Error(`after ${label}`, { cause: error }) })
          }
          await sleep(idle + 300)
          assert.deepEqual(await store.names(sid), [])
          assert.deepEqual(await store.get(sid, ['a', 'b']), [null, null])
          assert.deepEqual(await store.exists(sid, ['a']), [false])
        })

        test('an idle session ends and a later write starts a new one', async (t) => {
          const idle = 400
          const maxTtl = 60_000
          const store = await open(t, { sessionIdleTtlMs: idle, sessionMaxTtlMs: maxTtl })
          const sid = newOwner()
          await store.write(sid, 'create', [item('a', plain(1), inMs(10 * maxTtl))])
          await sleep(idle + 250)
          assert.deepEqual(await store.names(sid), [])
          await store.write(sid, 'create', [item('a', plain(2))])
          assert.equal((await mustGet(store, sid, 'a')).version, 1)
          const before = Date.now()
          const [outcome] = await store.write(sid, 'set', [item('b', plain(3), inMs(10 * maxTtl))])
          // A new session has a new deadline: about max TTL from its first attribute.
          assert.ok(outcome?.expiresAt !== null && outcome?.expiresAt !== undefined && outcome.expiresAt >= before + maxTtl - 1_000)
        })

        test('activity cannot keep a session past its max lifetime', async (t) => {
          const idle = 800
          const maxTtl = 1_200
          const store = await open(t, { sessionIdleTtlMs: idle, sessionMaxTtlMs: maxTtl })
          const sid = newOwner()
          await store.write(sid, 'create', [item('a', plain(1))])
          const created = (await mustGet(store, sid, 'a')).createdAt
          // Past the first idle window (only renewal keeps it alive) and close to the deadline,
          // so that an idle window not capped by the deadline would outlive the check below.
          while (Date.now() < created + maxTtl - 250) {
            assert.deepEqual(await store.exists(sid, ['a']), [true], `still alive ${Date.now() - created} ms after the first write`)
            await store.write(sid, 'set', [item('b', plain(Date.now()))])
            await sleep(100)
          }
          const wait = created + maxTtl + 150 - Date.now()
          if (wait > 0) await sleep(wait)
          assert.deepEqual(await store.exists(sid, ['a', 'b']), [false, false])
          assert.deepEqual(await store.names(sid), [])
          const [outcome] = await store.write(sid, 'create', [item('a', plain(2), inMs(60_000))])
          assert.equal(outcome?.version, 1)
          const reborn = await mustGet(store, sid, 'a')
          assert.equal(outcome?.expiresAt, reborn.createdAt + maxTtl)
        })

        test('calls on an unknown session find nothing', async (t) => {
          const store = await open(t)
          const sid = newOwner()
          assert.deepEqual(await store.get(sid, ['a', 'b']), [null, null])
          assert.deepEqual(await store.exists(sid, ['a']), [false])
          assert.deepEqual(await store.names(sid), [])
          assert.deepEqual(await store.delete(sid, ['a', 'b']), [false, false])
          await rejectsWith(store.delete(sid, ['a'], 1), 'E011005', ['a'])
          await store.ping()
        })
      })
    }

    describe('attributes per session', () => {
      test('a new attribute beyond the limit fails with E011001; existing ones still change', async (t) => {
        const store = await open(t, { maxAttributesPerSession: 5 })
        const sid = newOwner()
        for (let index = 0; index < 5; index++) await store.write(sid, 'create', [item(`n${index}`, plain(index))])
        await rejectsWith(store.write(sid, 'create', [item('n5', plain(5))]), 'E011001')
        await rejectsWith(store.write(sid, 'set', [item('n5', plain(5))]), 'E011001')
        assert.equal(await one(store, sid, 'n5'), null)
        await store.write(sid, 'update', [item('n0', plain('u'))])
        await store.write(sid, 'set', [item('n1', plain('s')), item('n2', { kind: 'keep' }, inMs(60_000))])
        assert.deepEqual(await store.names(sid), ['n0', 'n1', 'n2', 'n3', 'n4'])
        assert.deepEqual(await store.delete(sid, ['n4']), [true])
        await store.write(sid, 'create', [item('n5', plain(5))])
        assert.deepEqual(await store.names(sid), ['n0', 'n1', 'n2', 'n3', 'n5'])
      })

      test('a batch that would exceed the limit stores nothing', async (t) => {
        const store = await open(t, { maxAttributesPerSession: 5 })
        const sid = newOwner()
        await store.write(sid, 'create', [item('a', plain(1)), item('b', plain(2)), item('c', plain(3))])
        await rejectsWith(store.write(sid, 'set', [item('a', plain('changed')), item('d', plain(4)), item('e', plain(5)), item('f', plain(6))]), 'E011001')
        assert.deepEqual(await store.names(sid), ['a', 'b', 'c'])
        assert.equal((await mustGet(store, sid, 'a')).version, 1)
        await rejectsWith(store.write(sid, 'create', Array.from({ length: 6 }, (_, index) => item(`x${index}`, plain(index)))), 'E011001')
        await store.write(sid, 'set', [item('a', plain('changed')), item('d', plain(4)), item('e', plain(5))])
        assert.deepEqual(await store.names(sid), ['a', 'b', 'c', 'd', 'e'])
      })

      test('a batch of six into an empty session fails', async (t) => {
        const store = await open(t, { maxAttributesPerSession: 5 })
        const sid = newOwner()
        await rejectsWith(store.write(sid, 'set', Array.from({ length: 6 }, (_, index) => item(`x${index}`, plain(index)))), 'E011001')
        assert.deepEqual(await store.names(sid), [])
        await store.write(sid, 'set', Array.from({ length: 5 }, (_, index) => item(`x${index}`, plain(index))))
        assert.equal((await store.names(sid)).length, 5)
      })

      test('expired attributes do not count', async (t) => {
        const store = await open(t, { maxAttributesPerSession: 5 })
        const sid = newOwner()
        await store.write(sid, 'create', [item('a', plain(1), inMs(150)), item('b', plain(2), inMs(150)), item('c', plain(3)), item('d', plain(4)), item('e', plain(5))])
        await rejectsWith(store.write(sid, 'create', [item('f', plain(6))]), 'E011001')
        await sleep(250)
        await store.write(sid, 'create', [item('f', plain(6)), item('g', plain(7))])
        assert.deepEqual(await store.names(sid), ['c', 'd', 'e', 'f', 'g'])
      })

      test('a large session: ten thousand attributes expiring at once', async (t) => {
        // Well past what Lua's unpack() takes at once (about 8000 values): a store must not
        // depend on it when it purges expired attributes.
        const count = 10_000
        const batch = 2_500
        const store = await open(t, { maxAttributesPerSession: count + 10 })
        const sid = newOwner()
        const names = Array.from({ length: count }, (_, index) => `e${String(index).padStart(5, '0')}`)
        // Long enough for four batches of 2,500 to be written on a loaded machine or a Cluster.
        const lifetime = 3_000
        for (let start = 0; start < count; start += batch) {
          await store.write(sid, 'create', names.slice(start, start + batch).map((n) => item(n, plain(1), inMs(lifetime))))
        }
        await rejectsWith(store.write(sid, 'create', [...names.slice(0, batch - 1).map((n) => item(n, plain(2))), item('new', plain(2))]), 'E009001', names.slice(0, batch - 1))
        assert.equal((await store.names(sid)).length, count)
        await store.write(sid, 'create', [item('stay', plain(1))])
        await sleep(lifetime + 100)
        assert.deepEqual(await store.names(sid), ['stay'])
        await store.write(sid, 'create', [item('e00000', plain(2))])
        assert.deepEqual(await store.names(sid), ['e00000', 'stay'])
      })
    })

    describe('batches', () => {
      test('outcomes, get and exists answer in the order of the items', async (t) => {
        const store = await open(t)
        const sid = newOwner()
        const outcomes = await store.write(sid, 'create', [item('z', plain('z')), item('a', plain('a'), inMs(60_000)), item('m', plain('m'))])
        assert.deepEqual(outcomes.map((outcome) => [outcome.name, outcome.version, outcome.expiresAt === null]), [['z', 1, true], ['a', 1, false], ['m', 1, true]])
        const got = await store.get(sid, ['m', 'missing', 'z', 'a'])
        assert.deepEqual(got.map((attribute) => attribute?.payload ?? null), ['"m"', null, '"z"', '"a"'])
        assert.deepEqual(await store.exists(sid, ['missing', 'a', 'z', 'nope']), [false, true, true, false])
      })

      test('create: one existing name fails the whole batch with E009001', async (t) => {
        const store = await open(t)
        const sid = newOwner()
        await store.write(sid, 'create', [item('b', plain('old'))])
        await rejectsWith(store.write(sid, 'create', [item('a', plain(1)), item('b', plain(2)), item('c', plain(3))]), 'E009001', ['b'])
        assert.deepEqual(await store.names(sid), ['b'])
        const b = await mustGet(store, sid, 'b')
        assert.deepEqual([b.payload, b.version], ['"old"', 1])
      })

      test('update: one missing name fails the whole batch with E009002', async (t) => {
        const store = await open(t)
        const sid = newOwner()
        await store.write(sid, 'create', [item('a', plain(1)), item('c', plain(3))])
        const before = await store.get(sid, ['a', 'c'])
        await rejectsWith(store.write(sid, 'update', [item('a', plain(10), CLEAR), item('b', plain(20)), item('c', plain(30), inMs(100))]), 'E009002', ['b'])
        assert.deepEqual(await store.get(sid, ['a', 'c']), before)
        assert.deepEqual(await store.names(sid), ['a', 'c'])
      })

      test('set: one version mismatch fails the whole batch with E011005', async (t) => {
        const store = await open(t)
        const sid = newOwner()
        await store.write(sid, 'create', [item('a', plain(1)), item('b', plain(2))])
        await store.write(sid, 'update', [item('b', plain(22))])
        const before = await store.get(sid, ['a', 'b'])
        await rejectsWith(store.write(sid, 'set', [
          item('a', plain(10), KEEP, { ifVersion: 1 }), item('b', plain(20), KEEP, { ifVersion: 1 }), item('new', plain(30))
        ]), 'E011005', ['b'])
        assert.deepEqual(await store.get(sid, ['a', 'b']), before)
        assert.deepEqual(await store.names(sid), ['a', 'b'])
      })

      test('a stale item fails the whole batch', async (t) => {
        const store = await open(t)
        const sid = newOwner()
        await store.write(sid, 'create', [item('a', plain(1)), item('b', plain(2))])
        await assert.rejects(store.write(sid, 'set', [
          item('a', plain(10), KEEP, { expectVersion: 1 }), item('b', plain(20), KEEP, { expectVersion: 7 }), item('c', plain(30))
        ]), StaleReadError)
        assert.deepEqual((await store.get(sid, ['a', 'b'])).map((attribute) => attribute?.payload), ['1', '2'])
        assert.deepEqual(await store.names(sid), ['a', 'b'])
      })

      test('the error names every offending attribute', async (t) => {
        const store = await open(t)
        const sid = newOwner()
        await store.write(sid, 'create', [item('a', plain(1)), item('c', plain(3))])
        await rejectsWith(store.write(sid, 'create', [item('a', plain(1)), item('b', plain(2)), item('c', plain(3))]), 'E009001', ['a', 'c'])
        await rejectsWith(store.write(sid, 'update', [item('x', plain(1)), item('a', plain(2)), item('y', plain(3))]), 'E009002', ['x', 'y'])
      })
    })

    describe('delete', () => {
      test('reports which names existed; a missing name is not an error', async (t) => {
        const store = await open(t)
        const sid = newOwner()
        await store.write(sid, 'create', [item('a', plain(1)), item('b', plain(2)), item('c', plain(3))])
        assert.deepEqual(await store.delete(sid, ['a', 'missing', 'c']), [true, false, true])
        assert.deepEqual(await store.names(sid), ['b'])
        assert.deepEqual(await store.delete(sid, ['a']), [false])
        assert.deepEqual(await store.delete(sid, ['b']), [true])
        assert.deepEqual(await store.names(sid), [])
        assert.deepEqual(await store.write(sid, 'create', [item('a', plain('new'))]), [{ name: 'a', version: 1, expiresAt: null }])
      })

      test('with ifVersion: a match deletes; a mismatch or absence fails with E011005', async (t) => {
        const store = await open(t)
        const sid = newOwner()
        await store.write(sid, 'create', [item('a', plain(1))])
        await store.write(sid, 'update', [item('a', plain(2))])
        await rejectsWith(store.delete(sid, ['a'], 1), 'E011005', ['a'])
        await rejectsWith(store.delete(sid, ['a'], 3), 'E011005', ['a'])
        assert.equal((await mustGet(store, sid, 'a')).version, 2)
        assert.deepEqual(await store.delete(sid, ['a'], 2), [true])
        assert.equal(await one(store, sid, 'a'), null)
        await rejectsWith(store.delete(sid, ['a'], 2), 'E011005', ['a'])
      })
    })

    describe('names and exists', () => {
      test('names are sorted by UTF-16 code unit, whatever the insertion order', async (t) => {
        const store = await open(t, { maxAttributesPerSession: 20 })
        const sid = newOwner()
        const names = ['b', 'ｚ', 'a', '😀', 'B', 'ä', '9', '10', 'a b', 'a:b']
        for (const n of names) await store.write(sid, 'create', [item(n, plain(n))])
        // U+1F600 is a surrogate pair starting 0xD83D, so it sorts before U+FF5A; code-point
        // order would put it last.
        assert.deepEqual(await store.names(sid), ['10', '9', 'B', 'a', 'a b', 'a:b', 'b', 'ä', '😀', 'ｚ'])
        assert.deepEqual(await store.exists(sid, names), names.map(() => true))
        assert.deepEqual(await store.exists(sid, ['A', 'c']), [false, false])
      })
    })

    describe('concurrency', () => {
      test('50 parallel writers and 50 read-modify-write increments on one session lose nothing', async (t) => {
        const store = await open(t, { maxAttributesPerSession: 1_000 })
        const sid = newOwner()
        await store.write(sid, 'create', [item('counter', plain(0))])
        let conflicts = 0
        const increment = async (): Promise<void> => {
          for (let attempt = 0; attempt < 500; attempt++) {
            const current = await mustGet(store, sid, 'counter')
            try {
              await store.write(sid, 'update', [item('counter', plain(Number(current.payload) + 1), KEEP, { ifVersion: current.version })])
              return
            } catch (error) {
              if (!(error instanceof PreconditionFailed) || error.code !== 'E011005') throw error
              conflicts++
            }
          }
          throw new Error('increment did not get through in 500 attempts')
        }
        const writers = Array.from({ length: 50 }, async (_, index) => {
          await store.write(sid, 'set', [item(`w${String(index).padStart(2, '0')}`, plain({ index }))])
        })
        const increments = Array.from({ length: 50 }, increment)
        await Promise.all([...writers, ...increments])
        const counter = await mustGet(store, sid, 'counter')
        assert.equal(counter.payload, '50')
        assert.equal(counter.version, 51)
        t.diagnostic(`${conflicts} version conflicts retried`)
        const names = await store.names(sid)
        assert.equal(names.length, 51)
        const written = await store.get(sid, names.filter((n) => n !== 'counter'))
        written.forEach((attribute, index) => {
          assert.deepEqual([attribute?.name, attribute?.payload, attribute?.version], [`w${String(index).padStart(2, '0')}`, JSON.stringify({ index }), 1])
        })
      })

      test('of 20 parallel creates of one name exactly one wins', async (t) => {
        const store = await open(t)
        const sid = newOwner()
        const results = await Promise.allSettled(Array.from({ length: 20 }, async (_, index) => await store.write(sid, 'create', [item('race', plain(index))])))
        const won = results.filter((result) => result.status === 'fulfilled')
        assert.equal(won.length, 1)
        for (const result of results) {
          if (result.status === 'rejected') {
            assert.ok(result.reason instanceof PreconditionFailed)
            assert.equal(result.reason.code, 'E009001')
          }
        }
        const winner = won[0]
        assert.ok(winner?.status === 'fulfilled')
        const stored = await mustGet(store, sid, 'race')
        assert.equal(stored.version, 1)
        assert.equal(stored.payload, String(results.indexOf(winner)))
      })

      test('parallel creates never overshoot the attribute limit', async (t) => {
        const store = await open(t, { maxAttributesPerSession: 5 })
        const sid = newOwner()
        const results = await Promise.allSettled(Array.from({ length: 20 }, async (_, index) => await store.write(sid, 'create', [item(`p${index}`, plain(index))])))
        assert.equal(results.filter((result) => result.status === 'fulfilled').length, 5)
        for (const result of results) {
          if (result.status === 'rejected') {
            assert.ok(result.reason instanceof PreconditionFailed)
            assert.equal(result.reason.code, 'E011001')
          }
        }
        assert.equal((await store.names(sid)).length, 5)
      })
    })
  }

  const open = openStore

  describe(`${name} store contract`, () => {
    for (const scope of ['session', 'user'] as const) {
      describe(`${scope} attributes`, () => scopeContract(scope))
    }

    eventsContract(open)

    describe('session lifecycle: ending sessions, user index, one-time ids, rate counters', () => {
      const ended = (error: unknown) => {
        assert.ok(error instanceof SessionEndedError, `expected SessionEndedError, got ${String(error)}`)
        assert.equal(error.code, 'E007001')
        return true
      }

      test('endSession purges the attributes and every later call on the session fails with E007001', async (t) => {
        const store = await open(t)
        const sid = newSessionId()
        const other = newSessionId()
        await store.write(sessionOwner(sid), 'create', [item('a', plain(1)), item('b', plain(2), inMs(60_000))])
        await store.write(sessionOwner(other), 'create', [item('a', plain(1))])
        assert.equal(await store.isSessionEnded(sid), false)
        await store.endSession(sid, 60_000)
        assert.equal(await store.isSessionEnded(sid), true)
        await assert.rejects(store.get(sessionOwner(sid), ['a']), ended)
        await assert.rejects(store.exists(sessionOwner(sid), ['a']), ended)
        await assert.rejects(store.names(sessionOwner(sid)), ended)
        await assert.rejects(store.delete(sessionOwner(sid), ['a']), ended)
        // No write resurrects it, not even a create of a fresh name.
        await assert.rejects(store.write(sessionOwner(sid), 'set', [item('c', plain(3))]), ended)
        await assert.rejects(store.write(sessionOwner(sid), 'create', [item('a', plain(9))]), ended)
        // Another session is untouched.
        assert.equal((await mustGet(store, sessionOwner(other), 'a')).payload, '1')
        assert.equal(await store.isSessionEnded(other), false)
      })

      test('endSession is idempotent and works on a session that never had attributes', async (t) => {
        const store = await open(t)
        const sid = newSessionId()
        await store.endSession(sid, 60_000)
        await store.endSession(sid, 60_000)
        assert.equal(await store.isSessionEnded(sid), true)
        await assert.rejects(store.write(sessionOwner(sid), 'create', [item('a', plain(1))]), ended)
      })

      test('a tombstone lasts its TTL, then the session id is usable again', async (t) => {
        const store = await open(t)
        const sid = newSessionId()
        await store.write(sessionOwner(sid), 'create', [item('a', plain(1))])
        await store.endSession(sid, 300)
        await assert.rejects(store.get(sessionOwner(sid), ['a']), ended)
        await sleep(450)
        assert.equal(await store.isSessionEnded(sid), false)
        // The purge was real: the attribute did not come back with the tombstone gone.
        assert.deepEqual(await store.get(sessionOwner(sid), ['a']), [null])
      })

      test('endUserSessions ends every indexed session of the user, and only those', async (t) => {
        const store = await open(t)
        const user = newSessionId()
        const stranger = newSessionId()
        const [s1, s2, s3] = [newSessionId(), newSessionId(), newSessionId()]
        const issuedAt = Date.now() - 1000
        await store.indexSession(user, s1, issuedAt, Date.now() + 60_000)
        await store.indexSession(user, s2, issuedAt, Date.now() + 60_000)
        await store.indexSession(stranger, s3, issuedAt, Date.now() + 60_000)
        await store.write(sessionOwner(s1), 'create', [item('a', plain(1))])
        await store.write(sessionOwner(s3), 'create', [item('a', plain(1))])
        assert.equal(await store.endUserSessions(user, 60_000), 2)
        assert.equal(await store.isSessionEnded(s1), true)
        assert.equal(await store.isSessionEnded(s2), true)
        await assert.rejects(store.get(sessionOwner(s1), ['a']), ended)
        assert.equal(await store.isSessionEnded(s3), false)
        assert.equal((await mustGet(store, sessionOwner(s3), 'a')).payload, '1')
        // Again: nothing left in the index, and still idempotent.
        assert.equal(await store.endUserSessions(user, 60_000), 0)
      })

      test('after endUserSessions, tokens issued before it are refused and tokens issued after it are admitted', async (t) => {
        const store = await open(t)
        const user = newSessionId()
        const before = Date.now() - 2000
        await store.endUserSessions(user, 60_000)
        // A session the index never saw (its token was never used) is refused all the same,
        // at admission (a read) and when indexing, which then writes nothing.
        await assert.rejects(store.admitSession(user, before), ended)
        await assert.rejects(store.indexSession(user, newSessionId(), before, Date.now() + 60_000), ended)
        assert.equal(await store.endUserSessions(user, 60_000), 0, 'nothing was indexed')
        // No iat: the service cannot tell, so it refuses while the user tombstone lasts.
        await assert.rejects(store.admitSession(user, null), ended)
        await sleep(20)
        await store.admitSession(user, Date.now() + 1000)
        await store.indexSession(user, newSessionId(), Date.now() + 1000, Date.now() + 60_000)
        // Another user is not affected.
        await store.admitSession(newSessionId(), before)
        await store.indexSession(newSessionId(), newSessionId(), before, Date.now() + 60_000)
      })

      test('an index entry whose token has expired is not ended again', async (t) => {
        const store = await open(t)
        const user = newSessionId()
        const gone = newSessionId()
        const live = newSessionId()
        await store.indexSession(user, gone, Date.now() - 1000, Date.now() + 150)
        await store.indexSession(user, live, Date.now() - 1000, Date.now() + 60_000)
        await sleep(300)
        assert.equal(await store.endUserSessions(user, 60_000), 1)
        assert.equal(await store.isSessionEnded(live), true)
        assert.equal(await store.isSessionEnded(gone), false)
      })

      test('rememberOnce is true the first time only, until the id expires; forgetOnce frees it', async (t) => {
        const store = await open(t)
        const id = newSessionId()
        assert.equal(await store.rememberOnce(id, Date.now() + 60_000), true)
        assert.equal(await store.rememberOnce(id, Date.now() + 60_000), false)
        await store.forgetOnce(id)
        assert.equal(await store.rememberOnce(id, Date.now() + 60_000), true)
        const short = newSessionId()
        assert.equal(await store.rememberOnce(short, Date.now() + 200), true)
        await sleep(350)
        assert.equal(await store.rememberOnce(short, Date.now() + 200), true)
      })

      test('parallel rememberOnce of one id: exactly one wins', async (t) => {
        const store = await open(t)
        const id = newSessionId()
        const results = await Promise.all(Array.from({ length: 20 }, async () => await store.rememberOnce(id, Date.now() + 60_000)))
        assert.equal(results.filter(Boolean).length, 1)
      })

      test('countHits adds the counts of several keys in one call, within a window aligned to the epoch', async (t) => {
        const store = await open(t)
        const [a, b] = [`u:${newSessionId()}`, `ip:${newSessionId()}`]
        const windowMs = 400
        // Start just after a window begins, so that the calls below fall in one window.
        await sleep(windowMs - (Date.now() % windowMs) + 5)
        const first = await store.countHits(windowMs, [[a, 1], [b, 3]])
        assert.deepEqual(first.totals, [1, 3])
        assert.ok(first.ttlMs > 0 && first.ttlMs <= windowMs, `ttl ${first.ttlMs}`)
        assert.deepEqual((await store.countHits(windowMs, [[b, 2], [a, 5]])).totals, [5, 6])
        assert.deepEqual((await store.countHits(windowMs, [[a, 0]])).totals, [6], 'a count of 0 only reads')
        assert.deepEqual((await store.countHits(windowMs, [[`u:${newSessionId()}`, 1]])).totals, [1])
        await sleep(windowMs + 50)
        assert.deepEqual((await store.countHits(windowMs, [[a, 1]])).totals, [1], 'a new window')
      })
    })

    describe('user attributes: no deadline, own idle window, untouched by session ends, erasure', () => {
      test('a user\'s attributes have no deadline: an expiry is not capped by the session max lifetime', async (t) => {
        const store = await open(t, { sessionIdleTtlMs: 1_000, sessionMaxTtlMs: 2_000 })
        const user = userOwner(newSessionId())
        const [written] = await store.write(user, 'create', [item('theme', plain('dark'), inMs(60_000))])
        const created = (await mustGet(store, user, 'theme')).createdAt
        assert.ok(written?.expiresAt !== null && written?.expiresAt !== undefined && written.expiresAt >= created + 59_000)
        await sleep(1_200)
        assert.equal((await mustGet(store, user, 'theme')).payload, '"dark"', 'the session idle window does not apply')
      })

      test('they live for the user idle window, renewed by every call', async (t) => {
        const store = await open(t, { userIdleTtlMs: 600 })
        const user = userOwner(newSessionId())
        await store.write(user, 'create', [item('a', plain(1))])
        for (let step = 0; step < 3; step++) {
          await sleep(350)
          assert.deepEqual(await store.names(user), ['a'])
        }
        await sleep(800)
        assert.deepEqual(await store.names(user), [])
        assert.deepEqual(await store.get(user, ['a']), [null])
      })

      test('a session and a user with the same id are different owners', async (t) => {
        const store = await open(t)
        const id = newSessionId()
        await store.write(sessionOwner(id), 'create', [item('a', plain('session'))])
        await store.write(userOwner(id), 'create', [item('a', plain('user'))])
        assert.equal((await mustGet(store, sessionOwner(id), 'a')).payload, '"session"')
        assert.equal((await mustGet(store, userOwner(id), 'a')).payload, '"user"')
      })

      test('ending a session or every session of the user leaves the user\'s attributes as they are', async (t) => {
        const store = await open(t)
        const userId = newSessionId()
        const sid = newSessionId()
        await store.indexSession(userId, sid, Date.now() - 1000, Date.now() + 60_000)
        await store.write(sessionOwner(sid), 'create', [item('s', plain(1))])
        await store.write(userOwner(userId), 'create', [item('theme', plain('dark')), item('lang', plain('fr'), inMs(60_000))])
        await store.endSession(sid, 60_000)
        assert.equal(await store.endUserSessions(userId, 60_000), 1)
        assert.deepEqual(await store.names(userOwner(userId)), ['lang', 'theme'])
        assert.equal((await mustGet(store, userOwner(userId), 'theme')).version, 1)
        // The user tombstone refuses old tokens; it does not hide the data from a new one.
        await store.write(userOwner(userId), 'update', [item('theme', plain('light'))])
        assert.equal((await mustGet(store, userOwner(userId), 'theme')).version, 2)
      })

      test('a user has an attribute limit of its own', async (t) => {
        const store = await open(t, { maxAttributesPerSession: 1, maxAttributesPerUser: 2 })
        const user = userOwner(newSessionId())
        await store.write(user, 'create', [item('a', plain(1)), item('b', plain(2))])
        await rejectsWith(store.write(user, 'create', [item('c', plain(3))]), 'E011001')
        await rejectsWith(store.write(sessionOwner(newSessionId()), 'create', [item('a', plain(1)), item('b', plain(2))]), 'E011001')
      })

      test('eraseUserAttributes deletes every attribute of the user at once, and only that user\'s', async (t) => {
        const store = await open(t)
        const userId = newSessionId()
        const other = userOwner(newSessionId())
        await store.write(userOwner(userId), 'create', [item('a', plain(1)), item('b', plain(2), inMs(60_000)), item('gone', plain(3), inMs(50))])
        await store.write(other, 'create', [item('a', plain(1))])
        await store.write(sessionOwner(userId), 'create', [item('a', plain(1))])
        await sleep(150)
        assert.equal(await store.eraseUserAttributes(userId), 2, 'live attributes only')
        assert.deepEqual(await store.names(userOwner(userId)), [])
        assert.deepEqual(await store.get(userOwner(userId), ['a', 'b', 'gone']), [null, null, null])
        assert.equal(await store.eraseUserAttributes(userId), 0, 'idempotent')
        assert.deepEqual(await store.names(other), ['a'])
        assert.deepEqual(await store.names(sessionOwner(userId)), ['a'])
        const [again] = await store.write(userOwner(userId), 'create', [item('a', plain(9))])
        assert.equal(again?.version, 1, 'a name starts again at version 1')
      })
    })
  })
}
