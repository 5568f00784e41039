import assert from 'node:assert/strict'
import type { Redis } from 'ioredis'

// What a Redis holds, read key by key with a command that suits each type, so that two
// snapshots compare with deepEqual. Tests only: KEYS is fine on a Redis of a few dozen keys.

export interface KeySnapshot {
  type: string
  /** string: the value; hash: field -> value; zset: member -> score; set/list: members. */
  value: unknown
  /** -1 means no TTL: a key the service left without one. */
  pttl: number
}

export interface Snapshot {
  /** Redis time (epoch ms) when the snapshot was taken. */
  at: number
  keys: Record<string, KeySnapshot>
}

const RECORD_EXPIRY = /^\d+:\d+:\d+:(\d*):[ep]:/

async function redisNow (redis: Redis): Promise<number> {
  const [seconds, micros] = await redis.time()
  return Number(seconds) * 1000 + Math.floor(Number(micros) / 1000)
}

export async function snapshot (redis: Redis): Promise<Snapshot> {
  const at = await redisNow(redis)
  const names = (await redis.keys('*')).sort()
  const typing = redis.pipeline()
  for (const name of names) typing.type(name)
  const types = ((await typing.exec()) ?? []).map(([, type]) => String(type))
  const reading = redis.pipeline()
  names.forEach((name, index) => {
    switch (types[index]) {
      case 'string': reading.get(name); break
      case 'hash': reading.hgetall(name); break
      case 'zset': reading.zrange(name, 0, -1, 'WITHSCORES'); break
      case 'set': reading.smembers(name); break
      case 'list': reading.lrange(name, 0, -1); break
      default: reading.dumpBuffer(name)
    }
    reading.pttl(name)
  })
  const replies = (await reading.exec()) ?? []
  const keys: Record<string, KeySnapshot> = {}
  names.forEach((name, index) => {
    const type = types[index]!
    if (type === 'none') return // expired between KEYS and TYPE
    const [error, raw] = replies[index * 2]!
    if (error !== null) throw error
    let value: unknown = raw
    if (type === 'zset') {
      const flat = raw as string[]
      const scores: Record<string, string> = {}
      for (let i = 0; i < flat.length; i += 2) scores[flat[i]!] = flat[i + 1]!
      value = scores
    } else if (type === 'set') {
      value = [...(raw as string[])].sort()
    } else if (Buffer.isBuffer(raw)) {
      value = raw.toString('hex')
    }
    keys[name] = { type, value, pttl: Number(replies[index * 2 + 1]![1]) }
  })
  return { at, keys }
}

/**
 * The snapshot as the service sees it at time `now`: attributes whose own expiry has passed
 * are dropped (every script purges them first, which is not "storing" anything), and TTLs
 * are left out (reads renew a session's TTL by design).
 */
export function liveView (snap: Snapshot, now: number): Record<string, { type: string, value: unknown }> {
  const view: Record<string, { type: string, value: unknown }> = {}
  for (const [name, key] of Object.entries(snap.keys)) {
    let value = key.value
    if (key.type === 'hash' && name.endsWith(':a')) {
      value = Object.fromEntries(Object.entries(value as Record<string, string>).filter(([, record]) => {
        const expiry = RECORD_EXPIRY.exec(record)?.[1]
        return expiry === undefined || expiry === '' || Number(expiry) > now
      }))
    } else if (key.type === 'zset' && name.endsWith(':x')) {
      value = Object.fromEntries(Object.entries(value as Record<string, string>).filter(([, score]) => Number(score) > now))
    }
    view[name] = { type: key.type, value }
  }
  return view
}

/** Fails when `after` holds anything that `before` did not, or lost or changed anything. */
export function assertUnchanged (before: Snapshot, after: Snapshot, what: string): void {
  // Compare both at the later time, so an attribute that expired in between is not a change.
  const now = after.at
  const left = liveView(before, now)
  const right = liveView(after, now)
  // Keys that hold nothing live any more (a hash emptied by expiry) may vanish on a purge.
  for (const view of [left, right]) {
    for (const [name, key] of Object.entries(view)) {
      if (key.value !== null && typeof key.value === 'object' && Object.keys(key.value).length === 0) delete view[name]
    }
  }
  assert.deepEqual(right, left, `the store changed on a rejected request: ${what}`)
}

/** Every key carries a TTL (docs/KEYS.md). */
export function assertAllKeysExpire (snap: Snapshot, what: string): void {
  const eternal = Object.entries(snap.keys).filter(([, key]) => key.pttl === -1).map(([name]) => name)
  assert.deepEqual(eternal, [], `keys without a TTL after ${what}`)
}
