import { LRUCache } from 'lru-cache'
import type { Store } from './store/types.ts'

interface Window {
  windowMs: number
  endsAt: number
  /** The store's count for the window when it last answered (every instance's requests). */
  known: number
  /** Requests counted here and not yet added to the store. */
  pending: number
  /** Requests on their way to the store. */
  sending: number
}

export interface BatchedRateCounterOptions {
  /** How often the counts of this instance go to the store. */
  syncMs?: number
  /** Keys (callers, addresses) kept in memory at most. */
  maxKeys?: number
  now?: () => number
}

/**
 * Rate-limit counts shared through the store without a round trip per request. A request is
 * counted here at once and judged on what the store said last plus what this instance has not
 * sent yet; every `syncMs` the unsent counts of all keys go to the store (one call per key, sent
 * together), and its answers bring in what the other instances counted. So the limit holds on one
 * instance exactly, and across N instances to within what they count in one sync interval.
 */
export class BatchedRateCounter {
  readonly #store: Pick<Store, 'countHit'>
  readonly #syncMs: number
  readonly #now: () => number
  readonly #windows: LRUCache<string, Window>
  readonly #dirty = new Set<string>()
  #timer: NodeJS.Timeout | undefined
  #flushing: Promise<void> | undefined

  constructor (store: Pick<Store, 'countHit'>, options: BatchedRateCounterOptions = {}) {
    this.#store = store
    this.#syncMs = options.syncMs ?? 100
    this.#now = options.now ?? Date.now
    this.#windows = new LRUCache({ max: options.maxKeys ?? 100_000 })
  }

  /** Counts one request of `key`; what the rate limiter compares with its maximum. */
  hit (key: string, windowMs: number): { current: number, ttlMs: number } {
    const now = this.#now()
    let window = this.#windows.get(key)
    if (window === undefined || window.endsAt <= now) {
      window = { windowMs, endsAt: now + windowMs, known: 0, pending: 0, sending: 0 }
      this.#windows.set(key, window)
    }
    window.pending++
    this.#dirty.add(key)
    this.#timer ??= setTimeout(() => {
      this.#timer = undefined
      void this.flush()
    }, this.#syncMs).unref()
    return { current: window.known + window.sending + window.pending, ttlMs: window.endsAt - now }
  }

  /** Sends every unsent count to the store now; a failed send is kept for the next one. */
  async flush (): Promise<void> {
    await this.#flushing
    const keys = [...this.#dirty]
    this.#dirty.clear()
    this.#flushing = Promise.all(keys.map(async (key) => {
      const window = this.#windows.get(key)
      if (window === undefined || window.pending === 0) return
      window.sending = window.pending
      window.pending = 0
      try {
        const { current, ttlMs } = await this.#store.countHit(key, window.windowMs, window.sending)
        window.known = current
        window.endsAt = this.#now() + ttlMs
      } catch {
        window.pending += window.sending
        this.#dirty.add(key)
      } finally {
        window.sending = 0
      }
    })).then(() => { this.#flushing = undefined })
    await this.#flushing
  }

  close (): void {
    clearTimeout(this.#timer)
    this.#timer = undefined
  }
}
