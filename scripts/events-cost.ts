import { randomBytes } from 'node:crypto'
import { fileURLToPath } from 'node:url'
import { setTimeout as sleep } from 'node:timers/promises'
import { createEventFeed } from '../src/events/feed.ts'
import { RedisStore } from '../src/store/redis-store.ts'
import { sessionOwner, type Owner, type WriteItem } from '../src/store/types.ts'
import { loadRedisFixture } from './bench/redis-fixture.ts'

// What change events (issue 16) cost the write path and Redis memory, same run, A/B: the same
// write script with events off, on, and on with a subscriber for every session (each write then
// reaches one subscriber connection). Alternating rounds; Redis CPU per write from INFO
// commandstats (the EVALSHA's own time, commands inside the script included), throughput at 50
// writes in flight from this process. Memory as BENCHMARKS.md measures it: used_memory before
// and after sessions of 100 attributes of 100-byte values, and sessions of one.
//   node scripts/events-cost.ts [--rounds 5] [--writes 4000]

const ROOT = fileURLToPath(new URL('../', import.meta.url))
const argument = (name: string, fallback: number) => {
  const index = process.argv.indexOf(`--${name}`)
  return index === -1 ? fallback : Number(process.argv[index + 1])
}
const ROUNDS = argument('rounds', 5)
const WRITES = argument('writes', 4000)
const IN_FLIGHT = 50
const SESSIONS = 500
const VALUE_100 = JSON.stringify('x'.repeat(98))
const LIMITS = { sessionIdleTtlMs: 3_600_000, sessionMaxTtlMs: 7_200_000, maxAttributesPerSession: 200 }

const newSession = (): Owner => sessionOwner(randomBytes(16).toString('base64url').slice(0, 22))
const item = (name: string): WriteItem => ({ name, value: { kind: 'plain', plain: VALUE_100 }, expiry: { kind: 'keep' } })

function info (text: string, field: string): number {
  return Number(new RegExp(`^${field}:(\\d+)`, 'm').exec(text)?.[1] ?? NaN)
}

function evalshaStats (text: string): { calls: number, usec: number } {
  const match = /^cmdstat_evalsha:calls=(\d+),usec=(\d+)/m.exec(text)
  return { calls: Number(match?.[1] ?? 0), usec: Number(match?.[2] ?? 0) }
}

const fixture = await loadRedisFixture(ROOT)
const redis = await fixture.RedisServer.start()
const admin = redis.client()
const open = (enabled: boolean) => new RedisStore({ url: redis.url, keyPrefix: `${enabled ? 'on' : 'off'}-${randomBytes(3).toString('hex')}:`, commandTimeoutMs: 5_000, connectTimeoutMs: 5_000, ...LIMITS, events: { enabled } })

async function writeRound (store: RedisStore, owners: Owner[], batch: number): Promise<{ perSecond: number, redisMicros: number }> {
  await admin.config('RESETSTAT')
  const items = Array.from({ length: batch }, (_, index) => item(`a${index}`))
  let next = 0
  const started = process.hrtime.bigint()
  await Promise.all(Array.from({ length: IN_FLIGHT }, async () => {
    while (next < WRITES) {
      const index = next++
      await store.write(owners[index % owners.length]!, 'set', items)
    }
  }))
  const seconds = Number(process.hrtime.bigint() - started) / 1e9
  const stats = evalshaStats(await admin.info('commandstats'))
  return { perSecond: WRITES / seconds, redisMicros: stats.usec / stats.calls }
}

const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!

const variants = {
  off: { store: open(false), owners: Array.from({ length: SESSIONS }, newSession) },
  on: { store: open(true), owners: Array.from({ length: SESSIONS }, newSession) },
  'on, subscribed': { store: open(true), owners: Array.from({ length: SESSIONS }, newSession) }
}
const feed = createEventFeed(variants['on, subscribed'].store)
let delivered = 0
for (const owner of variants['on, subscribed'].owners) await feed.subscribe(owner, { onEvent: () => { delivered++ } })

for (const batch of [1, 20]) {
  const results = new Map<string, Array<{ perSecond: number, redisMicros: number }>>()
  for (const variant of Object.values(variants)) await writeRound(variant.store, variant.owners, batch) // warm-up
  for (let round = 0; round < ROUNDS; round++) {
    for (const [name, variant] of Object.entries(variants)) {
      const result = await writeRound(variant.store, variant.owners, batch)
      results.set(name, [...(results.get(name) ?? []), result])
    }
  }
  console.log(`\nwrite of ${batch} attribute(s) of 100 bytes, ${WRITES} writes x ${ROUNDS} rounds, ${IN_FLIGHT} in flight (median; Redis also the least of the rounds, the least disturbed)`)
  const base = results.get('off')!
  const least = (values: number[]) => Math.min(...values)
  for (const [name, rows] of results) {
    const perSecond = median(rows.map((row) => row.perSecond))
    const micros = median(rows.map((row) => row.redisMicros))
    const minMicros = least(rows.map((row) => row.redisMicros))
    console.log(`  ${name.padEnd(15)} ${perSecond.toFixed(0).padStart(7)} writes/s (${(perSecond / median(base.map((row) => row.perSecond))).toFixed(3)})   Redis ${micros.toFixed(1).padStart(6)} µs per write (${(micros / median(base.map((row) => row.redisMicros))).toFixed(2)} x), least ${minMicros.toFixed(1)} µs (${(minMicros / least(base.map((row) => row.redisMicros))).toFixed(2)} x)`)
  }
}
await sleep(200)
console.log(`\nevents delivered to the subscribed variant's feed: ${delivered}`)
await feed.close()
for (const variant of Object.values(variants)) await variant.store.close()

/** Bytes per attribute; `watched`: every session has a subscriber (whose subscription creates its event list). */
async function memory (enabled: boolean, sessions: number, perSession: number, watched = false): Promise<number> {
  await admin.flushall()
  await sleep(100)
  const store = open(enabled)
  const owners = Array.from({ length: sessions }, newSession)
  const memoryFeed = createEventFeed(store)
  const before = info(await admin.info('memory'), 'used_memory')
  if (watched) for (const owner of owners) await memoryFeed.subscribe(owner, { onEvent: () => {} })
  const items = Array.from({ length: perSession }, (_, index) => item(`m${String(index).padStart(3, '0')}`))
  let next = 0
  await Promise.all(Array.from({ length: 16 }, async () => {
    while (next < sessions) await store.write(owners[next++]!, 'set', items)
  }))
  await sleep(200)
  const after = info(await admin.info('memory'), 'used_memory')
  await memoryFeed.close()
  await store.close()
  return (after - before) / (sessions * perSession)
}

console.log('\nRedis memory per attribute (used_memory delta / attributes)')
for (const [sessions, perSession] of [[1000, 100], [10_000, 1]] as const) {
  const off = await memory(false, sessions, perSession)
  const on = await memory(true, sessions, perSession)
  const watched = await memory(true, sessions, perSession, true)
  console.log(`  ${sessions} sessions of ${perSession}: off ${off.toFixed(1)} B, on ${on.toFixed(1)} B (${(on - off).toFixed(1)} B), on and watched ${watched.toFixed(1)} B (+${(watched - off).toFixed(1)} B; includes the subscriber connection's buffers)`)
}
admin.disconnect()
await redis.close()
