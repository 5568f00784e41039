import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import { keySlot } from '../../src/events/redis-feed.ts'
import { attributeHashPattern, attributeKeys, eventKey, ownerOfAttributeHash, ownerTag, userSessionKeys } from '../../src/store/keys.ts'
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

  test('an owner\'s event list (and channel) is its attributes hash with e for a, in the same slot', () => {
    for (const owner of [sessionOwner('S1'), userOwner('U1')]) {
      const [attributes] = attributeKeys('p:', owner)
      assert.equal(eventKey('p:', owner), `${attributes!.slice(0, -1)}e`, 'events.lua derives it so from KEYS[1]')
      assert.equal(keySlot(eventKey('p:', owner)), keySlot(attributes!))
    }
    // Redis' own examples: CRC16 of "123456789" is 0x31C3; only the hash tag counts.
    assert.equal(keySlot('123456789'), 0x31c3)
    assert.equal(keySlot('{user1000}.following'), keySlot('user1000'))
    // As `CLUSTER KEYSLOT` answers on Redis 7.0.15, empty and odd tags included (cluster-key-slot
    // 1.1.1, ioredis' dependency, says 4015 for the first: it skips the empty tag).
    const redisSays = { 'foo{}{bar}': 8363, 'foo{{bar}}zap': 4015, 'x{': 3596, '{a}b{c}': 15495, 'p:{u:ü}:e': 6404, 'no tag': 13378 }
    for (const [key, slot] of Object.entries(redisSays)) assert.equal(keySlot(key), slot, key)
  })

  test('the cipher binding is the owner\'s hash tag and the name: unchanged for sessions', () => {
    assert.equal(cipherBinding(sessionOwner('S1'), 'theme'), 'S1\0theme')
    assert.equal(cipherBinding(userOwner('S1'), 'theme'), 'u:S1\0theme')
    assert.equal(ownerTag(userOwner('S1')), 'u:S1')
  })
})
