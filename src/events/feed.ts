import type { Store } from '../store/types.ts'
import type { EventFeed } from './types.ts'

// The event feed of a store: both stores make their own (MemoryStore, RedisStore); a store
// without one (a Store implementation of someone else's) gets a feed that refuses with
// NoEventFeedError, which the transports answer as "not supported".

interface WithEventFeed {
  createEventFeed: () => EventFeed
}

function hasEventFeed (store: Store): store is Store & WithEventFeed {
  return typeof (store as Partial<WithEventFeed>).createEventFeed === 'function'
}

/** Thrown by the feed of a store that records no change events. */
export class NoEventFeedError extends Error {
  constructor (kind: string) {
    super(`this ${kind} store records no change events`)
    this.name = 'NoEventFeedError'
  }
}

/** The store's event feed; it opens nothing until the first subscription. */
export function createEventFeed (store: Store): EventFeed {
  if (hasEventFeed(store)) return store.createEventFeed()
  return {
    subscribe: async () => { throw new NoEventFeedError(store.kind) },
    close: async () => {}
  }
}
