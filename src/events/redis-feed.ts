import { Cluster, type Redis } from 'ioredis'
import { StoreUnavailableError } from '../errors.ts'
import type { RedisStore } from '../store/redis-store.ts'
import { createSubscriber, type HostPort } from '../store/redis-topology.ts'
import type { Owner } from '../store/types.ts'
import { ChannelFeed } from './channel-feed.ts'
import { eventsFromMessage } from './event-log.ts'

// The event feed of the Redis store: each owner's events arrive live on the sharded channel
// `<prefix>{<owner tag>}:e` (SPUBLISH by the scripts, events.lua), and are replayed from the
// owner's event list (replay.lua). One subscriber connection per instance (per master on a
// Cluster, to the node that owns the channel's slot), opened on the first subscription, shared
// by every channel it serves; a channel is subscribed once however many subscribe to it.
// A connection that ends (killed, a failover, a restart) is replaced, never reconnected in
// place: its channels hold their live events, are subscribed again on the node that now owns
// them, and each subscription replays from the last id it delivered (ChannelFeed.resume), so a
// lapse loses nothing unless the list no longer reaches back that far (then onResync). On a
// Cluster, a channel whose slot moved to another master (the store's client reloads the slot
// map every second) is moved the same way.

const PRIMARY = 'primary'
const REPAIR_EVERY_MS = 1000
const REPAIR_SOON_MS = 100

export class RedisEventFeed extends ChannelFeed {
  readonly #store: RedisStore
  /** Subscriber connections by placement: PRIMARY, or a Cluster master's `host:port`. */
  readonly #connections = new Map<string, Promise<Redis>>()
  /** Each channel listened to: the placement it is subscribed on, or undefined while it is not. */
  readonly #placed = new Map<string, string | undefined>()
  /** Channels subscribed again whose subscriptions still have to replay what they missed. */
  readonly #toResume = new Set<string>()
  #timer: NodeJS.Timeout | undefined
  #soon: NodeJS.Timeout | undefined
  #repairing = false
  #closed = false

  constructor (store: RedisStore) {
    super(store)
    this.#store = store
  }

  protected channelOf (owner: Owner): string {
    return this.#store.eventChannelOf(owner)
  }

  protected async listen (channel: string): Promise<void> {
    this.#placed.set(channel, undefined)
    try {
      // The store's client knows where a channel lives once it is connected (a Cluster's slot map).
      if (this.#store.redis.status !== 'ready') await this.#store.ping()
      await this.#place(channel)
    } catch (error) {
      this.#placed.delete(channel)
      throw error instanceof StoreUnavailableError ? error : new StoreUnavailableError(error)
    }
    if (this.#timer === undefined) {
      this.#timer = setInterval(() => { this.#repair() }, REPAIR_EVERY_MS)
      this.#timer.unref()
    }
  }

  protected unlisten (channel: string): void {
    const placement = this.#placed.get(channel)
    this.#placed.delete(channel)
    this.#toResume.delete(channel)
    if (placement !== undefined) this.#connections.get(placement)?.then((connection) => connection.sunsubscribe(channel)).catch(() => {})
  }

  /** Where a channel must be subscribed: the primary, or the master that owns its slot. */
  #placementOf (channel: string): { key: string, node?: HostPort } {
    const redis = this.#store.redis
    if (!(redis instanceof Cluster)) return { key: PRIMARY }
    const nodeKey = redis.slots[keySlot(channel)]?.[0]
    if (nodeKey === undefined) throw new StoreUnavailableError(new Error('no master serves the slot of the event channel'))
    const colon = nodeKey.lastIndexOf(':')
    return { key: nodeKey, node: { host: nodeKey.slice(0, colon), port: Number(nodeKey.slice(colon + 1)) } }
  }

  #connection (placement: { key: string, node?: HostPort }): Promise<Redis> {
    let connection = this.#connections.get(placement.key)
    if (connection === undefined) {
      const subscriber = createSubscriber(this.#store.connection, placement.node)
      subscriber.on('error', () => {})
      subscriber.on('smessage', (channel: string, message: string) => { this.#message(channel, message) })
      subscriber.once('end', () => { this.#ended(placement.key, connection!) })
      connection = subscriber.connect().then(() => subscriber, (error: unknown) => {
        if (this.#connections.get(placement.key) === connection) this.#connections.delete(placement.key)
        subscriber.disconnect()
        throw error
      })
      this.#connections.set(placement.key, connection)
    }
    return connection
  }

  async #place (channel: string): Promise<void> {
    const placement = this.#placementOf(channel)
    const connection = await this.#connection(placement)
    await withTimeout(connection.ssubscribe(channel), this.#store.connection.commandTimeoutMs)
    if (!this.#placed.has(channel)) {
      // Nobody listens any more: the last subscription closed while this was under way.
      connection.sunsubscribe(channel).catch(() => {})
      return
    }
    this.#placed.set(channel, placement.key)
  }

  #message (channel: string, message: string): void {
    const owner = this.ownerOf(channel)
    if (owner === undefined) return
    let events
    try {
      events = eventsFromMessage(owner, message)
    } catch {
      return
    }
    this.receive(channel, events)
  }

  /** A subscriber connection ended: its channels hold, and are placed again shortly. */
  #ended (key: string, connection: Promise<Redis>): void {
    if (this.#connections.get(key) === connection) this.#connections.delete(key)
    if (this.#closed) return
    for (const [channel, placement] of this.#placed) {
      if (placement !== key) continue
      this.lapse(channel)
      this.#placed.set(channel, undefined)
    }
    this.#repairSoon()
  }

  #repairSoon (): void {
    if (this.#soon !== undefined || this.#closed) return
    this.#soon = setTimeout(() => {
      this.#soon = undefined
      this.#repair()
    }, REPAIR_SOON_MS)
    this.#soon.unref()
  }

  /** Subscribes again every channel that is not (or no longer on the right node), then replays. */
  #repair (): void {
    if (this.#repairing || this.#closed) return
    this.#repairing = true
    this.#repairChannels().catch(() => {}).finally(() => {
      this.#repairing = false
      if (this.#toResume.size > 0 || [...this.#placed.values()].includes(undefined)) this.#repairSoon()
    })
  }

  async #repairChannels (): Promise<void> {
    for (const [channel, placement] of [...this.#placed]) {
      let wanted: string
      try {
        wanted = this.#placementOf(channel).key
      } catch {
        continue
      }
      if (placement === wanted) continue
      if (placement !== undefined) {
        // The slot moved to another master: listen there, and replay what came meanwhile.
        this.lapse(channel)
        this.#placed.set(channel, undefined)
        this.#connections.get(placement)?.then((connection) => connection.sunsubscribe(channel)).catch(() => {})
      }
      try {
        await this.#place(channel)
        this.#toResume.add(channel)
      } catch (error) {
        if (this.#store.redis instanceof Cluster && /^(MOVED|ASK) /.test(String((error as Error).message))) this.#store.redis.refreshSlotsCache()
      }
    }
    for (const channel of [...this.#toResume]) {
      try {
        await this.resume(channel)
        this.#toResume.delete(channel)
      } catch {
        // Redis cannot answer now: the subscriptions keep holding, the next round tries again.
      }
    }
  }

  async close (): Promise<void> {
    this.#closed = true
    await super.close()
    clearInterval(this.#timer)
    clearTimeout(this.#soon)
    const connections = [...this.#connections.values()]
    this.#connections.clear()
    await Promise.all(connections.map(async (connection) => {
      try {
        const subscriber = await connection
        await subscriber.quit().catch(() => { subscriber.disconnect() })
      } catch {
        // It never connected.
      }
    }))
  }
}

async function withTimeout<T> (promise: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  try {
    return await Promise.race([promise, new Promise<never>((_resolve, reject) => {
      timer = setTimeout(() => { reject(new Error(`no answer from Redis within ${ms} ms`)) }, ms)
    })])
  } finally {
    clearTimeout(timer)
  }
}

// The Cluster slot of a key: CRC16 (XMODEM) of its hash tag, modulo 16384, as Redis computes it.
const CRC16_TABLE = Array.from({ length: 256 }, (_, byte) => {
  let crc = byte << 8
  for (let bit = 0; bit < 8; bit++) crc = crc & 0x8000 ? ((crc << 1) ^ 0x1021) & 0xffff : (crc << 1) & 0xffff
  return crc
})

export function keySlot (key: string): number {
  let bytes = Buffer.from(key)
  const open = bytes.indexOf('{')
  if (open !== -1) {
    const close = bytes.indexOf('}', open + 1)
    if (close > open + 1) bytes = bytes.subarray(open + 1, close)
  }
  let crc = 0
  for (const byte of bytes) crc = ((crc << 8) & 0xffff) ^ CRC16_TABLE[((crc >> 8) ^ byte) & 0xff]!
  return crc % 16384
}
