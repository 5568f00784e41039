import type { Owner } from '../store/types.ts'

// Change events of attributes (issue 16): the contract between the store, which records an
// event atomically with each write (Redis: in the write's own script and slot), and the
// transports that deliver them (the JSON-RPC WebSocket's `core.subscribe`).

/** What happened, in TrueNAS' `collection_update` vocabulary plus ours. */
export type AttributeEventKind = 'added' | 'changed' | 'removed' | 'expired' | 'ended'

export interface AttributeEvent {
  /**
   * Monotonically increasing per owner, comparable as text of the same form (a Redis stream
   * id `<ms>-<seq>` on Redis; the memory store uses the same form).
   */
  id: string
  owner: Owner
  kind: AttributeEventKind
  /** The attribute; absent for `ended` (the session ended: every attribute is gone). */
  name?: string
  version?: number
  /** Epoch ms, or null when the attribute has no expiry. */
  expiresAt?: number | null
  encrypted?: boolean
  /**
   * JSON text of the stored value for `added`/`changed` when not encrypted (the ciphertext is
   * never sent). Live events always have it; a replayed one only while the attribute still has
   * that version (the log keeps no values, D71): without it, a later event supersedes it.
   */
  payload?: string
  /** Epoch ms on the store's clock when the change was made. */
  at: number
}

export interface EventSubscription {
  /** Events replayed from `since` before live delivery began. */
  readonly replayed: number
  /** True when `since` was older than the retained window: the client must re-read (resync). */
  readonly resync: boolean
  close: () => void
}

export interface SubscribeOptions {
  /** The last event id the client saw (exclusive); replay what came after it, then go live. */
  since?: string | undefined
  /**
   * Called once per event, in id order, without duplicates across replay and live; first on
   * the turn of the event loop after subscribe() resolved. Must not throw (errors are dropped).
   */
  onEvent: (event: AttributeEvent) => void
  /**
   * Called when the feed can no longer guarantee completeness: after a lapse in listening (a
   * dropped subscriber connection) the feed replays from the last delivered id by itself, and
   * calls this only when that id has left the kept window. The subscription goes on live.
   */
  onResync?: () => void
}

/**
 * Every change made through any instance and any transport reaches every subscriber on every
 * instance: the store records the event with the write, and the feed replays and relays it.
 */
export interface EventFeed {
  subscribe: (owner: Owner, options: SubscribeOptions) => Promise<EventSubscription>
  close: () => Promise<void>
}
