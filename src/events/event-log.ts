import type { EventLogOptions, Owner } from '../store/types.ts'
import type { AttributeEvent, AttributeEventKind } from './types.ts'

// What both stores offer the feeds: an owner's recorded events after an id (the replay), in
// the one form both use, and the parsing of the compact form the Redis scripts write.

/** What an owner's event log holds after `since`. */
export interface EventReplay {
  /**
   * `since` was not within the retained window (older than it, newer than the last event, or
   * the log was gone): events may have been lost and `events` is empty.
   */
  resync: boolean
  /** The id of the log's last event (or of its start when it has none): where live delivery picks up. */
  last: string
  events: AttributeEvent[]
}

/** A store that records events (both stores do): replay for the feeds. */
export interface EventLog {
  readEvents: (owner: Owner, since: string | undefined) => Promise<EventReplay>
  /**
   * Purges the owner's expired attributes now (recording their `expired` events); when the
   * next one expires (epoch ms, null: none) and the store's clock, to compare it with.
   */
  purgeExpired: (owner: Owner) => Promise<{ nextExpiry: number | null, now: number }>
}

/** How many events each owner's log keeps at least (and, trimmed in steps, at most EVENTS_RETAINED + EVENTS_TRIM_STEP). */
export const EVENTS_RETAINED = 100
export const EVENTS_TRIM_STEP = 20

/** A store's event-log options with their defaults: on, EVENTS_RETAINED kept. */
export function resolveEventLogOptions (options: EventLogOptions | undefined): Required<EventLogOptions> {
  return { enabled: options?.enabled ?? true, retain: options?.retain ?? EVENTS_RETAINED }
}

const KINDS: Record<string, AttributeEventKind> = { a: 'added', c: 'changed', r: 'removed', x: 'expired', e: 'ended' }
export const KIND_CODES: Record<AttributeEventKind, string> = { added: 'a', changed: 'c', removed: 'r', expired: 'x', ended: 'e' }

const EVENT_ID = /^(\d+)-(\d+)$/

/** Orders two event ids of the form `<ms>-<seq>` (negative: a first). */
export function compareEventIds (a: string, b: string): number {
  const left = EVENT_ID.exec(a)
  const right = EVENT_ID.exec(b)
  if (left === null || right === null) throw new Error('malformed event id')
  return Number(left[1]) - Number(right[1]) || Number(left[2]) - Number(right[2])
}

export function isEventId (text: string): boolean {
  return EVENT_ID.test(text)
}

/**
 * An event from the fields the scripts publish and replay: id, kind code, version, expiry
 * (epoch ms, '' for none), e|p, name, payload (null/false when not carried).
 */
export function eventFromFields (owner: Owner, fields: ReadonlyArray<string | number | boolean | null>): AttributeEvent {
  const [id, code, version, expires, flag, name, payload] = fields
  const kind = KINDS[String(code)]
  if (kind === undefined || typeof id !== 'string') throw new Error('malformed event')
  const event: AttributeEvent = { id, owner, kind, at: Number(id.slice(0, id.indexOf('-'))) }
  if (kind === 'ended') return event
  event.name = String(name)
  if (kind === 'added' || kind === 'changed') {
    event.version = Number(version)
    event.expiresAt = expires === '' || expires === null ? null : Number(expires)
    event.encrypted = flag === 'e'
    if (typeof payload === 'string' && flag === 'p') event.payload = payload
  }
  return event
}

/** The events of one live message (a JSON array of field arrays, one script's events). */
export function eventsFromMessage (owner: Owner, message: string): AttributeEvent[] {
  const parsed: unknown = JSON.parse(message)
  if (!Array.isArray(parsed)) throw new Error('malformed event message')
  return parsed.map((fields: unknown) => {
    if (!Array.isArray(fields)) throw new Error('malformed event message')
    return eventFromFields(owner, fields as Array<string | number | boolean | null>)
  })
}
