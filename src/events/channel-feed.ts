import { SessionEndedError, type Owner } from '../store/types.ts'
import { compareEventIds, type EventLog, type EventReplay } from './event-log.ts'
import type { AttributeEvent, EventFeed, EventSubscription, SubscribeOptions } from './types.ts'

// The part of a feed that is the same for every store: one live channel per owner, shared by
// the owner's subscriptions (counted), and for each subscription replay-then-live without gap
// or duplicate. A subscription holds live events back while it catches up from the log, then
// delivers each event whose id is above the last one it delivered, so an event that came both
// ways is delivered once. A store's feed says how to listen on a channel (listen/unlisten),
// hands in live events (receive), and calls resume() after a lapse in listening (a dropped
// connection), which replays from each subscription's last id.

class Subscription implements EventSubscription {
  replayed = 0
  resync = false
  /** The last id delivered, or where delivery starts; undefined until the first catch-up says where the log ends. */
  last: string | undefined
  #held: AttributeEvent[] | undefined = []
  #closed = false
  readonly #options: SubscribeOptions
  readonly #onClose: (subscription: Subscription) => void

  constructor (options: SubscribeOptions, onClose: (subscription: Subscription) => void) {
    this.#options = options
    this.#onClose = onClose
    this.last = options.since
  }

  get closed (): boolean {
    return this.#closed
  }

  /** Whether live events are being held until a catch-up releases them. */
  get holding (): boolean {
    return this.#held !== undefined
  }

  /** Live events are held from now until release(). */
  hold (): void {
    this.#held ??= []
  }

  receive (events: AttributeEvent[]): void {
    if (this.#closed) return
    if (this.#held !== undefined) this.#held.push(...events)
    else for (const event of events) this.#deliver(event)
  }

  /** Delivers replayed events, then the held live ones, and lets live events through again. */
  release (replayed: AttributeEvent[]): void {
    const held = this.#held ?? []
    this.#held = undefined
    for (const event of replayed) this.#deliver(event)
    for (const event of held) this.#deliver(event)
  }

  resynced (): void {
    if (this.#closed) return
    try {
      this.#options.onResync?.()
    } catch {
      // A subscriber's callback failing must not stop delivery to the others.
    }
  }

  #deliver (event: AttributeEvent): void {
    if (this.#closed || (this.last !== undefined && compareEventIds(event.id, this.last) <= 0)) return
    this.last = event.id
    try {
      this.#options.onEvent(event)
    } catch {
      // As above.
    }
  }

  close (): void {
    if (this.#closed) return
    this.#closed = true
    this.#onClose(this)
  }
}

interface Channel {
  owner: Owner
  subscriptions: Set<Subscription>
  /** Settles when live events of the channel are being received. */
  listening: Promise<void> | undefined
  /** Counts lapses: a catch-up that began before one must not release its subscription. */
  lapses: number
  /** Between a lapse and its resume: no subscription is released. */
  lapsed: boolean
  /** The next expiry of an attribute of the owner (store clock), its timer, and local minus store clock. */
  expiry: { at: number | null, timer: NodeJS.Timeout | undefined, skew: number }
}

export abstract class ChannelFeed implements EventFeed {
  readonly #channels = new Map<string, Channel>()
  readonly #log: EventLog
  #closed = false

  constructor (log: EventLog) {
    this.#log = log
  }

  /** The channel (and key) of an owner's events. */
  protected abstract channelOf (owner: Owner): string
  /** Starts receiving the channel's live events (receive()); resolves once it does. */
  protected abstract listen (channel: string, owner: Owner): Promise<void>
  protected abstract unlisten (channel: string): void

  /** Subscriptions open, over all owners (metrics, tests). */
  get size (): number {
    let count = 0
    for (const channel of this.#channels.values()) count += channel.subscriptions.size
    return count
  }

  async subscribe (owner: Owner, options: SubscribeOptions): Promise<EventSubscription> {
    if (this.#closed) throw new Error('the event feed is closed')
    const key = this.channelOf(owner)
    let channel = this.#channels.get(key)
    if (channel === undefined) {
      channel = { owner, subscriptions: new Set(), listening: undefined, lapses: 0, lapsed: false, expiry: { at: null, timer: undefined, skew: 0 } }
      this.#channels.set(key, channel)
    }
    const first = channel.listening === undefined
    const subscription = new Subscription(options, (closed) => { this.#drop(key, closed) })
    channel.subscriptions.add(subscription)
    try {
      channel.listening ??= this.listen(key, owner)
      await channel.listening
      if (first) this.#purge(key, channel)
      const replay = await this.#catchUp(channel, subscription, true)
      subscription.resync = replay.resync
      subscription.replayed = replay.events.length
      return subscription
    } catch (error) {
      if (channel.subscriptions.size === 1) channel.listening = undefined
      subscription.close()
      throw error
    }
  }

  /**
   * Replays a subscription's missed events from its last id and releases it to live delivery;
   * one whose position is no longer retained goes on from the log's end (onResync, unless this
   * is its first catch-up, whose caller learns it from `resync`). The first release waits for
   * the next turn of the event loop, so the subscriber has its subscription before any event.
   */
  async #catchUp (channel: Channel, subscription: Subscription, first: boolean): Promise<EventReplay> {
    const lapses = channel.lapses
    const replay = await this.#log.readEvents(channel.owner, subscription.last)
    if (replay.resync || subscription.last === undefined) subscription.last = replay.last
    const release = () => {
      // A lapse since the read: the resume that follows it catches up again.
      if (channel.lapses !== lapses || channel.lapsed || subscription.closed) return
      if (replay.resync && !first) subscription.resynced()
      subscription.release(replay.resync ? [] : replay.events)
    }
    if (first) setImmediate(release)
    else release()
    return replay
  }

  /** Live events of a channel, as they arrive. */
  protected receive (key: string, events: AttributeEvent[]): void {
    const channel = this.#channels.get(key)
    if (channel === undefined) return
    for (const subscription of channel.subscriptions) subscription.receive(events)
    for (const event of events) {
      if (typeof event.expiresAt === 'number' && (channel.expiry.at === null || event.expiresAt < channel.expiry.at)) {
        channel.expiry.at = event.expiresAt
        this.#armExpiry(key, channel)
      }
    }
  }

  // Attributes expire lazily (D73): for a watched owner the feed asks the store to purge at the
  // next expiry time, so that `expired` comes on time rather than at the next call. Every
  // instance watching the owner asks; the first purge records the events, the others find
  // nothing. Nothing is renewed.
  #armExpiry (key: string, channel: Channel): void {
    clearTimeout(channel.expiry.timer)
    channel.expiry.timer = undefined
    if (channel.expiry.at === null) return
    const delayMs = Math.max(10, channel.expiry.at - (Date.now() - channel.expiry.skew) + 5)
    channel.expiry.timer = setTimeout(() => { this.#purge(key, channel) }, Math.min(delayMs, 2 ** 31 - 1))
    channel.expiry.timer.unref()
  }

  #purge (key: string, channel: Channel): void {
    if (this.#channels.get(key) !== channel) return
    this.#log.purgeExpired(channel.owner).then(({ nextExpiry, now }) => {
      channel.expiry.skew = Date.now() - now
      channel.expiry.at = nextExpiry
      this.#armExpiry(key, channel)
    }, (error: unknown) => {
      if (error instanceof SessionEndedError) return
      // The store cannot answer now: try again in a second.
      channel.expiry.skew = 0
      channel.expiry.at = Date.now() + 1000
      this.#armExpiry(key, channel)
    })
  }

  /** The owner of a channel listened to. */
  protected ownerOf (key: string): Owner | undefined {
    return this.#channels.get(key)?.owner
  }

  /** Listening to a channel lapsed (or is about to): hold its live events until resume(). */
  protected lapse (key: string): void {
    const channel = this.#channels.get(key)
    if (channel === undefined) return
    channel.lapses++
    channel.lapsed = true
    for (const subscription of channel.subscriptions) subscription.hold()
  }

  /**
   * Listening to a channel works again: each held subscription replays from the last id it
   * delivered (#catchUp). Throws when the log cannot be read; the caller tries again later,
   * the subscriptions still holding.
   */
  protected async resume (key: string): Promise<void> {
    const channel = this.#channels.get(key)
    if (channel === undefined) return
    channel.lapsed = false
    const held = [...channel.subscriptions].filter((subscription) => subscription.holding)
    await Promise.all(held.map(async (subscription) => await this.#catchUp(channel, subscription, false)))
  }

  #drop (key: string, subscription: Subscription): void {
    const channel = this.#channels.get(key)
    if (channel === undefined || !channel.subscriptions.delete(subscription)) return
    if (channel.subscriptions.size === 0) {
      clearTimeout(channel.expiry.timer)
      this.#channels.delete(key)
      this.unlisten(key)
    }
  }

  async close (): Promise<void> {
    this.#closed = true
    for (const channel of [...this.#channels.values()]) {
      for (const subscription of [...channel.subscriptions]) subscription.close()
    }
  }
}
