import assert from 'node:assert/strict'
import { test } from 'node:test'
import { parse_datetime } from './python.ts'
import { PROFILES, zatoSuite } from './zato-rest-client.ts'

// Port of Zato 3.2's test_user_attr_get.py (zatosource/zato, branch support/3.2,
// code/zato-sso/test/zato/test_user_attr_get.py), request for request, every assertion kept.
zatoSuite('Zato 3.2 UserAttrGetTestCase', (setUp) => {
  for (const profile of PROFILES) {
    test(`test_get (${profile})`, async () => {
      const self = await setUp(profile)
      const name = self._get_random_data()
      const value = self._get_random_data()
      const expiration = 900

      await self.post('/zato/sso/user/attr', {
        ust: self.ctx.super_user_ust,
        user_id: self.ctx.super_user_id,
        name,
        value,
        expiration
      })

      const response = await self.get('/zato/sso/user/attr', {
        ust: self.ctx.super_user_ust,
        user_id: self.ctx.super_user_id,
        name
      })

      assert.ok(response.found)
      assert.equal(response.name, name)
      assert.equal(response.value, value)

      // Will raise an exception if date parsing fails
      parse_datetime(response.creation_time)
      parse_datetime(response.last_modified)
      parse_datetime(response.expiration_time)
    })
  }
})
