import assert from 'node:assert/strict'
import { test } from 'node:test'
import { PROFILES, zatoSuite } from './zato-rest-client.ts'

// Port of Zato 3.2's test_user_attr_exists.py (zatosource/zato, branch support/3.2,
// code/zato-sso/test/zato/test_user_attr_exists.py), request for request, every assertion kept.
zatoSuite('Zato 3.2 UserAttrExistsTestCase', (setUp) => {
  for (const profile of PROFILES) {
    test(`test_exists (${profile})`, async () => {
      const self = await setUp(profile)
      const name1 = self._get_random_data()
      const value1 = self._get_random_data()

      const name2 = self._get_random_data()
      const value2 = self._get_random_data()

      const data = [
        { name: name1, value: value1 },
        { name: name2, value: value2 }
      ]

      await self.post('/zato/sso/user/attr', {
        ust: self.ctx.super_user_ust,
        user_id: self.ctx.super_user_id,
        data
      })

      const response = await self.get('/zato/sso/user/attr/exists', {
        ust: self.ctx.super_user_ust,
        user_id: self.ctx.super_user_id,
        name: name1
      })

      assert.ok(response.result)
    })
  }
})
