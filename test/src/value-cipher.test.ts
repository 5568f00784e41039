import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import type { EncryptionKey } from '../../src/config.ts'
import { AppError, KeyNotConfiguredError } from '../../src/errors.ts'
import { ValueCipher } from '../../src/value-cipher.ts'

const OLD: EncryptionKey = { kid: 'old', key: Buffer.alloc(32, 1) }
const NEW: EncryptionKey = { kid: 'new', key: Buffer.alloc(32, 2) }
const BINDING = 'session-1\0theme'
const STORED_FORM = /^gcm1\.([A-Za-z0-9_-]+)\.([A-Za-z0-9_-]{16})\.([A-Za-z0-9_-]+)$/

function assertSubStatus (subStatus: string[], fn: () => unknown): void {
  assert.throws(fn, (error: unknown) => {
    assert.ok(error instanceof AppError, `expected an AppError, got ${String(error)}`)
    assert.equal(error.code, 'E011006')
    assert.equal(error.statusCode, 422)
    assert.deepEqual(error.subStatus, subStatus)
    return true
  })
}

/** Cannot be decrypted: tampered, moved, or not of the format. */
const assertE011006 = (fn: () => unknown): void => assertSubStatus(['E011006'], fn)
/** Cannot be decrypted because the key id is not configured. */
const assertE011004 = (fn: () => unknown): void => assertSubStatus(['E011006', 'E011004'], fn)

/** Flips one bit of the base64url part at `index` of a stored value. */
function tamper (stored: string, index: number, byte = 0): string {
  const parts = stored.split('.')
  const raw = Buffer.from(parts[index]!, 'base64url')
  raw[byte] = raw[byte]! ^ 0x01
  parts[index] = raw.toString('base64url')
  return parts.join('.')
}

describe('ValueCipher', () => {
  test('round trip: what is encrypted decrypts to the same text, including unicode and empty strings', () => {
    const cipher = new ValueCipher([OLD])
    for (const plain of ['"dark"', '{"a":[1,2,{"b":null}]}', '"żółć 🎉"', '', 'x'.repeat(70_000)]) {
      const stored = cipher.encrypt(plain, BINDING)
      assert.match(stored, STORED_FORM)
      assert.equal(cipher.decrypt(stored, BINDING), plain)
    }
  })

  test('the stored form names the key, and holds no plaintext', () => {
    const cipher = new ValueCipher([NEW, OLD])
    const stored = cipher.encrypt('"top-secret-value"', BINDING)
    assert.equal(STORED_FORM.exec(stored)?.[1], 'new')
    assert.equal(ValueCipher.kidOf(stored), 'new')
    assert.equal(cipher.activeKid, 'new')
    assert.doesNotMatch(stored, /top-secret/)
    assert.doesNotMatch(Buffer.from(stored.split('.')[3]!, 'base64url').toString('latin1'), /top-secret/)
    // 16-byte tag after the ciphertext: the body is exactly 16 bytes longer than the plaintext.
    assert.equal(Buffer.from(stored.split('.')[3]!, 'base64url').length, Buffer.byteLength('"top-secret-value"') + 16)
  })

  test('a fresh IV each time: the same value never gives the same ciphertext', () => {
    const cipher = new ValueCipher([OLD])
    const stored = Array.from({ length: 50 }, () => cipher.encrypt('"same"', BINDING))
    assert.equal(new Set(stored).size, 50)
    assert.equal(new Set(stored.map((value) => value.split('.')[2])).size, 50, 'every IV differs')
    for (const value of stored) assert.equal(Buffer.from(value.split('.')[2]!, 'base64url').length, 12)
  })

  test('bound to session and name: another session or another name fails with E011006', () => {
    const cipher = new ValueCipher([OLD])
    const stored = cipher.encrypt('"v"', 'session-1\0theme')
    assertE011006(() => cipher.decrypt(stored, 'session-2\0theme'))
    assertE011006(() => cipher.decrypt(stored, 'session-1\0other'))
    assertE011006(() => cipher.decrypt(stored, 'session-1\0theme '))
    assertE011006(() => cipher.decrypt(stored, ''))
    assert.equal(cipher.decrypt(stored, 'session-1\0theme'), '"v"')
  })

  test('an unknown key id is E011006 refined by E011004, naming the kid but not the key', () => {
    const writer = new ValueCipher([NEW])
    const reader = new ValueCipher([OLD])
    const stored = writer.encrypt('"v"', BINDING)
    assert.throws(() => reader.decrypt(stored, BINDING), (error: unknown) => {
      assert.ok(error instanceof KeyNotConfiguredError)
      assert.equal(error.code, 'E011006')
      assert.deepEqual(error.subStatus, ['E011006', 'E011004'])
      assert.equal(error.statusCode, 422)
      assert.match(error.message, /"new"/)
      assert.doesNotMatch(error.message, new RegExp(NEW.key.toString('base64url')))
      return true
    })
  })

  test('a key id swapped for another configured key fails to authenticate', () => {
    const cipher = new ValueCipher([NEW, OLD])
    const stored = cipher.encrypt('"v"', BINDING)
    assertE011006(() => cipher.decrypt(stored.replace(/^gcm1\.new\./, 'gcm1.old.'), BINDING))
  })

  test('tampered ciphertext, tag or IV is E011006', () => {
    const cipher = new ValueCipher([OLD])
    const stored = cipher.encrypt('"a longer value to tamper with"', BINDING)
    assertE011006(() => cipher.decrypt(tamper(stored, 3, 0), BINDING))
    const bodyLength = Buffer.from(stored.split('.')[3]!, 'base64url').length
    assertE011006(() => cipher.decrypt(tamper(stored, 3, bodyLength - 1), BINDING))
    assertE011006(() => cipher.decrypt(tamper(stored, 2, 0), BINDING))
    const parts = stored.split('.')
    assertE011006(() => cipher.decrypt(`${parts[0]}.${parts[1]}.${parts[2]}.${parts[3]!.slice(0, -4)}`, BINDING))
    assertE011006(() => cipher.decrypt(`${parts[0]}.${parts[1]}.${parts[2]}.`, BINDING))
    assertE011006(() => cipher.decrypt(`${parts[0]}.${parts[1]}.AAAA.${parts[3]}`, BINDING))
  })

  test('values not in the stored format are E011006', () => {
    const cipher = new ValueCipher([OLD])
    for (const stored of ['', 'plain text', '"json"', 'gcm1.old', 'gcm2.old.AAAAAAAAAAAAAAAA.AAAAAAAAAAAAAAAAAAAAAA', 'gcm1.old.a.b.c']) {
      assertE011006(() => cipher.decrypt(stored, BINDING))
    }
    assert.equal(ValueCipher.kidOf('plain text'), undefined)
  })

  test('key rotation: with a new key first, new values use it and old values still decrypt', () => {
    const before = new ValueCipher([OLD])
    const oldStored = before.encrypt('"written before rotation"', BINDING)
    const after = new ValueCipher([NEW, OLD])
    assert.equal(after.decrypt(oldStored, BINDING), '"written before rotation"')
    const newStored = after.encrypt('"written after"', BINDING)
    assert.equal(ValueCipher.kidOf(newStored), 'new')
    assertE011004(() => before.decrypt(newStored, BINDING))
    assertE011004(() => new ValueCipher([NEW]).decrypt(oldStored, BINDING))
  })

  test('reencrypt moves a value to the active key, keeping its binding', () => {
    const oldStored = new ValueCipher([OLD]).encrypt('"v"', BINDING)
    const cipher = new ValueCipher([NEW, OLD])
    const moved = cipher.reencrypt(oldStored, BINDING)
    assert.equal(ValueCipher.kidOf(moved), 'new')
    assert.match(moved, STORED_FORM)
    assert.equal(new ValueCipher([NEW]).decrypt(moved, BINDING), '"v"')
    assertE011006(() => cipher.decrypt(moved, 'session-2\0theme'))
    assertE011004(() => new ValueCipher([NEW]).reencrypt(oldStored, BINDING))
    const current = cipher.encrypt('"v"', BINDING)
    assert.notEqual(cipher.reencrypt(current, BINDING), current, 'a fresh IV every time')
  })

  test('has tells configured key ids', () => {
    const cipher = new ValueCipher([NEW, OLD])
    assert.equal(cipher.has('new'), true)
    assert.equal(cipher.has('old'), true)
    assert.equal(cipher.has('gone'), false)
  })

  test('needs at least one key', () => {
    assert.throws(() => new ValueCipher([]))
  })
})
