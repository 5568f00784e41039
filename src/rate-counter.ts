import { LRUCache } from 'lru-cache'
import type { Store } from './store/types.ts'

interface Window {
  /** Which window of `windowMs` since the epoch: every instance counts into the same one. */
  index: number
  /** The store's total for the window when it last answered (every instance's requests). */
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
 * sent yet; every `syncMs` the unsent counts of every key go to the store in one call, whose
 * answer brings in what the other instances counted. So the limit holds on one instance exactly,
 * and across N instances to within what they count in one sync interval.
 */
export class BatchedRateCounter {
  readonly #store: Pick<Store, 'countHits'>
  readonly #windowMs: number
  readonly #syncMs: number
  readonly #now: () => number
  readonly #windows: LRUCache<string, Window>
  readonly #dirty = new Set<string>()
  #timer: NodeJS.Timeout | undefined
  #flushing: Promise<void> | undefined

  constructor (store: Pick<Store, 'countHits'>, windowMs: number, options: BatchedRateCounterOptions = {}) {
    this.#store = store
    this.#windowMs = windowMs
    this.#syncMs = options.syncMs ?? 100
    this.#now = options.now ?? Date.now
    this.#windows = new LRUCache({ max: options.maxKeys ?? 100_000 })
  }

  /** Counts one request of `key`; what the rate limiter compares with its maximum. */
  hit (key: string): { current: number, ttlMs: number } {
    const now = this.#now()
    const index = Math.floor(now / this.#windowMs)
    let window = this.#windows.get(key)
    if (window === undefined || window.index !== index) {
      window = { index, known: 0, pending: 0, sending: 0 }
      this.#windows.set(key, window)
    }
    window.pending++
    this.#dirty.add(key)
    this.#timer ??= setTimeout(() => {
      this.#timer = undefined
      // flush keeps a failed send for the next one and never rejects.
      this.flush().catch(() => {})
    }, this.#syncMs).unref()
    return { current: window.known + window.sending + window.pending, ttlMs: (index + 1) * this.#windowMs - now }
  }

  /** Sends every unsent count to the store now, in one call; a failed send is kept for the next. */
  async flush (): Promise<void> {
    await this.#flushing
    const index = Math.floor(this.#now() / this.#windowMs)
    const batch: Array<[string, Window]> = []
    for (const key of this.#dirty) {
      const window = this.#windows.get(key)
      // Counts of a window that has ended are of no use to anyone any more.
      if (window === undefined || window.pending === 0 || window.index !== index) continue
      window.sending = window.pending
      window.pending = 0
      batch.push([key, window])
    }
    this.#dirty.clear()
    if (batch.length === 0) return
    this.#flushing = this.#store.countHits(this.#windowMs, batch.map(([key, window]) => [key, window.sending])).then(
      ({ totals }) => {
        batch.forEach(([, window], position) => {
          window.known = totals[position] ?? window.known
          window.sending = 0
        })
      },
      () => {
        for (const [key, window] of batch) {
          window.pending += window.sending
          window.sending = 0
          this.#dirty.add(key)
        }
      }
    ).finally(() => { this.#flushing = undefined })
    await this.#flushing
  }

  close (): void {
    clearTimeout(this.#timer)
    this.#timer = undefined
  }
}
