import { AppError } from '../errors.ts'

// The storage contract both stores implement (memory and Redis) and that
// test/store/contract.ts checks. It knows nothing of HTTP, tokens or encryption: values
// arrive in their stored form (JSON text, or ciphertext produced by the caller).

export interface StoredAttribute {
  name: string
  /** JSON text of the value, or the ciphertext string when `encrypted`. */
  payload: string
  encrypted: boolean
  version: number
  createdAt: number
  modifiedAt: number
  /** Epoch ms, or null when the attribute has no expiry of its own. */
  expiresAt: number | null
}

/**
 * What to store as the value:
 * - `plain`: the JSON text, stored in clear;
 * - `cipher`: the ciphertext, stored encrypted;
 * - `inherit`: both forms; the store keeps the existing attribute's encryption state
 *   (clear for a new attribute), so a secret is never silently written in clear. Without
 *   `cipher` the store writes nothing and throws `CipherNeededError` when an existing
 *   attribute is encrypted (so the caller encrypts only when it has to);
 * - `keep`: leave the stored value as it is (update of expiry only).
 */
export type ValueWrite =
  | { kind: 'plain', plain: string }
  | { kind: 'cipher', cipher: string }
  | { kind: 'inherit', plain: string, cipher?: string | undefined }
  | { kind: 'keep' }

/** `keep`: existing expiry (none for a new attribute); `clear`: none; `set`: ms from now. */
export type ExpiryWrite = { kind: 'keep' } | { kind: 'clear' } | { kind: 'set', ms: number }

export interface WriteItem {
  name: string
  value: ValueWrite
  expiry: ExpiryWrite
  /** The caller's condition: mismatch fails the whole write with E011005. */
  ifVersion?: number | undefined
  /**
   * An internal condition for read-modify-write by the service: mismatch fails with
   * `StaleReadError` so the service can retry, never surfacing as a client error.
   */
  expectVersion?: number | undefined
}

export type WriteMode = 'create' | 'update' | 'set'

/**
 * A write or delete sent under an Idempotency-Key: `key` (a digest of the client's key) names
 * the record, `fingerprint` (a digest of the request) tells a repeat from another request
 * reusing the key (E011008), `ttlMs` bounds how long the record is kept.
 */
export interface Idempotency {
  key: string
  fingerprint: string
  ttlMs: number
}

export interface WriteOutcome {
  name: string
  version: number
  expiresAt: number | null
}

export interface StoreLimits {
  sessionIdleTtlMs: number
  sessionMaxTtlMs: number
  maxAttributesPerSession: number
  /** Idle lifetime of a user's attributes, renewed by every call on them (default 400 days). */
  userIdleTtlMs?: number | undefined
  /** Most live attributes of one user (default: maxAttributesPerSession). */
  maxAttributesPerUser?: number | undefined
}

/** Change events (issue 16, src/events/): whether the store records them, and how many per owner. */
export interface EventLogOptions {
  enabled?: boolean | undefined
  /** Events kept per owner at least (EVENTS_RETAINED by default). */
  retain?: number | undefined
}

export const DEFAULT_USER_IDLE_TTL_MS = 400 * 86_400_000

/** The limits with their defaults filled in, as both stores keep them. */
export function resolveLimits (limits: StoreLimits): Required<StoreLimits> {
  return {
    sessionIdleTtlMs: limits.sessionIdleTtlMs,
    sessionMaxTtlMs: limits.sessionMaxTtlMs,
    maxAttributesPerSession: limits.maxAttributesPerSession,
    userIdleTtlMs: limits.userIdleTtlMs ?? DEFAULT_USER_IDLE_TTL_MS,
    maxAttributesPerUser: limits.maxAttributesPerUser ?? limits.maxAttributesPerSession
  }
}

/**
 * Whose attributes a call is about: one session (id: the session id of docs/KEYS.md), or one
 * user across all of the user's sessions (id: the user id, a hash of issuer and user claim).
 * Session attributes live at most a session's lifetime and end with the session; user
 * attributes have an idle lifetime only, and neither a session's end nor a logout by `sub`
 * touches them.
 */
export interface Owner {
  readonly scope: 'session' | 'user'
  readonly id: string
}

export function sessionOwner (sessionId: string): Owner {
  return { scope: 'session', id: sessionId }
}

export function userOwner (userId: string): Owner {
  return { scope: 'user', id: userId }
}

/**
 * Every call renews the owner's idle window (when it has data); writes start a session's
 * max-lifetime window on its first attribute (a user's attributes have none). Expired
 * attributes are invisible to every call. Multi-item calls are all-or-nothing. Failures are
 * thrown as AppError: E009001 (create: exists), E009002 (update: missing), E011005
 * (ifVersion), E011001 (too many attributes), E011003 (store unavailable), E007001 (an ended
 * session; never for a user's attributes).
 */
export interface Store {
  readonly kind: 'memory' | 'redis'
  /** With `idempotency`: the first final outcome is recorded, and replayed to a repeat (D48). */
  write: (owner: Owner, mode: WriteMode, items: WriteItem[], idempotency?: Idempotency) => Promise<WriteOutcome[]>
  get: (owner: Owner, names: string[]) => Promise<Array<StoredAttribute | null>>
  exists: (owner: Owner, names: string[]) => Promise<boolean[]>
  /** Returns whether each name existed. With ifVersion (single name), mismatch or absence is E011005. */
  delete: (owner: Owner, names: string[], ifVersion?: number, idempotency?: Idempotency) => Promise<boolean[]>
  names: (owner: Owner) => Promise<string[]>
  /** Deletes every attribute of a user at once (account deletion); returns how many there were. */
  eraseUserAttributes: (userId: string) => Promise<number>
  /**
   * Ends a session: purges its attributes and leaves a tombstone for `tombstoneTtlMs`, after
   * which every call on the session fails with E007001. Idempotent.
   */
  endSession: (sessionId: string, tombstoneTtlMs: number) => Promise<void>
  /**
   * Ends every session of a user: a user tombstone (tokens issued before it are refused by
   * admitSession) and endSession for each session in the user's index. Returns how many.
   */
  endUserSessions: (userId: string, tombstoneTtlMs: number) => Promise<number>
  /**
   * Fails with E007001 when the user's sessions were ended after the token was issued; writes
   * nothing. (An ended session's own tombstone is checked by every call on the session.)
   */
  admitSession: (userId: string, issuedAtMs: number | null) => Promise<void>
  /**
   * Records a session of a user in the user's index until `untilMs` (the token's expiry), for a
   * later logout by `sub`; fails with E007001, writing nothing, when the user's sessions were
   * ended after the token was issued.
   */
  indexSession: (userId: string, sessionId: string, issuedAtMs: number | null, untilMs: number) => Promise<void>
  isSessionEnded: (sessionId: string) => Promise<boolean>
  /** Remembers a one-time id (a logout token's jti) until `untilMs`; false if it was already. */
  rememberOnce: (id: string, untilMs: number) => Promise<boolean>
  /** Forgets a one-time id again, after the work it guarded failed. */
  forgetOnce: (id: string) => Promise<void>
  /**
   * Rate limiting: adds request counts of several keys to the current fixed window of `windowMs`
   * (windows aligned to the epoch, so every instance counts into the same one) in one call.
   * Returns each key's total in the window and the ms until the window ends.
   */
  countHits: (windowMs: number, hits: Array<[key: string, count: number]>) => Promise<{ totals: number[], ttlMs: number }>
  ping: () => Promise<void>
  close: () => Promise<void>
}

/** A call on a session (or by a user) that has been ended. */
export class SessionEndedError extends AppError {
  constructor () {
    super('E007001', 'Session has ended')
    this.name = 'SessionEndedError'
  }
}

export class StaleReadError extends Error {
  constructor () {
    super('attribute changed between read and write')
    this.name = 'StaleReadError'
  }
}

/** An `inherit` write without ciphertext met an encrypted attribute: retry with ciphertext. */
export class CipherNeededError extends Error {
  constructor () {
    super('an inherit write needs the ciphertext')
    this.name = 'CipherNeededError'
  }
}

const PRECONDITION_MESSAGES = {
  E009001: 'Attribute already exists',
  E009002: 'No such attribute',
  E011005: 'Version does not match',
  E011001: 'Too many attributes'
} as const

/** A write or delete refused by the store; `names` are the attributes concerned. */
export class PreconditionFailed extends AppError {
  readonly names: string[]
  constructor (code: keyof typeof PRECONDITION_MESSAGES, names: string[]) {
    const message = PRECONDITION_MESSAGES[code]
    super(code, names.length > 0 ? `${message}: ${names.map((name) => JSON.stringify(name)).join(', ')}` : message)
    this.names = names
  }
}

/** Names sort by UTF-16 code unit, the same in every store and independent of locale. */
export function compareNames (a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0
}
