import { createHash } from 'node:crypto'
import type { Static } from 'typebox'
import { AppError, invalidInput, limitExceeded, missingInput, type ErrorDetail } from './errors.ts'
import type { AttributeSchema } from './schemas/attributes.ts'
import { ValueCipher, cipherBinding } from './value-cipher.ts'
import {
  CipherNeededError, PreconditionFailed, StaleReadError,
  type ExpiryWrite, type Idempotency, type Owner, type Store, type StoredAttribute, type ValueWrite, type WriteItem, type WriteMode
} from './store/types.ts'

/** One attribute to write, as the client gave it; `path` is its JSON Pointer in the request. */
export interface WriteSpec {
  path: string
  name: string
  hasValue: boolean
  value?: unknown
  encrypt?: boolean | undefined
  /** undefined: keep (none for a new attribute); null: remove; number: seconds from now. */
  expiration?: number | null | undefined
  ifVersion?: number | undefined
}

export interface NameSpec {
  path: string
  name: string
}

export type AttributeView = Static<typeof AttributeSchema>

/** A live attribute as read, its value as JSON text (decrypted, or the ciphertext as a JSON string). */
export type ReadAttribute = Omit<StoredAttribute, 'payload'> & { valueJson: string }

export interface WriteResult {
  name: string
  version: number
  expiration_time: string | null
}

export interface AttributeLimits {
  maxNameLength: number
  maxValueBytes: number
  maxBatch: number
  /** How long the outcome of a write or delete under an Idempotency-Key is kept (ms). */
  idempotencyTtlMs?: number
}

/**
 * A write or delete sent under an Idempotency-Key: the client's `key`, and `request`, a
 * canonical text of the request (what it asks, without its credentials), which tells a repeat
 * from another request that reuses the key.
 */
export interface IdempotencyRequest {
  key: string
  request: string
}

const DEFAULT_IDEMPOTENCY_TTL_MS = 86_400_000
const digest = (text: string): string => createHash('sha256').update(text).digest('base64url').slice(0, 22)

// Control characters (C0, DEL, C1) are refused in names: they break logs and terminals and
// leave room for lookalike names.
// eslint-disable-next-line no-control-regex
const CONTROL_CHARACTERS = /[\u0000-\u001f\u007f-\u009f]/
// A lone surrogate cannot be encoded as UTF-8: Redis would store U+FFFD under another name.
const LONE_SURROGATE = /\p{Cs}/u
const READ_MODIFY_WRITE_ATTEMPTS = 5
// JSON.stringify recurses: a value nested thousands of levels deep would overflow the stack.
export const MAX_VALUE_DEPTH = 100

/** Whether a parsed JSON value nests more than `max` arrays/objects, checked without recursion. */
function nestedDeeperThan (value: unknown, max: number): boolean {
  if (value === null || typeof value !== 'object') return false
  const pending: Array<[unknown, number]> = [[value, 0]]
  while (pending.length > 0) {
    const [node, depth] = pending.pop()!
    if (node === null || typeof node !== 'object') continue
    if (depth === max) return true
    for (const child of Object.values(node)) pending.push([child, depth + 1])
  }
  return false
}

// Every view formats three times: Date#toISOString costs ~0.7 us each, a batch of 20 pays about 40.
// The date part is the same for nearly every timestamp, so only it goes through Date, once a day.
const TWO_DIGITS = Array.from({ length: 100 }, (_, n) => String(n).padStart(2, '0'))
const THREE_DIGITS = Array.from({ length: 1000 }, (_, n) => String(n).padStart(3, '0'))
const DAY_MS = 86_400_000
const YEAR_10000_MS = 253_402_300_800_000
let cachedDay = Number.NaN
let cachedDayPrefix = ''

/** `new Date(ms).toISOString()`, faster. */
export function isoTime (ms: number): string {
  if (!Number.isInteger(ms) || ms < 0 || ms >= YEAR_10000_MS) return new Date(ms).toISOString()
  const day = Math.floor(ms / DAY_MS)
  if (day !== cachedDay) {
    cachedDayPrefix = new Date(day * DAY_MS).toISOString().slice(0, 11)
    cachedDay = day
  }
  let rest = ms - day * DAY_MS
  const millis = rest % 1000
  rest = (rest - millis) / 1000
  const seconds = rest % 60
  rest = (rest - seconds) / 60
  const minutes = rest % 60
  const hours = (rest - minutes) / 60
  return `${cachedDayPrefix}${TWO_DIGITS[hours]!}:${TWO_DIGITS[minutes]!}:${TWO_DIGITS[seconds]!}.${THREE_DIGITS[millis]!}Z`
}

/** Attribute operations on one owner (a session or a user): validation, encryption and mapping to the store. */
export class AttributeService {
  readonly #store: Store
  readonly #cipher: ValueCipher
  readonly #limits: AttributeLimits

  constructor (store: Store, cipher: ValueCipher, limits: AttributeLimits) {
    this.#store = store
    this.#cipher = cipher
    this.#limits = limits
  }

  checkBatch (path: string, count: number): void {
    if (count > this.#limits.maxBatch) throw limitExceeded(path, `At most ${this.#limits.maxBatch} items a batch`)
    if (count === 0) throw invalidInput(path, 'Must not be empty')
  }

  checkNames (specs: NameSpec[]): void {
    const seen = new Map<string, string>()
    for (const spec of specs) {
      const path = spec.path
      if (spec.name.length === 0 || (spec.name.length > this.#limits.maxNameLength && [...spec.name].length > this.#limits.maxNameLength)) {
        throw invalidInput(path, `Name must be 1 to ${this.#limits.maxNameLength} characters`)
      }
      if (CONTROL_CHARACTERS.test(spec.name)) throw invalidInput(path, 'Name must not contain control characters')
      if (LONE_SURROGATE.test(spec.name)) throw invalidInput(path, 'Name must be valid Unicode (no lone surrogates)')
      const earlier = seen.get(spec.name)
      if (earlier !== undefined) throw invalidInput(path, `Duplicate name, also at ${earlier}`)
      seen.set(spec.name, path)
    }
  }

  #serialize (spec: WriteSpec): string {
    if (nestedDeeperThan(spec.value, MAX_VALUE_DEPTH)) {
      throw invalidInput(`${spec.path}/value`, `Value must be nested at most ${MAX_VALUE_DEPTH} levels deep`)
    }
    const plain = JSON.stringify(spec.value)
    if (Buffer.byteLength(plain) > this.#limits.maxValueBytes) {
      throw limitExceeded(`${spec.path}/value`, `Value must be at most ${this.#limits.maxValueBytes} bytes serialized`)
    }
    return plain
  }

  /** What the store keeps of an Idempotency-Key: digests only, never the client's text. */
  #idempotency (request: IdempotencyRequest | undefined): Idempotency | undefined {
    if (request === undefined) return undefined
    return { key: digest(request.key), fingerprint: digest(request.request), ttlMs: this.#limits.idempotencyTtlMs ?? DEFAULT_IDEMPOTENCY_TTL_MS }
  }

  async write (owner: Owner, mode: WriteMode, specs: WriteSpec[], idempotencyRequest?: IdempotencyRequest): Promise<WriteResult[]> {
    const idempotency = this.#idempotency(idempotencyRequest)
    this.checkNames(specs.map((spec) => ({ path: `${spec.path}/name`, name: spec.name })))
    const plans = specs.map((spec) => this.#plan(owner, mode, spec))
    for (let attempt = 1; ; attempt++) {
      const items = await this.#resolveKept(owner, specs, plans)
      try {
        const outcomes = await this.#store.write(owner, mode, items, idempotency)
        return outcomes.map((outcome) => ({
          name: outcome.name,
          version: outcome.version,
          expiration_time: outcome.expiresAt === null ? null : isoTime(outcome.expiresAt)
        }))
      } catch (error) {
        if (error instanceof CipherNeededError && attempt < READ_MODIFY_WRITE_ATTEMPTS) {
          this.#encryptInherited(owner, specs, plans)
          continue
        }
        if (error instanceof StaleReadError && attempt < READ_MODIFY_WRITE_ATTEMPTS) continue
        if (error instanceof StaleReadError) throw new AppError('E011005', 'Attribute changed concurrently; retry')
        throw withPaths(error, specs.map((spec) => ({ path: `${spec.path}/name`, name: spec.name })))
      }
    }
  }

  /** What to write for one spec; `value: undefined` marks a read-modify-write (encrypt toggle). */
  #plan (owner: Owner, mode: WriteMode, spec: WriteSpec): { value: ValueWrite | undefined, expiry: ExpiryWrite } {
    const expiry: ExpiryWrite = spec.expiration === undefined
      ? { kind: 'keep' }
      : spec.expiration === null ? { kind: 'clear' } : { kind: 'set', ms: spec.expiration * 1000 }
    if (!spec.hasValue) {
      if (mode !== 'update') throw missingInput(`${spec.path}/value`, 'value is required')
      if (spec.encrypt === undefined && spec.expiration === undefined) {
        throw missingInput(`${spec.path}/value`, 'Give value, expiration or encrypt: nothing to update')
      }
      return { value: spec.encrypt === undefined ? { kind: 'keep' } : undefined, expiry }
    }
    const plain = this.#serialize(spec)
    if (spec.encrypt === true) return { value: { kind: 'cipher', cipher: this.#cipher.encrypt(plain, cipherBinding(owner, spec.name)) }, expiry }
    if (spec.encrypt === false || mode === 'create') return { value: { kind: 'plain', plain }, expiry }
    // Encryption state not given on update/set: the store keeps the stored state. Sent in
    // clear only; the store refuses it if a stored value is encrypted, and the retry carries
    // the ciphertext too. Encrypting up front would cost every plain write (~6 us a value).
    return { value: { kind: 'inherit', plain }, expiry }
  }

  #encryptInherited (owner: Owner, specs: WriteSpec[], plans: Array<{ value: ValueWrite | undefined }>): void {
    plans.forEach((plan, index) => {
      if (plan.value?.kind === 'inherit' && plan.value.cipher === undefined) {
        plan.value = { ...plan.value, cipher: this.#cipher.encrypt(plan.value.plain, cipherBinding(owner, specs[index]!.name)) }
      }
    })
  }

  /** Turns encrypt toggles without a value into concrete writes guarded by the version read. */
  async #resolveKept (owner: Owner, specs: WriteSpec[], plans: Array<{ value: ValueWrite | undefined, expiry: ExpiryWrite }>): Promise<WriteItem[]> {
    if (plans.every((plan) => plan.value !== undefined)) {
      // Every write carries its value (the common case): nothing to read first.
      return specs.map((spec, index) => ({ name: spec.name, value: plans[index]!.value!, expiry: plans[index]!.expiry, ifVersion: spec.ifVersion }))
    }
    const toRead = specs.filter((_, index) => plans[index]!.value === undefined)
    const stored = toRead.length > 0 ? await this.#store.get(owner, toRead.map((spec) => spec.name)) : []
    const storedByName = new Map(toRead.map((spec, index) => [spec.name, stored[index] ?? null]))
    return specs.map((spec, index) => {
      const plan = plans[index]!
      const item: WriteItem = { name: spec.name, value: plan.value ?? { kind: 'keep' }, expiry: plan.expiry, ifVersion: spec.ifVersion }
      if (plan.value !== undefined) return item
      const current = storedByName.get(spec.name)
      if (current === null || current === undefined) return item // the store answers E009002
      item.expectVersion = current.version
      const binding = cipherBinding(owner, spec.name)
      if (current.encrypted && spec.encrypt === true) {
        // Already encrypted: the value was read anyway, so move it to the active key if it is
        // under an older one that is still configured (one under a removed key stays as it is).
        const kid = ValueCipher.kidOf(current.payload)
        if (kid !== undefined && kid !== this.#cipher.activeKid && this.#cipher.has(kid)) {
          item.value = { kind: 'cipher', cipher: this.#cipher.reencrypt(current.payload, binding) }
        }
        return item
      }
      if (current.encrypted === spec.encrypt) return item
      item.value = spec.encrypt === true
        ? { kind: 'cipher', cipher: this.#cipher.encrypt(current.payload, binding) }
        : { kind: 'plain', plain: this.#cipher.decrypt(current.payload, binding) }
      return item
    })
  }

  async get (owner: Owner, specs: NameSpec[], decrypt: boolean): Promise<AttributeView[]> {
    return (await this.read(owner, specs, decrypt)).map((attribute) => attribute === null ? { found: false } : viewOf(attribute))
  }

  /**
   * The attributes of those names (null for a missing one), values left as JSON text so that
   * a caller may pass them on without parsing them again.
   */
  async read (owner: Owner, specs: NameSpec[], decrypt: boolean): Promise<Array<ReadAttribute | null>> {
    this.checkNames(specs)
    const stored = await this.#store.get(owner, specs.map((spec) => spec.name))
    // A value that cannot be decrypted fails the whole read (a batch get is all or nothing,
    // like a batch write), with one detail per such item so the client knows which.
    const failures: AppError[] = []
    const details: ErrorDetail[] = []
    const attributes = stored.map((attribute, index) => {
      if (attribute === null) return null
      try {
        return this.#readOne(owner, attribute, decrypt)
      } catch (error) {
        if (!(error instanceof AppError)) throw error
        failures.push(error)
        details.push({ path: specs[index]!.path, message: error.message })
        return null
      }
    })
    if (failures.length > 0) {
      const first = failures[0]!
      const error = new AppError(first.code, failures.length === 1 ? first.message : `${failures.length} values cannot be decrypted`, details)
      error.subStatus = [...new Set(failures.flatMap((failure) => failure.subStatus))]
      throw error
    }
    return attributes
  }

  /** One stored attribute with its value as JSON text: decrypted, or its ciphertext quoted when `decrypt` is false. */
  #readOne (owner: Owner, attribute: StoredAttribute, decrypt: boolean): ReadAttribute {
    let valueJson: string
    if (!attribute.encrypted) valueJson = attribute.payload
    else if (decrypt) valueJson = this.#cipher.decrypt(attribute.payload, cipherBinding(owner, attribute.name))
    else valueJson = JSON.stringify(attribute.payload)
    return {
      name: attribute.name,
      valueJson,
      createdAt: attribute.createdAt,
      modifiedAt: attribute.modifiedAt,
      expiresAt: attribute.expiresAt,
      encrypted: attribute.encrypted,
      version: attribute.version
    }
  }

  async exists (owner: Owner, specs: NameSpec[]): Promise<boolean[]> {
    this.checkNames(specs)
    return await this.#store.exists(owner, specs.map((spec) => spec.name))
  }

  async delete (owner: Owner, specs: NameSpec[], ifVersion?: number, idempotencyRequest?: IdempotencyRequest): Promise<boolean[]> {
    this.checkNames(specs)
    try {
      return await this.#store.delete(owner, specs.map((spec) => spec.name), ifVersion, this.#idempotency(idempotencyRequest))
    } catch (error) {
      throw withPaths(error, specs)
    }
  }

  async names (owner: Owner): Promise<string[]> {
    return await this.#store.names(owner)
  }

  /** Deletes every attribute of a user at once; returns how many there were. */
  async eraseUser (owner: Owner): Promise<number> {
    if (owner.scope !== 'user') throw new Error('eraseUser takes a user')
    return await this.#store.eraseUserAttributes(owner.id)
  }
}

/** The API's view of an attribute that was read. */
export function viewOf (attribute: ReadAttribute): AttributeView {
  return {
    found: true,
    name: attribute.name,
    value: JSON.parse(attribute.valueJson),
    creation_time: isoTime(attribute.createdAt),
    last_modified: isoTime(attribute.modifiedAt),
    expiration_time: attribute.expiresAt === null ? null : isoTime(attribute.expiresAt),
    is_encrypted: attribute.encrypted,
    version: attribute.version
  }
}

/** Gives a store precondition failure the JSON Pointers of the names it concerns. */
function withPaths (error: unknown, specs: NameSpec[]): unknown {
  if (!(error instanceof PreconditionFailed)) return error
  const pathOf = new Map(specs.map((spec) => [spec.name, spec.path]))
  const details: ErrorDetail[] = error.names.map((name) => ({ path: pathOf.get(name) ?? '', message: error.message }))
  return new AppError(error.code, error.message, details.length > 0 ? details : undefined)
}
