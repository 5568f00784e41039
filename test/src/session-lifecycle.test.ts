import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import { SessionLifecycle } from '../../src/session-lifecycle.ts'
import { MemoryStore } from '../../src/store/memory-store.ts'
import type { Identity } from '../../src/ust.ts'

const LIMITS = { sessionIdleTtlMs: 60_000, sessionMaxTtlMs: 120_000, maxAttributesPerSession: 10 }

function identity (overrides: Partial<Identity> = {}): Identity {
  return {
    issuer: 'https://idp.test',
    subject: 'alice',
    sessionId: 'session-1',
    userId: 'user-1',
    roles: [],
    isSuperUser: false,
    expiresAt: Date.now() + 60_000,
    issuedAt: Date.now() - 1000,
    ...overrides
  }
}

function lifecycle () {
  const store = new MemoryStore(LIMITS)
  const forgotten: unknown[] = []
  return { store, forgotten, sessions: new SessionLifecycle(store, { forget: (ended) => forgotten.push(ended) }, 60_000) }
}

describe('SessionLifecycle', () => {
  test('recordUse indexes a session once; a logout by sub then ends it', async (t) => {
    const { store, sessions } = lifecycle()
    t.after(() => store.close())
    const alice = identity()
    await sessions.recordUse(alice)
    assert.equal(alice.indexed, true)
    const ended = await sessions.endUser('user-1')
    assert.deepEqual(ended, { kind: 'user', userId: 'user-1', sessions: 1 })
    assert.equal(await store.isSessionEnded('session-1'), true)
  })

  test('a logout by sub that raced the request: recordUse ends the session instead of indexing it', async (t) => {
    const { store, sessions, forgotten } = lifecycle()
    t.after(() => store.close())
    const alice = identity({ sessionId: 'raced' })
    // The token was admitted before the logout; the logout ran before the request finished.
    await store.admitSession('user-1', alice.issuedAt)
    await sessions.endUser('user-1')
    await sessions.recordUse(alice)
    assert.equal(await store.isSessionEnded('raced'), true)
    assert.deepEqual(forgotten.at(-1), { sessionId: 'raced' })
    assert.equal(await store.endUserSessions('user-1', 60_000), 0, 'it was not indexed')
  })

  test('endSession forgets the session in the local token cache', async (t) => {
    const { store, sessions, forgotten } = lifecycle()
    t.after(() => store.close())
    assert.deepEqual(await sessions.endSession('s-9'), { kind: 'session', sessionId: 's-9' })
    assert.deepEqual(forgotten, [{ sessionId: 's-9' }])
  })
})
