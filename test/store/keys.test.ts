import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import { attributeHashPattern, attributeKeys, ownerOfAttributeHash, ownerTag, userSessionKeys } from '../../src/store/keys.ts'
import { sessionOwner, userOwner } from '../../src/store/types.ts'
import { cipherBinding } from '../../src/value-cipher.ts'

describe('key layout (docs/KEYS.md)', () => {
  test('a session keeps the layout deployed data has: {<session id>}:a :x :m :t', () => {
    assert.deepEqual(attributeKeys('p:', sessionOwner('JqizRp4MemnNk5NxQ6cF17')), [
      'p:{JqizRp4MemnNk5NxQ6cF17}:a', 'p:{JqizRp4MemnNk5NxQ6cF17}:x', 'p:{JqizRp4MemnNk5NxQ6cF17}:m', 'p:{JqizRp4MemnNk5NxQ6cF17}:t'
    ])
  })

  test('a user\'s attributes sit in the user\'s slot beside its session index and tombstone', () => {
    assert.deepEqual(attributeKeys('p:', userOwner('U1')), ['p:{u:U1}:a', 'p:{u:U1}:x'])
    assert.deepEqual(userSessionKeys('p:', 'U1'), ['p:{u:U1}:s', 'p:{u:U1}:t'])
  })

  test('the owner of an attribute hash comes back from its key; other keys are nobody\'s', () => {
    assert.deepEqual(ownerOfAttributeHash('p:', 'p:{abc_-1}:a'), sessionOwner('abc_-1'))
    assert.deepEqual(ownerOfAttributeHash('p:', 'p:{u:U1}:a'), userOwner('U1'))
    assert.equal(ownerOfAttributeHash('p:', 'q:{abc}:a'), undefined)
    assert.equal(ownerOfAttributeHash('p:', 'p:{o:x}:a'), undefined)
    assert.equal(ownerOfAttributeHash('p:', 'p:{a b}:a'), undefined)
    assert.equal(ownerOfAttributeHash('p:', 'p:{abc}:x'), undefined)
    assert.equal(attributeHashPattern('a*b?[c]:'), 'a\\*b\\?\\[c\\]:{*}:a')
  })

  test('the cipher binding is the owner\'s hash tag and the name: unchanged for sessions', () => {
    assert.equal(cipherBinding(sessionOwner('S1'), 'theme'), 'S1\0theme')
    assert.equal(cipherBinding(userOwner('S1'), 'theme'), 'u:S1\0theme')
    assert.equal(ownerTag(userOwner('S1')), 'u:S1')
  })
})
