import { createCipheriv, createDecipheriv } from 'node:crypto'
import { AppError, KeyNotConfiguredError } from './errors.ts'
import type { EncryptionKey } from './config.ts'
import { randomBytesPooled } from './random-pool.ts'
import { ownerTag } from './store/keys.ts'
import type { Owner } from './store/types.ts'

// AES-256-GCM through node:crypto directly: a compact JWE costs about 7x the CPU for the
// same guarantees here (see docs/DECISIONS.md). Stored form, all parts base64url:
//   gcm1.<kid>.<12-byte iv>.<ciphertext || 16-byte tag>
// The additional authenticated data binds a ciphertext to its owner (session or user) and
// attribute name, so a value copied to another session, user or name fails to decrypt.
const FORMAT = 'gcm1'
const IV_BYTES = 12
const TAG_BYTES = 16

/**
 * The additional data of an owner's attribute: `<session id>\0<name>` for a session (as
 * stored values have always been bound), `u:<user id>\0<name>` for a user, i.e. the owner's
 * hash tag (keys.ts), so the rekey tool derives it from a key name alone.
 */
export function cipherBinding (owner: Owner, name: string): string {
  return `${ownerTag(owner)}\0${name}`
}

export class ValueCipher {
  readonly #keys: Map<string, Buffer>
  readonly #active: EncryptionKey

  constructor (keys: EncryptionKey[]) {
    if (keys.length === 0) throw new Error('ValueCipher needs at least one key')
    this.#active = keys[0]!
    this.#keys = new Map(keys.map((k) => [k.kid, k.key]))
  }

  get activeKid (): string {
    return this.#active.kid
  }

  encrypt (plaintext: string, binding: string): string {
    const iv = randomBytesPooled(IV_BYTES)
    const cipher = createCipheriv('aes-256-gcm', this.#active.key, iv)
    cipher.setAAD(Buffer.from(binding, 'utf8'))
    const body = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final(), cipher.getAuthTag()])
    return `${FORMAT}.${this.#active.kid}.${iv.toString('base64url')}.${body.toString('base64url')}`
  }

  /** Whether this key id is configured (encrypts or decrypts). */
  has (kid: string): boolean {
    return this.#keys.has(kid)
  }

  /**
   * Throws E011006 when the value is not of our format or does not authenticate (tampered,
   * or copied from another session or name); KeyNotConfiguredError (E011006 + E011004) when
   * it names a key id that is not configured (removed too early: the operator can put it back).
   */
  decrypt (stored: string, binding: string): string {
    const parts = stored.split('.')
    if (parts.length !== 4 || parts[0] !== FORMAT) throw new AppError('E011006')
    const key = this.#keys.get(parts[1]!)
    if (key === undefined) throw new KeyNotConfiguredError(`Value was encrypted with key "${parts[1]}", which is not configured`)
    const iv = Buffer.from(parts[2]!, 'base64url')
    const body = Buffer.from(parts[3]!, 'base64url')
    if (iv.length !== IV_BYTES || body.length < TAG_BYTES) throw new AppError('E011006')
    try {
      const decipher = createDecipheriv('aes-256-gcm', key, iv)
      decipher.setAAD(Buffer.from(binding, 'utf8'))
      decipher.setAuthTag(body.subarray(body.length - TAG_BYTES))
      return Buffer.concat([decipher.update(body.subarray(0, body.length - TAG_BYTES)), decipher.final()]).toString('utf8')
    } catch {
      throw new AppError('E011006')
    }
  }

  /** Decrypts under whichever configured key the value names and encrypts under the active key. */
  reencrypt (stored: string, binding: string): string {
    return this.encrypt(this.decrypt(stored, binding), binding)
  }

  /** The key id a stored ciphertext names, or undefined when it is not of our format. */
  static kidOf (stored: string): string | undefined {
    const parts = stored.split('.')
    return parts.length === 4 && parts[0] === FORMAT ? parts[1] : undefined
  }
}
