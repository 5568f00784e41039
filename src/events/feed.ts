import { MemoryStore } from '../store/memory-store.ts'
import { RedisStore } from '../store/redis-store.ts'
import type { Store } from '../store/types.ts'
import type { EventFeed } from './types.ts'

/** The event feed of a store (each store kind has its own); it opens nothing until the first subscription. */
export function createEventFeed (store: Store): EventFeed {
  if (store instanceof RedisStore || store instanceof MemoryStore) return store.createEventFeed()
  throw new Error(`no event feed for a ${store.kind} store`)
}
