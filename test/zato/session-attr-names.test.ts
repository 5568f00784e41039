import assert from 'node:assert/strict'
import { test } from 'node:test'
import { PROFILES, zatoSuite } from './zato-rest-client.ts'
import { assertIn } from './python.ts'

// Port of Zato 3.2's test_session_attr_names.py (zatosource/zato, branch support/3.2,
// code/zato-sso/test/zato/test_session_attr_names.py), request for request, every assertion kept.
zatoSuite('Zato 3.2 SessionAttrNamesTestCase', (setUp) => {
  for (const profile of PROFILES) {
    test(`test_names (${profile})`, async () => {
      const self = await setUp(profile)
      const name1 = self._get_random_data()
      const value1 = self._get_random_data()

      const name2 = self._get_random_data()
      const value2 = self._get_random_data()

      const data = [
        { name: name1, value: value1 },
        { name: name2, value: value2 }
      ]

      await self.post('/zato/sso/session/attr', {
        current_ust: self.ctx.super_user_ust,
        target_ust: self.ctx.super_user_ust,
        user_id: self.ctx.super_user_id,
        data
      })

      const response = await self.get('/zato/sso/session/attr/names', {
        current_ust: self.ctx.super_user_ust,
        target_ust: self.ctx.super_user_ust,
        user_id: self.ctx.super_user_id
      })

      assertIn(name1, response.result)
      assertIn(name2, response.result)
      assert.ok(Array.isArray(response.result), 'a JSON list (Zato 3.2: a Python repr string, where assertIn matched a substring)')
    })
  }
})
