import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import fc from 'fast-check'
import { bearerToken } from '../../src/bearer-token.ts'

// What the service accepted before bearerToken() replaced it: the two must agree on every header.
const BEARER = /^Bearer +([^ ]+) *$/i
const byRegex = (header: string) => BEARER.exec(header)?.[1] ?? null

describe('bearer token of an Authorization header', () => {
  test('examples', () => {
    assert.equal(bearerToken('Bearer abc.def.ghi'), 'abc.def.ghi')
    assert.equal(bearerToken('bearer   abc  '), 'abc')
    assert.equal(bearerToken('BEARER x'), 'x')
    for (const header of ['Bearer', 'Bearer ', 'Bearer    ', 'Bearerabc', 'Basic abc', 'Bearer a b', ' Bearer abc', 'Bearer\tabc', 'Token abc']) {
      assert.equal(bearerToken(header), byRegex(header), JSON.stringify(header))
    }
    assert.equal(bearerToken('Bearer a b'), null)
  })

  test('agrees with the regular expression it replaced on any header', () => {
    const part = fc.constantFrom('Bearer', 'bearer', 'BeArEr', 'Basic', '', ' ', '  ', 'a', 'x.y.z', '\t', 'é', 'Bearer ')
    fc.assert(fc.property(fc.array(fc.oneof(part, fc.string({ maxLength: 6 })), { maxLength: 6 }), (parts) => {
      const header = parts.join('')
      assert.equal(bearerToken(header), byRegex(header), JSON.stringify(header))
    }), { numRuns: 5000 })
  })
})
