import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import fc from 'fast-check'
import { duplicateKeyPointer, pointerSegment } from '../../src/json-duplicate-keys.ts'

describe('duplicateKeyPointer', () => {
  test('examples: the pointer names the repeated key where it is', () => {
    assert.equal(duplicateKeyPointer('{"encrypt":true,"encrypt":false}'), '/encrypt')
    assert.equal(duplicateKeyPointer('{"a":1,"b":{"x/y":[0,{"k~":1,"k~":2}]}}'), '/b/x~1y/1/k~0')
    assert.equal(duplicateKeyPointer('{"data":[{"name":"a","value":1},{"name":"b","name":"c"}]}'), '/data/1/name')
    assert.equal(duplicateKeyPointer('[[],[{"a":1}],{"b":{},"b":[]}]'), '/2/b')
    assert.equal(duplicateKeyPointer('{"":1,"":2}'), '/')
    // Equal after unescaping.
    assert.equal(duplicateKeyPointer('{"a":1,"\\u0061":2}'), '/a')
    assert.equal(duplicateKeyPointer('{"q\\"":1,"q\\u0022":2}'), '/q"')
    // More keys than the list holds before it becomes a set.
    const many = Array.from({ length: 20 }, (_, index) => `"k${index}":${index}`)
    assert.equal(duplicateKeyPointer(`{${many.join(',')}}`), null)
    assert.equal(duplicateKeyPointer(`{${many.join(',')},"k3":0}`), '/k3')
  })

  test('no false positives: same keys in different objects, keys as values, quotes and backslashes in strings', () => {
    for (const text of [
      '{"a":{"a":{"a":1}},"b":[{"a":1},{"a":2}]}',
      '{"a":"a","b":"a"}',
      '{"a":"\\"b\\":1,\\"a\\":2","b":"\\\\"}',
      '{"a\\\\":1,"a":2}',
      '{"name":"x","value":{"name":"y"}}',
      '"a"', '1', 'null', '[]', '{}', ' { "a" : 1 , "b" : 2 } '
    ]) {
      assert.equal(duplicateKeyPointer(text), null, text)
    }
  })

  test('agrees with a reference on arbitrary JSON: none in JSON.stringify output, the first one found when a key is repeated', () => {
    const key = fc.oneof(fc.string({ maxLength: 4 }), fc.constantFrom('a', '~', '/', '"', '\\', 'é', '\u2028'))
    const { tree } = fc.letrec((tie) => ({
      tree: fc.oneof({ depthSize: 'small' }, fc.jsonValue({ maxDepth: 1 }), tie('object'), tie('array')),
      object: fc.dictionary(key, tie('tree'), { maxKeys: 12 }),
      array: fc.array(tie('tree'), { maxLength: 4 })
    }))
    fc.assert(fc.property(tree, (value) => {
      assert.equal(duplicateKeyPointer(JSON.stringify(value)), null)
    }), { numRuns: 2000 })
    fc.assert(fc.property(fc.dictionary(key, fc.jsonValue({ maxDepth: 2 }), { minKeys: 1, maxKeys: 12 }), fc.nat(), fc.jsonValue({ maxDepth: 1 }), (object, pick, extra) => {
      const keys = Object.keys(object)
      const repeated = keys[pick % keys.length]!
      const text = `{"outer":[0,${JSON.stringify(object).slice(0, -1)},${JSON.stringify(repeated)}:${JSON.stringify(extra)}}]}`
      assert.equal(duplicateKeyPointer(text), `/outer/1/${pointerSegment(repeated)}`)
    }), { numRuns: 2000 })
  })
})
