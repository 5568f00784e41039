import type { MemoryStore } from '../store/memory-store.ts'
import type { Owner } from '../store/types.ts'
import { ChannelFeed } from './channel-feed.ts'

// The event feed of the embedded store: the store hands each owner's events to its listeners
// as it records them, in the same call as the change; replay reads the store's event log.

export class MemoryEventFeed extends ChannelFeed {
  readonly #store: MemoryStore
  readonly #stops = new Map<string, () => void>()

  constructor (store: MemoryStore) {
    super(store)
    this.#store = store
  }

  protected channelOf (owner: Owner): string {
    return `${owner.scope}:${owner.id}`
  }

  protected async listen (channel: string, owner: Owner): Promise<void> {
    if (this.#stops.has(channel)) return
    this.#stops.set(channel, this.#store.listen(owner, (events) => { this.receive(channel, events) }))
  }

  protected unlisten (channel: string): void {
    this.#stops.get(channel)?.()
    this.#stops.delete(channel)
  }
}
