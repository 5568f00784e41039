import type { Store } from '../store/types.ts'
import type { EventFeed } from './types.ts'

// The event feed of a store: both stores make their own (MemoryStore, RedisStore); a store
// without one (a test double wrapping the Store interface) gets a feed that refuses.

interface WithEventFeed {
  createEventFeed: () => EventFeed
}

function hasEventFeed (store: Store): store is Store & WithEventFeed {
  return typeof (store as Partial<WithEventFeed>).createEventFeed === 'function'
}

/** The store's event feed; it opens nothing until the first subscription. */
export function createEventFeed (store: Store): EventFeed {
  if (hasEventFeed(store)) return store.createEventFeed()
  return {
    subscribe: async () => { throw new Error(`this ${store.kind} store records no change events`) },
    close: async () => {}
  }
}
